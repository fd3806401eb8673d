/** Configuration of one subgraph service run alone (`npm run start:service -- <name>`). */
import { parseDatabaseConfig, type ServiceDatabaseConfig } from './database.ts';
import { ConfigError, hostVar, logLevelVar, parseEnv, portVar, type LogLevel } from './env.ts';
import type { ServiceDefinition } from './services.ts';
import { z } from 'zod';
import { DEFAULT_READINESS_TIMEOUT_MS } from '../federation/readiness.ts';

/** Settings of a service process. */
export interface ServiceConfig {
  /** `HOST`. @default '127.0.0.1' */
  host: string;
  /** `<PREFIX>_PORT`. @default the catalogue's default port (workflows 4001) */
  port: number;
  /** `LOG_LEVEL`. @default 'info' */
  logLevel: LogLevel;
  /** The service's database; `url` is `<PREFIX>_DATABASE_URL`, required here. */
  database: ServiceDatabaseConfig & { url: string };
}

/**
 * Parses the variables of `service` run alone.
 * @throws ConfigError (or DatabaseConfigError) listing every bad variable; `<PREFIX>_DATABASE_URL`
 *   unset is an error (a service alone does not provision its database).
 */
export function parseServiceConfig(env: NodeJS.ProcessEnv, service: ServiceDefinition): ServiceConfig {
  const v = parseEnv(env, {
    HOST: hostVar,
    [`${service.envPrefix}_PORT`]: portVar(service.defaultPort),
    LOG_LEVEL: logLevelVar,
  }) as { HOST: string; LOG_LEVEL: LogLevel } & Record<string, number>;
  const database = parseDatabaseConfig(env, [service]).services[service.name]!;
  if (database.url === undefined) {
    throw new ConfigError(
      `invalid configuration:\n  ${service.envPrefix}_DATABASE_URL: required to run ${service.name} alone (got unset); ` +
        '`npm start` provisions databases, a service alone does not',
    );
  }
  return { host: v.HOST, port: v[`${service.envPrefix}_PORT`]!, logLevel: v.LOG_LEVEL, database: { ...database, url: database.url } };
}

/**
 * `FLOWGRAPH_READINESS_TIMEOUT_MS`: how long each readiness check (`/health/ready`; the database,
 * migrations, broker and, on the gateway, each subgraph) may take before it counts as failed,
 * an integer 1..60000 ms. @default 2000 (`federation/readiness.ts` DEFAULT_READINESS_TIMEOUT_MS)
 * @throws ConfigError naming the variable when it is not such an integer
 */
export function readinessTimeoutMsFromEnv(env: NodeJS.ProcessEnv): number {
  return parseEnv(env, {
    FLOWGRAPH_READINESS_TIMEOUT_MS: z.preprocess((value) => (value === '' ? undefined : value), z.coerce.number().int().min(1).max(60_000).default(DEFAULT_READINESS_TIMEOUT_MS)),
  }).FLOWGRAPH_READINESS_TIMEOUT_MS;
}
