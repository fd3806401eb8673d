/**
 * Configuration of the gateway process (`npm run start:service -- gateway`), and the gateway
 * settings `npm start` shares.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { operationLimitsFromEnv, type OperationLimits } from '../gateway/operationLimits.ts';
import type { LogLevel } from './env.ts';
import { z } from 'zod';
import {
  DEFAULT_CONNECTION_INIT_TIMEOUT_MS,
  DEFAULT_KEEP_ALIVE_INTERVAL_MS,
  DEFAULT_MAX_BUFFERED_BYTES,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION,
  type WsServerLimits,
} from '../ws/server.ts';
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
  /** `GATEWAY_WS_*`: limits of the graphql-ws endpoint (see {@link websocketLimitsFromEnv}). */
  websocketLimits: Required<Omit<WsServerLimits, 'closeTimeoutMs'>>;
}

/** A non-negative integer variable (empty = default). */
const countVar = (defaultValue: number) =>
  z.preprocess((value) => (value === '' ? undefined : value), z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(defaultValue));

/**
 * Reads the websocket limits (README, "Configuration"; defaults from `ws/server.ts`):
 * `GATEWAY_WS_CONNECTION_INIT_TIMEOUT_MS` (10000; 0 = none), `GATEWAY_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION`
 * (100), `GATEWAY_WS_MAX_MESSAGE_BYTES` (262144, a larger client message closes 1009),
 * `GATEWAY_WS_KEEP_ALIVE_INTERVAL_MS` (12000; 0 = none), `GATEWAY_WS_MAX_BUFFERED_BYTES` (4194304: a client
 * whose unsent frames pass it is closed 1013 and resumes from its last cursor).
 * @throws ConfigError naming each variable that is not a non-negative integer (or a message size below 1 KiB)
 */
export function websocketLimitsFromEnv(env: NodeJS.ProcessEnv): GatewayConfig['websocketLimits'] {
  const v = parseEnv(env, {
    GATEWAY_WS_CONNECTION_INIT_TIMEOUT_MS: countVar(DEFAULT_CONNECTION_INIT_TIMEOUT_MS),
    GATEWAY_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: countVar(DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION).pipe(z.number().min(1)),
    GATEWAY_WS_MAX_MESSAGE_BYTES: countVar(DEFAULT_MAX_MESSAGE_BYTES).pipe(z.number().min(1024)),
    GATEWAY_WS_KEEP_ALIVE_INTERVAL_MS: countVar(DEFAULT_KEEP_ALIVE_INTERVAL_MS),
    GATEWAY_WS_MAX_BUFFERED_BYTES: countVar(DEFAULT_MAX_BUFFERED_BYTES).pipe(z.number().min(1024)),
  });
  return {
    connectionInitTimeoutMs: v.GATEWAY_WS_CONNECTION_INIT_TIMEOUT_MS,
    maxSubscriptionsPerConnection: v.GATEWAY_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION,
    maxMessageBytes: v.GATEWAY_WS_MAX_MESSAGE_BYTES,
    keepAliveIntervalMs: v.GATEWAY_WS_KEEP_ALIVE_INTERVAL_MS,
    maxBufferedBytes: v.GATEWAY_WS_MAX_BUFFERED_BYTES,
  };
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
    websocketLimits: websocketLimitsFromEnv(env),
  };
}
