/**
 * The catalogue of flowgraph's subgraph services: the ONE list that `npm start`,
 * `npm run start:service -- <name>` and `npm run compose` read. Adding a service (issue 3:
 * content, knowledge, monitoring) means giving its entry a `load` function; nothing else in
 * `bin/` or `gateway/` changes.
 *
 * Names, default ports and the environment variable prefixes come from DESIGN.md ("The
 * house", "Databases and isolation") and the README configuration table.
 */
import type { Logger } from 'pino';
import type pg from 'pg';
import type { IntegrationTransport } from '../eventstore/integration.ts';
import type { CursorCodec } from '../federation/live/cursor.ts';
import type { IdentityVerifier } from '../federation/gatewayIdentity.ts';
import type { MetricsOptions } from '../observability/metrics.ts';

/** A subgraph service as a process hosts it. */
export interface RunningService {
  /** The subgraph's GraphQL endpoint, e.g. `http://127.0.0.1:4001/graphql`. */
  url: string;
  /** Stops serving (HTTP server, consumers, timers). Does not end the pool it was given. Idempotent. */
  close(): Promise<void>;
}

/** What every service starter receives from the composition root. */
export interface ServiceStartOptions {
  /** The service's own database pool; the caller owns it and ends it after `close()`. */
  pool: pg.Pool;
  /** TCP port to listen on (0 = any free port). */
  port: number;
  /** Interface to bind, e.g. `127.0.0.1`. */
  host: string;
  /** The service's logger (a pino child logger with `service: <name>`). */
  logger: Logger;
  /**
   * Carries integration events (DESIGN.md, "Broker"): the service starts its relay and its
   * consumers on it. Owned by the caller, closed after the service.
   */
  transport: IntegrationTransport;
  /**
   * Signs and verifies the service's subscription cursors (`config/cursorConfig.ts`): the same
   * keys on every instance and across restarts, so a client resumes anywhere.
   * @default a random key of this process (tests only: cursors do not survive a restart)
   */
  cursorCodec?: CursorCodec;
  /**
   * Verifies the gateway's identity on every subgraph request (`FLOWGRAPH_GATEWAY_PUBLIC_KEYS`,
   * `identityVerifierFromEnv`). @default built from `process.env` by the service
   */
  identityVerifier?: IdentityVerifier;
  /** Failed attempts after which a consumer parks an integration event (`FLOWGRAPH_PARK_AFTER_ATTEMPTS`). @default 5 */
  parkAfterAttempts?: number;
  /** The service's metrics at `/metrics` on its port (`FLOWGRAPH_METRICS`, `observability/metrics.ts`). @default `enabled` from FLOWGRAPH_METRICS, without process metrics */
  metrics?: MetricsOptions;
}

/** Starts one service; resolves once it accepts requests. */
export type ServiceStarter = (options: ServiceStartOptions) => Promise<RunningService>;

/** One entry of the catalogue. */
export interface ServiceDefinition {
  /** Folder under `subgraphs/`, subgraph name in the supergraph, and database suffix (`flowgraph_<name>`). */
  name: string;
  /** Prefix of the service's environment variables: `<PREFIX>_PORT`, `<PREFIX>_URL`, `<PREFIX>_DATABASE_URL`... */
  envPrefix: string;
  /** Default port of the service's HTTP server (`<PREFIX>_PORT` overrides it). */
  defaultPort: number;
  /**
   * Loads the service's starter (a dynamic import, so the gateway alone and the composer never
   * load service code). Absent while the service is not built yet: such a service is skipped
   * by `npm start` and refused by `start:service`.
   */
  load?: () => Promise<ServiceStarter>;
}

/** Every subgraph service, in start order (the gateway starts after all of them). */
export const SERVICES: readonly ServiceDefinition[] = [
  {
    name: 'workflows',
    envPrefix: 'WORKFLOWS',
    defaultPort: 4001,
    load: async () => {
      const { startWorkflowsService } = await import('../subgraphs/workflows/service.ts');
      const { parseWorkflowsSettings } = await import('../subgraphs/workflows/config.ts');
      const settings = parseWorkflowsSettings(process.env);
      return (options) => startWorkflowsService({ ...options, ...settings });
    },
  },
  {
    name: 'content',
    envPrefix: 'CONTENT',
    defaultPort: 4002,
    load: async () => {
      const { startContentService } = await import('../subgraphs/content/service.ts');
      const { parseContentSettings } = await import('./contentConfig.ts');
      const settings = parseContentSettings(process.env);
      return (options) => startContentService({ ...options, ...settings });
    },
  },
  {
    name: 'knowledge',
    envPrefix: 'KNOWLEDGE',
    defaultPort: 4003,
    load: async () => {
      const { startKnowledgeService } = await import('../subgraphs/knowledge/service.ts');
      const { parseKnowledgeSettings } = await import('./knowledgeConfig.ts');
      const settings = parseKnowledgeSettings(process.env);
      return (options) => startKnowledgeService({ ...options, ...settings });
    },
  },
  {
    name: 'monitoring',
    envPrefix: 'MONITORING',
    defaultPort: 4004,
    load: async () => {
      const { startMonitoringService } = await import('../subgraphs/monitoring/service.ts');
      return (options) => startMonitoringService(options);
    },
  },
];

/** The services that can run (their entry has a `load`). */
export function runnableServices(): ServiceDefinition[] {
  return SERVICES.filter((service) => service.load !== undefined);
}

/**
 * The catalogue entry named `name`.
 * @throws Error naming the known services when there is none.
 */
export function serviceNamed(name: string): ServiceDefinition {
  const service = SERVICES.find((candidate) => candidate.name === name);
  if (!service) {
    throw new Error(`Unknown service "${name}": expected one of ${SERVICES.map((s) => s.name).join(', ')}`);
  }
  return service;
}

/** The URL a subgraph has in the checked-in supergraph: `http://127.0.0.1:<defaultPort>/graphql`. */
export function defaultSubgraphUrl(service: ServiceDefinition): string {
  return `http://127.0.0.1:${service.defaultPort}/graphql`;
}
