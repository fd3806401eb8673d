/**
 * One subgraph's GraphQL over HTTP: the Federation schema built from its SDL file and its
 * resolvers, an Apollo Server configured the same way for every subgraph, served by
 * `listenApollo` with the per-request context of `requestContext.ts`.
 *
 * Subgraphs trust only the gateway (DESIGN.md "Auth"; `gatewayIdentity.ts`): a GraphQL request
 * without a valid `x-flowgraph-identity` token is answered HTTP 401 `UNAUTHENTICATED` before
 * Apollo runs (`GET /health` stays open), a graphql-ws `connection_init` without a valid
 * `identity` is closed with 4403, and a websocket `subscribe` carries the caller's
 * `extensions.flowgraph.identity` (without one it runs as the connection's subject with role
 * `viewer`: it may subscribe, never mutate). The verified subject and role are the `actor` and
 * `actorRole` of the events the request appends. A mutation needs role `operator` here too.
 *
 * ```ts
 * const http = await serveSubgraph({ name: 'content', schemaPath: CONTENT_SCHEMA_PATH, resolvers,
 *   port: 4002, host: '127.0.0.1', logger, isDeliberateError: (e): e is DeliberateError => e instanceof ContentError });
 * // http.url === 'http://127.0.0.1:4002/graphql'
 * await http.close();
 * ```
 */
import { readFileSync } from 'node:fs';
import { ApolloServer } from '@apollo/server';
import { buildSubgraphSchema } from '@apollo/subgraph';
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { parse } from 'graphql';
import type { EventStore, Logger } from '../eventstore/index.ts';
import { createWsServer, type WsServerLimits } from '../ws/server.ts';
import { guardEntities } from './entities.ts';
import { createSubgraphFormatError, type DeliberateError } from './formatError.ts';
import { listenApollo, type ListeningApollo } from './httpServer.ts';
import { createLiveServer } from './live/liveServer.ts';
import type { CursorCodec } from './live/cursor.ts';
import type { LiveField } from './live/liveField.ts';
import { IDENTITY_HEADER, identityVerifierFromEnv, type GatewayIdentity, type IdentityVerifier } from './gatewayIdentity.ts';
import { contextFromIdentity, requireRole, type RequestContext } from './requestContext.ts';
import { createReadinessProbe, type ReadinessCheck } from './readiness.ts';
import { readinessTimeoutMsFromEnv } from '../config/serviceConfig.ts';
import { graphqlOperationPlugin, traceRootResolvers } from '../observability/graphqlSpans.ts';
import { METRICS_PATH, type MetricsEndpoint } from '../observability/metrics.ts';

/** Interface a subgraph binds when no `host` is given: loopback only. */
export const DEFAULT_SUBGRAPH_HOST = '127.0.0.1';

/** Options of `serveSubgraph`. */
export interface ServeSubgraphOptions {
  /** The subgraph's name, prefixing its log messages (`<name>: HTTP error`). */
  name: string;
  /** Absolute path of the subgraph's SDL file (UTF-8, read once at start). */
  schemaPath: string;
  /**
   * Resolvers of that SDL (`__resolveReference` included); they receive a `RequestContext`.
   * `any` context because `buildSubgraphSchema` takes `GraphQLResolverMap<unknown>`.
   */
  resolvers: GraphQLResolverMap<any>;
  /** TCP port (0 = any free port). */
  port: number;
  /** Interface to bind. @default DEFAULT_SUBGRAPH_HOST ('127.0.0.1') */
  host?: string;
  /** pino-compatible logger; also receives Apollo's own messages. */
  logger: Logger;
  /**
   * Recognises the subgraph's deliberate errors (its registry in `subgraphs/<name>/errors.ts`),
   * which keep their code and details; every other error is formatted by the shared rules of
   * `createSubgraphFormatError` (federation/formatError.ts).
   */
  isDeliberateError: (error: unknown) => error is DeliberateError;
  /**
   * Verifies the gateway's identity tokens (`federation/gatewayIdentity.ts`).
   * @default `identityVerifierFromEnv(process.env)`: `FLOWGRAPH_GATEWAY_PUBLIC_KEYS`; a
   *   ConfigError naming it when unset or invalid
   */
  identityVerifier?: IdentityVerifier;
  /** Largest request body accepted, in bytes; larger ones get 413. @default 2097152 (2 MiB, `listenApollo`'s) */
  maxBodyBytes?: number;
  /**
   * What `GET /health/ready` (and `/health`) checks (`federation/readiness.ts`: the database,
   * the migrations, the broker), each within `FLOWGRAPH_READINESS_TIMEOUT_MS`.
   * @default none: ready whenever it answers
   */
  readiness?: readonly ReadinessCheck[];
  /**
   * Served at `GET /metrics` (the service's registry, `observability/serviceMetrics.ts`), not
   * authenticated, like `/health`. @default none: `/metrics` is 404
   */
  metrics?: MetricsEndpoint;
  /**
   * The subgraph's subscription fields, served over graphql-ws on the same port and path
   * (`federation/live/`): each field of the SDL's `Subscription` type needs one.
   * @default none (no websocket endpoint)
   */
  live?: {
    store: EventStore;
    fields: readonly LiveField<any>[];
    codec: CursorCodec;
    /** Limits of the websocket server (`ws/server.ts` defaults). */
    limits?: Partial<WsServerLimits>;
    /** How often position announcements repeat on a quiet feed, in ms. @default 30_000 */
    heartbeatIntervalMs?: number;
  };
}

