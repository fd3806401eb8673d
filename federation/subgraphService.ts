/**
 * What every `start<Name>Service` of `subgraphs/<name>/service.ts` takes and returns; each
 * service extends these with its own options (transport, clock...) and results.
 */
import type { Logger } from '../eventstore/index.ts';
import type { IdentityVerifier } from './gatewayIdentity.ts';
import type { CursorCodec } from './live/cursor.ts';
import type { ServicePoolOptions } from './servicePool.ts';
import type { MetricsOptions } from '../observability/metrics.ts';

/** Options shared by the subgraph services: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface SubgraphServiceOptions extends ServicePoolOptions {
  /** TCP port (0 = any free port). */
  port: number;
  /** Interface to bind. @default '127.0.0.1' */
  host?: string;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /**
   * Signs and verifies the cursors of the service's subscriptions (`federation/live/cursor.ts`).
   * Every instance of a service, and every restart, must share its keys, or clients' cursors stop
   * verifying: the composition roots build it from `FLOWGRAPH_CURSOR_SECRET`.
   * @default a codec with a random key of this process (tests only)
   */
  cursorCodec?: CursorCodec;
  /**
   * Verifies the gateway's identity on every request (`federation/gatewayIdentity.ts`): the
   * composition roots build it from `FLOWGRAPH_GATEWAY_PUBLIC_KEYS`.
   * @default `identityVerifierFromEnv(process.env)` (ConfigError when the variable is unset)
   */
  identityVerifier?: IdentityVerifier;
  /** Attempts before a consumer parks an integration event (`FLOWGRAPH_PARK_AFTER_ATTEMPTS`). @default 5 (federation/parking.ts) */
  parkAfterAttempts?: number;
  /**
   * The service's Prometheus metrics, served at `/metrics` on its port (`observability/serviceMetrics.ts`):
   * `enabled: false` (`FLOWGRAPH_METRICS=off`) makes them no-ops and `/metrics` 404;
   * `processMetrics: true` adds the process's own (one registry per process).
   * @default `enabled` from `FLOWGRAPH_METRICS` (on unless `off`), `processMetrics: false`
   */
  metrics?: MetricsOptions;
}

/** A running subgraph service. */
export interface SubgraphService {
  /** GraphQL endpoint, e.g. `http://127.0.0.1:4001/graphql`. */
  url: string;
  /** Stops what the service started, last in first out, then the pool if the service created it. Idempotent. */
  close(): Promise<void>;
}
