/** Configuration of `npm start`: the gateway and every runnable service in one process. */
import { parseDatabaseConfig, type DatabaseConfig } from './database.ts';
import { parseEnv, portVar } from './env.ts';
import { parseGatewayConfig, type GatewayConfig } from './gatewayConfig.ts';
import { runnableServices, type ServiceDefinition } from './services.ts';

/** One service hosted by the process. */
export interface HostedService {
  definition: ServiceDefinition;
  /** `<PREFIX>_PORT`. @default the catalogue's default port */
  port: number;
}

/** Everything `npm start` needs. */
export interface StartConfig {
  gateway: GatewayConfig;
  /** The runnable services of `config/services.ts`, in start order. */
  services: HostedService[];
  /** Database settings (admin URL, embedded server, per-service URLs and pool limits). */
  database: DatabaseConfig;
}

/**
 * Parses the environment of `npm start`.
 * @throws ConfigError / DatabaseConfigError listing every bad variable
 */
export function parseStartConfig(env: NodeJS.ProcessEnv): StartConfig {
  const definitions = runnableServices();
  const gateway = parseGatewayConfig(env);
  const ports = parseEnv(
    env,
    Object.fromEntries(definitions.map((d) => [`${d.envPrefix}_PORT`, portVar(d.defaultPort)])),
  ) as Record<string, number>;
  return {
    gateway,
    services: definitions.map((definition) => ({ definition, port: ports[`${definition.envPrefix}_PORT`]! })),
    database: parseDatabaseConfig(env, definitions),
  };
}
