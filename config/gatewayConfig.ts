/**
 * Configuration of the gateway process (`npm run start:service -- gateway`), and the gateway
 * settings `npm start` shares.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { operationLimitsFromEnv, type OperationLimits } from '../gateway/operationLimits.ts';
import type { LogLevel } from './env.ts';
import { hostVar, logLevelVar, nodeEnvVar, parseEnv, pathVar, portVar } from './env.ts';

/** The repository root (where `supergraph.graphql` is checked in). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Default `GATEWAY_PORT`. */
export const DEFAULT_GATEWAY_PORT = 4000;

/** The gateway's settings. */
export interface GatewayConfig {
  /** `HOST`. @default '127.0.0.1' */
  host: string;
  /** `GATEWAY_PORT`. @default 4000 */
  port: number;
  /** `NODE_ENV === 'production'`: introspection and Sandbox off. */
  production: boolean;
  /** `LOG_LEVEL`. @default 'info' */
  logLevel: LogLevel;
  /**
   * `SUPERGRAPH_PATH`, absolute (a relative value resolves against the current directory).
   * @default `<repo>/supergraph.graphql`
   */
  supergraphPath: string;
  /** `GATEWAY_MAX_*`: the gateway's operation limits (see `gateway/operationLimits.ts`). */
  operationLimits: OperationLimits;
}

/**
 * Parses the gateway's variables. Subgraph URL overrides (`<NAME>_URL`) depend on the names in
 * the supergraph file: read them with `subgraphUrlOverridesFromEnv` once the file is read.
 * @throws ConfigError listing every bad variable
 */
export function parseGatewayConfig(env: NodeJS.ProcessEnv): GatewayConfig {
  const v = parseEnv(env, {
    HOST: hostVar,
    GATEWAY_PORT: portVar(DEFAULT_GATEWAY_PORT),
    NODE_ENV: nodeEnvVar,
    LOG_LEVEL: logLevelVar,
    SUPERGRAPH_PATH: pathVar(path.join(REPO_ROOT, 'supergraph.graphql')),
  });
  return {
    host: v.HOST,
    port: v.GATEWAY_PORT,
    production: v.NODE_ENV === 'production',
    logLevel: v.LOG_LEVEL,
    supergraphPath: path.resolve(v.SUPERGRAPH_PATH),
    operationLimits: operationLimitsFromEnv(env),
  };
}