/**
 * Builds the subgraph's schema (`buildSubgraphSchema`), starts an Apollo Server on it and
 * listens; resolves once requests are accepted. The server leaves termination signals to the
 * composition root (`stopOnTerminationSignals: false`), never sends stack traces
 * (`includeStacktraceInErrorResponses: false`) and gives resolvers `contextFromIdentity` of
 * each request's verified identity. The result's `close()` drains and stops the server (idempotent).
 * @throws ConfigError when no `identityVerifier` is given and FLOWGRAPH_GATEWAY_PUBLIC_KEYS is
 *   unset or invalid; the SDL file's read error; GraphQL's parse or schema errors; the listen
 *   error (e.g. EADDRINUSE)
 */
export async function serveSubgraph(options: ServeSubgraphOptions): Promise<ListeningApollo> {
  const { name, logger } = options;
  const verifier = options.identityVerifier ?? identityVerifierFromEnv(process.env);
  // Tracing on: a span per Query/Mutation root field resolver (observability/graphqlSpans.ts).
  // `_entities` refuses representations of no entity type, or too many, before resolving any (federation/entities.ts).
  const schema = guardEntities(buildSubgraphSchema({ typeDefs: parse(readFileSync(options.schemaPath, 'utf8')), resolvers: traceRootResolvers(options.resolvers) }));
  const formatError = createSubgraphFormatError({ name, logger, isDeliberate: options.isDeliberateError });
  const live = options.live;
  const apollo = new ApolloServer<RequestContext>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    // The composition root (bin/lifecycle.ts) decides what a signal stops, and in which order.
    stopOnTerminationSignals: false,
    logger: apolloLogger(logger),
    plugins: [
      graphqlOperationPlugin<RequestContext>(),
      {
        // Defense in depth (the gateway checks first): a mutation needs role operator.
        async requestDidStart() {
          return {
            async didResolveOperation({ operation, contextValue }) {
              if (operation?.operation === 'mutation') requireRole(contextValue, 'operator', 'a mutation');
            },
          };
        },
      },
    ],
  });
  return listenApollo<RequestContext, GatewayIdentity>(apollo, {
    port: options.port,
    host: options.host ?? DEFAULT_SUBGRAPH_HOST,
    service: name,
    maxBodyBytes: options.maxBodyBytes,
    ...(options.metrics ? { routes: { [METRICS_PATH]: options.metrics.handle } } : {}),
    ...(options.readiness ? { readiness: createReadinessProbe(options.readiness, readinessTimeoutMsFromEnv(process.env)) } : {}),
    authenticate: (req) => {
      const value = req.headers[IDENTITY_HEADER];
      return verifier.verify(Array.isArray(value) ? value[0] : value);
    },
    onRefused: (error, req) =>
      logger.debug({ reason: (error as { reason?: unknown }).reason ?? String(error), url: req.url }, `${name}: request without a valid gateway identity refused`),
    context: async ({ req, auth }) =>
      contextFromIdentity(auth, (header) => {
        const value = req.headers[header];
        return Array.isArray(value) ? value[0] : value;
      }),
    onError: (error) => logger.error({ err: error }, `${name}: HTTP error`),
    ...(live
      ? {
          attach: (server: import('node:http').Server) => {
            const liveServer = createLiveServer({
              name,
              schema,
              store: live.store,
              fields: live.fields,
              codec: live.codec,
              formatError,
              logger,
              identityVerifier: verifier,
              ...(live.heartbeatIntervalMs !== undefined ? { heartbeatIntervalMs: live.heartbeatIntervalMs } : {}),
            });
            const ws = createWsServer<{ gateway: GatewayIdentity }>({
              server,
              path: '/graphql',
              logger,
              ...live.limits,
              // Only the gateway connects: its own identity in connection_init (else 4403);
              // each subscribe then carries the caller's (liveServer.ts).
              authenticate: async (connectionParams) => ({ gateway: await verifier.verify(stringOr(connectionParams?.identity)) }),
              onSubscribe: (operation) => liveServer.onSubscribe(operation),
            });
            return {
              async close() {
                await ws.close();
                await liveServer.close();
              },
            };
          },
        }
      : {}),
  });
}

function stringOr(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Apollo's `(message)` logger shape on top of a pino-style `(object, message)` logger. */
function apolloLogger(logger: Logger) {
  const text = (args: unknown[]) => args.map(String).join(' ');
  return {
    debug: (...args: unknown[]) => logger.debug({}, text(args)),
    info: (...args: unknown[]) => logger.info({}, text(args)),
    warn: (...args: unknown[]) => logger.warn({}, text(args)),
    error: (...args: unknown[]) => logger.error({}, text(args)),
  };
}
