/**
 * Configuration of the gateway process (`npm run start:service -- gateway`), and the gateway
 * settings `npm start` shares.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { operationLimitsFromEnv, type OperationLimits } from '../gateway/operationLimits.ts';
import { DEFAULT_SUBGRAPH_TIMEOUT_MS, MAX_TIMER_DELAY_MS } from '../gateway/subgraphDataSource.ts';
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
  /** `GATEWAY_CORS_ORIGINS`: the browser origins allowed besides the gateway's own (see {@link corsOriginsFromEnv}). */
  corsOrigins: CorsOrigins;
  /** `GATEWAY_SUBGRAPH_TIMEOUT_MS`: longest wait for a subgraph's answer, in ms (0 = none). @default 30_000 */
  subgraphTimeoutMs: number;
}

/**
 * Browser origins allowed to call the gateway (CORS, and the websocket upgrade's `Origin`):
 * `'*'` for any, else a list of origins (`scheme://host[:port]`, as the `Origin` header
 * spells them). A request of the gateway's own origin (its `Origin` names the `Host` it was
 * sent to) and a request without `Origin` (not from a browser) are always allowed.
 */
export type CorsOrigins = '*' | readonly string[];

/** Keyword of `GATEWAY_CORS_ORIGINS` for "no origin but the gateway's own". */
export const SAME_ORIGIN_ONLY = 'same-origin';

/**
 * One origin of `GATEWAY_CORS_ORIGINS` normalised as browsers send the `Origin` header (WHATWG
 * URL `origin`: lower-case scheme and host, no default port), or undefined when `value` is no
 * http(s) origin (credentials, a path, a query or a fragment).
 */
export function normaliseOrigin(value: string): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
    if (url.username || url.password || url.search || url.hash || (url.pathname !== '/' && url.pathname !== '')) return undefined;
    return url.origin;
  } catch {
    return undefined;
  }
}

/**
 * Reads `GATEWAY_CORS_ORIGINS` (README, "Configuration"): `*` (any origin), `same-origin` (none
 * but the gateway's own), or a comma-separated list of origins (`https://app.example,http://localhost:3000`).
 * Unset or empty: `*` in development, so Apollo Sandbox (served from another origin when opened
 * at studio.apollographql.com) and local tools work; same-origin only with `NODE_ENV=production`.
 * @throws ConfigError naming the variable when an entry is not an http(s) origin
 */
export function corsOriginsFromEnv(env: NodeJS.ProcessEnv): CorsOrigins {
  const v = parseEnv(env, {
    NODE_ENV: nodeEnvVar,
    GATEWAY_CORS_ORIGINS: z
      .preprocess((value) => (value === '' ? undefined : value), z.string().optional())
      .refine(
        (value) =>
          value === undefined ||
          value.trim() === '*' ||
          value.trim() === SAME_ORIGIN_ONLY ||
          value.split(',').every((entry) => normaliseOrigin(entry.trim()) !== undefined),
        `expected "*", "${SAME_ORIGIN_ONLY}" or a comma-separated list of origins such as https://app.example`,
      ),
  });
  const value = v.GATEWAY_CORS_ORIGINS?.trim();
  if (value === undefined) return v.NODE_ENV === 'production' ? [] : '*';
  if (value === '*') return '*';
  if (value === SAME_ORIGIN_ONLY) return [];
  return [...new Set(value.split(',').map((entry) => normaliseOrigin(entry.trim())!))];
}

/**
 * Reads `GATEWAY_SUBGRAPH_TIMEOUT_MS` (README, "Configuration"): the longest the gateway waits
 * for a subgraph's answer, in ms; unset or empty = 30 000, 0 = no timeout.
 * @throws ConfigError when it is not an integer from 0 to 2^31 - 1 (Node's longest timer delay)
 */
export function subgraphTimeoutMsFromEnv(env: NodeJS.ProcessEnv): number {
  return parseEnv(env, {
    // At most 2^31 - 1 ms (24.8 days), the longest delay Node's timers take: a longer one fires after 1 ms.
    GATEWAY_SUBGRAPH_TIMEOUT_MS: z.preprocess((value) => (value === '' ? undefined : value), z.coerce.number().int().min(0).max(MAX_TIMER_DELAY_MS).default(DEFAULT_SUBGRAPH_TIMEOUT_MS)),
  }).GATEWAY_SUBGRAPH_TIMEOUT_MS;
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
    corsOrigins: corsOriginsFromEnv(env),
    subgraphTimeoutMs: subgraphTimeoutMsFromEnv(env),
  };
}
