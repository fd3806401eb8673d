/**
 * The flowgraph gateway: `@apollo/gateway` executing a static supergraph behind
 * `@apollo/server` 5, served by Node's own HTTP server (no framework).
 *
 * Routes (host and port from the options):
 * - `POST /graphql` (and `/`): GraphQL over HTTP; `GET` with `?query=` for queries.
 * - `GET /graphql` (and `/`) from a browser: Apollo Sandbox (development) or Apollo's production
 *   landing page (`production: true`).
 * - `GET /health/live`: `200 {"status":"ok"}` while the process answers.
 * - `GET /health/ready` (and its alias `GET /health`): `200 {"status":"ok","subgraphs":[...],"checks":{...}}`
 *   once the supergraph is loaded and every subgraph answers its `/health/live`; `503` with
 *   `status` `starting`, `stopping` or `not_ready` (and the failed checks) otherwise.
 * - `GET /metrics`: Prometheus metrics (`observability/gatewayMetrics.ts`), not authenticated
 *   (like `/health`: do not expose it publicly); `404` when metrics are off.
 * - `GET /monitor/` (the live monitoring page) and `GET /graphiql/` (GraphiQL, the explorer that
 *   works offline): static files built by `npm run build:web`, no token needed for the files
 *   (`gateway/webAssets.ts`).
 * - anything else: `404`.
 *
 * Every operation passes the operation limits of `gateway/operationLimits.ts` (depth, aliases,
 * directives, tokens, cost, variable depth) before it is planned: HTTP 400 otherwise. Its
 * document's size (`maxDocumentBytes`) is checked before it is parsed: HTTP 413 (over HTTP) or an
 * `error` message (over the websocket), `OPERATION_LIMIT_EXCEEDED`, `limit: 'maxDocumentBytes'`.
 * A `subscription` sent over HTTP is HTTP 400 `BAD_REQUEST` naming the websocket endpoint (HTTP 405
 * for a GET, Apollo Server's answer to a GET of anything but a query, whose message names it too).
 *
 * Browsers: CORS answers and the websocket upgrade follow `corsOrigins` (see
 * `config/gatewayConfig.ts` `CorsOrigins`): a request, preflight or upgrade whose `Origin` is not
 * allowed is answered `403` (`FORBIDDEN`). Requests without `Origin` (not from a browser) pass.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer, HeaderMap, type ApolloServerPlugin, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginLandingPageLocalDefault,
  ApolloServerPluginLandingPageProductionDefault,
} from '@apollo/server/plugin/landingPage/default';
import type { GraphQLFormattedError } from 'graphql';
import type { Logger } from 'pino';
import { aliasSafeGateway } from './aliases.ts';
import { ANONYMOUS_SUBJECT, createAuthenticator, type Authenticate, type Identity } from './auth.ts';
import { authorizationPlugin, authorizationPolicyOf, executableSupergraphSdl } from './authorization.ts';
import { parseAuthConfig } from '../config/authConfig.ts';
import type { GatewayContext } from './context.ts';
import { createRequire } from 'node:module';
import { GatewayErrorCode } from './errors.ts';
import { exactNumbersPlugin } from './exactNumbers.ts';
import { inexactNumberRefusal } from '../eventstore/jsonNumbers.ts';
import {
  checkDocumentSize,
  DOCUMENT_TOO_LARGE_STATUS,
  formatTokenLimitError,
  operationLimitsFromEnv,
  operationLimitsPlugin,
  parseOptions,
  type OperationLimits,
} from './operationLimits.ts';
import { CORRELATION_ID_HEADER, SubgraphDataSource, TRACEPARENT_HEADER } from './subgraphDataSource.ts';
import { identitySignerFromEnv, type IdentitySigner } from '../federation/gatewayIdentity.ts';
import { corsOriginsFromEnv, subgraphTimeoutMsFromEnv, type CorsOrigins } from '../config/gatewayConfig.ts';
import { createSubscriptionEngine, type ConnectionIdentity } from './subscriptions/engine.ts';
import { supergraphSubgraphs } from './supergraph.ts';
import { createReadinessProbe, subgraphCheck } from '../federation/readiness.ts';
import { readinessTimeoutMsFromEnv } from '../config/serviceConfig.ts';
import { createWsServer, type WsServer, type WsServerLimits } from '../ws/server.ts';
import { withServerSpan } from '../observability/httpSpans.ts';
import { createGatewayMetrics, type GatewayMetricsOptions } from '../observability/gatewayMetrics.ts';
import { METRICS_PATH } from '../observability/metrics.ts';
import { parseMetricsConfig } from '../config/metricsConfig.ts';
import { createWebAssets, type WebPage } from './webAssets.ts';

/** graphql-js as Apollo Server loads it (CommonJS): its `GraphQLError` is the one Apollo recognises. */
const { GraphQLError } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

/** The websocket subprotocol of the gateway's subscriptions (graphql-ws's PROTOCOL.md). */
export const WEBSOCKET_PROTOCOL = 'graphql-transport-ws';

/**
 * Largest request body the gateway reads by default: 10 MiB. Bodies carry variables (an
 * `ingestDocument` text up to 10 MiB) besides the document, which `maxDocumentBytes` (64 KiB by
 * default) bounds on its own; the document limit may not exceed the body limit.
 */
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;
/** How long `close()` lets in-flight requests finish before cutting their sockets: 10 s. */
export const DEFAULT_DRAIN_TIMEOUT_MS = 10_000;

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  /** Composed supergraph SDL (e.g. the contents of `supergraph.graphql`). */
  supergraphSdl: string;
  /**
   * Subgraph URLs to use instead of those recorded in the supergraph, by subgraph name
   * (`{ workflows: 'http://127.0.0.1:4101/graphql' }`). A name the supergraph lacks is an error.
   * @default {}
   */
  subgraphUrlOverrides?: Readonly<Record<string, string>>;
  /** TCP port (0 = any free port; the chosen one is in the returned `url`). */
  port: number;
  /** Interface to bind. @default '127.0.0.1' */
  host?: string;
  /** Where the gateway and Apollo log. */
  logger: Logger;
  /**
   * Production mode (`NODE_ENV=production`): introspection off, Apollo's production landing
   * page instead of Sandbox. @default false
   */
  production?: boolean;
  /**
   * The authentication hook (`gateway/auth.ts`).
   * @default `createAuthenticator(parseAuthConfig(process.env))` (`GATEWAY_JWT_*`, `GATEWAY_JWKS_URL`,
   *   `GATEWAY_ANONYMOUS_ROLE`; `production` counts as `NODE_ENV=production`): a ConfigError
   *   naming the variables when none is set
   */
  authenticate?: Authenticate;
  /**
   * Largest accepted request body in bytes; larger ones get HTTP 413 `BAD_REQUEST`. At least
   * the operation limit `maxDocumentBytes` (else `startGateway` throws).
   * @default 10 MiB
   */
  maxBodyBytes?: number;
  /** Grace period of `close()` for in-flight requests, in ms. @default 10_000 */
  drainTimeoutMs?: number;
  /**
   * Operation limits (depth, aliases, directives, tokens, cost, variable depth; 0 = off), see
   * `gateway/operationLimits.ts`. Missing ones are read from `GATEWAY_MAX_*`, else defaulted.
   * @default `operationLimitsFromEnv(process.env)`
   */
  operationLimits?: Partial<OperationLimits>;
  /** Limits of the graphql-ws endpoint (connection-init timeout, subscriptions per connection, message size, keep-alive, send buffer). @default `ws/server.ts`'s */
  websocketLimits?: Partial<WsServerLimits>;
  /**
   * Browser origins allowed besides the gateway's own (CORS and the websocket upgrade).
   * @default `GATEWAY_CORS_ORIGINS` (`corsOriginsFromEnv`), else `'*'` in development and
   *   same-origin only with `production`
   */
  corsOrigins?: CorsOrigins;
  /**
   * Longest wait for a subgraph's answer, in ms (0 = none); past it the request is aborted and
   * its fields fail with `SUBGRAPH_TIMEOUT`.
   * @default `GATEWAY_SUBGRAPH_TIMEOUT_MS`, else 30 000
   */
  subgraphTimeoutMs?: number;
  /** Per-subgraph timeouts in ms, by subgraph name, overriding `subgraphTimeoutMs`. A name the supergraph lacks is an error. @default {} */
  subgraphTimeoutsMs?: Readonly<Record<string, number>>;
  /**
   * Signs the identity the gateway forwards to subgraphs (`x-flowgraph-identity`, upstream
   * subscriptions; `federation/gatewayIdentity.ts`).
   * @default `identitySignerFromEnv(process.env)`: `FLOWGRAPH_GATEWAY_SIGNING_KEY`; a ConfigError
   *   naming it when unset or invalid
   */
  identitySigner?: IdentitySigner;
  /**
   * Prometheus metrics served at `/metrics` (`observability/gatewayMetrics.ts`): `enabled: false`
   * (`FLOWGRAPH_METRICS=off`) makes every instrument a no-op and `/metrics` 404;
   * `processMetrics: true` adds the process's own metrics (one registry per process).
   * @default `enabled` from `FLOWGRAPH_METRICS` (`config/metricsConfig.ts`: on unless `off`; a
   *   ConfigError when invalid), `processMetrics: false`
   */
  metrics?: GatewayMetricsOptions;
  /** Folder of the built pages `/monitor/` and `/graphiql/` (`gateway/webAssets.ts`). @default `web/dist` */
  webRoot?: string;
  /**
   * Merge identical subgraph queries in flight (same subgraph, body and forwarded identity;
   * never mutations), see `SubgraphDataSourceOptions.dedupeInFlight`. @default true
   */
  dedupeInFlight?: boolean;
}

/** A running gateway. */
export interface RunningGateway {
  /** The GraphQL endpoint, e.g. `http://127.0.0.1:4000/graphql`. */
  url: string;
  /** Stops Apollo (and the gateway), then closes the HTTP server and its sockets. Idempotent. */
  close(): Promise<void>;
}

type Phase = 'starting' | 'ready' | 'stopping' | 'stopped';

const GRAPHQL_PATHS = new Set(['/', '/graphql']);
const JSON_CONTENT_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;
const SAFE_CORRELATION_ID = /^[\w.:@-]{1,128}$/;

/**
 * Starts the gateway and resolves once it listens and its supergraph is loaded.
 * @throws InvalidSupergraphError when `supergraphSdl` is not a supergraph
 * @throws Error when an override names an unknown subgraph, the port is taken, or Apollo fails
 *   to load the supergraph (nothing is left listening then)
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const log = options.logger;
  const production = options.production ?? false;
  const authenticate =
    options.authenticate ?? createAuthenticator(parseAuthConfig({ ...process.env, NODE_ENV: production ? 'production' : (process.env.NODE_ENV ?? 'development') }), { logger: log });
  // `@requiresScopes` is enforced here (gateway/authorization.ts); Apollo gets the SDL it accepts.
  const authorizationPolicy = authorizationPolicyOf(options.supergraphSdl);
  const executableSdl = executableSupergraphSdl(options.supergraphSdl);
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const overrides = options.subgraphUrlOverrides ?? {};
  const limits: OperationLimits = { ...operationLimitsFromEnv(process.env), ...definedOnly(options.operationLimits ?? {}) };
  if (limits.maxDocumentBytes > maxBodyBytes) {
    throw new Error(`The document limit (${limits.maxDocumentBytes} bytes) exceeds the request body limit (${maxBodyBytes} bytes): no request could reach it`);
  }
  // The default follows the `production` option (what NODE_ENV=production sets).
  const corsOrigins = options.corsOrigins ?? corsOriginsFromEnv({ ...process.env, NODE_ENV: production ? 'production' : 'development' });
  const defaultTimeoutMs = options.subgraphTimeoutMs ?? subgraphTimeoutMsFromEnv(process.env);
  const timeouts = options.subgraphTimeoutsMs ?? {};
  const timeoutMsOf = (name: string) => timeouts[name] ?? defaultTimeoutMs;
  const originAllowed = (origin: string | undefined, host: string | undefined) => isOriginAllowed(corsOrigins, origin, host);

  const subgraphs = supergraphSubgraphs(options.supergraphSdl);
  const names = new Set(subgraphs.map((subgraph) => subgraph.name));
  for (const name of Object.keys(overrides)) {
    if (!names.has(name)) {
      throw new Error(`URL override for unknown subgraph "${name}": the supergraph has ${[...names].join(', ') || 'no subgraphs'}`);
    }
  }
  for (const name of Object.keys(timeouts)) {
    if (!names.has(name)) {
      throw new Error(`Timeout for unknown subgraph "${name}": the supergraph has ${[...names].join(', ') || 'no subgraphs'}`);
    }
  }
  const resolvedSubgraphs = subgraphs.map(({ name, url }) => ({ name, url: overrides[name] ?? url }));
  const identitySigner = options.identitySigner ?? identitySignerFromEnv(process.env);

  let phase: Phase = 'starting';
  /** The GraphQL endpoint once listening: the websocket URL of a request without a usable `Host`. */
  let listeningUrl = 'http://127.0.0.1/graphql';
  const apolloLogger = {
    debug: (message: unknown) => log.debug(String(message)),
    info: (message: unknown) => log.info(String(message)),
    warn: (message: unknown) => log.warn(String(message)),
    error: (message: unknown) => log.error(String(message)),
  };
  const metrics = createGatewayMetrics({ ...options.metrics, enabled: options.metrics?.enabled ?? parseMetricsConfig(process.env).enabled });
  const webAssets = createWebAssets(options.webRoot !== undefined ? { root: options.webRoot } : {});
  const gateway = new ApolloGateway({
    supergraphSdl: executableSdl,
    buildService: ({ name, url }) =>
      metrics.instrumentDataSource(name, new SubgraphDataSource({ name, url: overrides[name] ?? url ?? '', timeoutMs: timeoutMsOf(name), identitySigner, dedupeInFlight: options.dedupeInFlight ?? true })),
    logger: apolloLogger,
    // Apollo's own default cache, with its lookups counted (observability/gatewayMetrics.ts).
    ...(metrics.queryPlanCache ? { queryPlannerConfig: { cache: metrics.queryPlanCache } } : {}),
  });
  const httpServer = http.createServer();
  const apollo = new ApolloServer<GatewayContext>({
    // Client aliases rewritten before planning, restored after (gateway/aliases.ts, issue 11).
    gateway: aliasSafeGateway(gateway),
    introspection: !production,
    includeStacktraceInErrorResponses: false,
    // Production: no "Did you mean …?" field suggestions in validation errors.
    hideSchemaDetailsFromClientErrors: production,
    parseOptions: parseOptions(limits),
    formatError: (formatted) => withWebsocketHint(formatTokenLimitError(formatted), listeningUrl),
    // The process's composition root owns SIGINT/SIGTERM (bin/start.ts), not Apollo.
    stopOnTerminationSignals: false,
    logger: apolloLogger,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS }),
      production
        ? ApolloServerPluginLandingPageProductionDefault({ footer: false })
        : ApolloServerPluginLandingPageLocalDefault({ footer: false }),
      subscriptionsOverHttpPlugin(() => listeningUrl),
      // Roles before planning: FORBIDDEN (403) reaches no subgraph (gateway/authorization.ts).
      authorizationPlugin(authorizationPolicy),
      operationLimitsPlugin<GatewayContext>(limits),
      exactNumbersPlugin<GatewayContext>(),
      ...(metrics.plugin ? [metrics.plugin] : []),
    ],
  });

  // Readiness: the supergraph is loaded and every subgraph answers (federation/readiness.ts).
  const subgraphsAnswer = createReadinessProbe(
    resolvedSubgraphs.map(({ name, url: subgraphUrl }) => subgraphCheck(name, subgraphUrl)),
    readinessTimeoutMsFromEnv(process.env),
  );
  const health = async (res: http.ServerResponse) => {
    const subgraphNames = resolvedSubgraphs.map((subgraph) => subgraph.name);
    if (phase !== 'ready') return sendJson(res, 503, { status: phase === 'starting' ? 'starting' : 'stopping', subgraphs: subgraphNames, checks: {} });
    const report = await subgraphsAnswer();
    sendJson(res, report.status === 'ok' ? 200 : 503, { status: report.status, subgraphs: subgraphNames, checks: report.checks });
  };

  const handleGraphQL = async (req: http.IncomingMessage, res: http.ServerResponse, search: string) => {
    if (phase !== 'ready') {
      sendGraphQLError(res, 503, 'The gateway is not ready: its supergraph is loading or it is stopping', GatewayErrorCode.GatewayNotReady);
      return;
    }
    let body: unknown;
    let rawBody = '';
    if (req.method === 'POST' && JSON_CONTENT_TYPE.test(req.headers['content-type'] ?? '')) {
      const read = await readBody(req, maxBodyBytes);
      if (read === 'too-large') {
        res.setHeader('connection', 'close');
        sendGraphQLError(res, 413, `Request body exceeds ${maxBodyBytes} bytes`, GatewayErrorCode.BadRequest);
        return;
      }
      try {
        rawBody = read.toString('utf8');
        body = read.length === 0 ? undefined : JSON.parse(rawBody);
      } catch {
        sendGraphQLError(res, 400, 'Request body is not valid JSON', GatewayErrorCode.BadRequest);
        return;
      }
    } else {
      req.resume();
    }
    // Before anything parses it (comments and whitespace cost no tokens, but bytes to parse).
    try {
      checkDocumentSize(req.method === 'POST' ? (body as { query?: unknown } | undefined)?.query : new URLSearchParams(search).get('query'), limits.maxDocumentBytes);
    } catch (error) {
      const { http: _http, ...extensions } = (error as InstanceType<typeof GraphQLError>).extensions;
      sendJson(res, DOCUMENT_TOO_LARGE_STATUS, { errors: [{ message: (error as Error).message, extensions }] });
      return;
    }
    // JSON.parse has rounded any number a double cannot hold: refuse those (gateway/exactNumbers.ts).
    const inexact = inexactNumberRefusal(rawBody) ?? inexactNumberRefusal(new URLSearchParams(search).get('variables') ?? '', ['variables']);
    if (inexact) return sendJson(res, 400, { errors: [inexact] });

    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const httpGraphQLRequest: HTTPGraphQLRequest = { method: (req.method ?? 'GET').toUpperCase(), headers, search, body };
    const clientCorrelationId = headerValue(req.headers[CORRELATION_ID_HEADER]);
    const correlationId =
      clientCorrelationId !== undefined && SAFE_CORRELATION_ID.test(clientCorrelationId) ? clientCorrelationId : randomUUID();
    const traceparent = headerValue(req.headers[TRACEPARENT_HEADER]);

    // The landing page (a browser GET without an operation) needs no identity: nothing can run
    // without `query` (nor `extensions`, a persisted query). Everything else is authenticated,
    // from the Authorization header only (never a token in the URL).
    let identity: Identity;
    if (isLandingPageRequest(req, search)) {
      identity = { subject: ANONYMOUS_SUBJECT, role: 'viewer' };
    } else {
      try {
        identity = await authenticate({ headers: req.headers });
      } catch (error) {
        const code = (error as { extensions?: { code?: unknown } }).extensions?.code;
        if (code === GatewayErrorCode.Unauthenticated) {
          res.setHeader('www-authenticate', 'Bearer');
          sendGraphQLError(res, 401, (error as Error).message, GatewayErrorCode.Unauthenticated);
          return;
        }
        if (code === GatewayErrorCode.Forbidden) return sendGraphQLError(res, 403, (error as Error).message, GatewayErrorCode.Forbidden);
        throw error;
      }
    }
    const context: GatewayContext = { identity, correlationId, ...(traceparent !== undefined ? { traceparent } : {}) };
    const response = await apollo.executeHTTPGraphQLRequest({ httpGraphQLRequest, context: async () => context });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.setHeader(CORRELATION_ID_HEADER, correlationId);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  };

  httpServer.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const { pathname, search } = new URL(req.url ?? '/', 'http://gateway.invalid');
    // CORS (credentials travel in headers, bearer tokens, never in cookies): `*`, or the
    // request's own origin when allowed. A browser's request from an origin not allowed is refused.
    const origin = req.headers.origin;
    if (corsOrigins === '*') {
      res.setHeader('access-control-allow-origin', '*');
    } else {
      res.setHeader('vary', 'Origin');
      if (origin !== undefined && originAllowed(origin, req.headers.host)) res.setHeader('access-control-allow-origin', origin);
    }
    if (!originAllowed(origin, req.headers.host)) {
      req.resume();
      res.setHeader('connection', 'close');
      sendGraphQLError(res, 403, `Origin ${JSON.stringify(origin)} is not allowed (GATEWAY_CORS_ORIGINS)`, GatewayErrorCode.Forbidden);
      return;
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, {
        'access-control-allow-methods': 'GET, POST, OPTIONS',
        'access-control-allow-headers': req.headers['access-control-request-headers'] ?? 'content-type, authorization',
        'access-control-max-age': '600',
      });
      res.end();
      return;
    }
    let handled: Promise<void>;
    let page: WebPage | undefined;
    if (pathname === '/health/live' && (req.method === 'GET' || req.method === 'HEAD')) {
      handled = Promise.resolve(sendJson(res, 200, { status: 'ok' }));
    } else if ((pathname === '/health' || pathname === '/health/ready') && (req.method === 'GET' || req.method === 'HEAD')) {
      handled = health(res);
    } else if (GRAPHQL_PATHS.has(pathname) && (req.method === 'GET' || req.method === 'POST')) {
      // Tracing on: a SERVER span continuing the client's traceparent; Apollo Gateway's spans are its children.
      handled = withServerSpan(req, res, 'gateway', pathname, () => handleGraphQL(req, res, search));
    } else if (pathname === METRICS_PATH) {
      req.resume();
      handled = metrics.handle(req, res);
    } else if ((page = webAssets.pageOf(pathname)) !== undefined) {
      handled = webAssets.handle(req, res, page, pathname, search);
    } else {
      handled = Promise.resolve(sendJson(res, 404, { error: `No route ${req.method} ${pathname}: use /graphql, /monitor/, /graphiql/, /health/live or /health/ready` }));
    }
    handled.catch((error: unknown) => {
      log.error({ err: error }, 'gateway request failed');
      if (!res.headersSent) sendGraphQLError(res, 500, 'Internal gateway error', 'INTERNAL_SERVER_ERROR');
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port, options.host ?? '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });

  try {
    await apollo.start();
  } catch (error) {
    phase = 'stopped';
    httpServer.closeAllConnections();
    await new Promise<void>((resolve) => httpServer.close(() => resolve()));
    throw error;
  }
  phase = 'ready';

  const url = `${baseUrl(httpServer)}/graphql`;
  listeningUrl = url;

  // graphql-ws on the same port and path (issue 6): subscriptions through the engine, queries and
  // mutations through Apollo Server like HTTP requests.
  const serviceMap = Object.fromEntries(
    resolvedSubgraphs.map(({ name, url: subgraphUrl }) => [
      name,
      metrics.instrumentDataSource(name, new SubgraphDataSource({ name, url: subgraphUrl, timeoutMs: timeoutMsOf(name), identitySigner, dedupeInFlight: options.dedupeInFlight ?? true })),
    ]),
  );
  const engine = createSubscriptionEngine({
    supergraphSdl: executableSdl,
    subgraphUrls: Object.fromEntries(resolvedSubgraphs.map(({ name, url: subgraphUrl }) => [name, subgraphUrl])),
    serviceMap,
    limits,
    identitySigner,
    authorizationPolicy,
    logger: log.child({ component: 'subscriptions' }),
    onDelivered: metrics.eventDelivered,
    async executeOperation(request, identity) {
      const response = await apollo.executeOperation(request, { contextValue: { identity, correlationId: randomUUID() } });
      const body = response.body.kind === 'single' ? response.body.singleResult : { errors: [{ message: 'Incremental delivery is not supported over websockets', extensions: { code: 'BAD_REQUEST' } }] };
      return Buffer.from(JSON.stringify(body));
    },
  });
  const ws: WsServer = createWsServer<ConnectionIdentity>({
    server: httpServer,
    path: '/graphql',
    logger: log.child({ component: 'websocket' }),
    ...options.websocketLimits,
    authenticate: async (connectionParams) => ({ identity: await authenticate({ connectionParams }) }),
    // Closed 4403 `Token expired` at the token's exp (+ clock tolerance): the client reconnects with a fresh token and its cursor.
    expiresAtMs: (connection) => connection.identity.identity.expiresAtMs,
    allowOrigin: (origin, request) => originAllowed(origin, request.headers.host),
    onSlowConsumer: metrics.slowConsumerClosed,
    onSubscribe: (operation) => {
      // As over HTTP, before anything parses it; the HTTP status means nothing here.
      try {
        checkDocumentSize(operation.payload.query, limits.maxDocumentBytes);
      } catch (error) {
        const { http: _http, ...extensions } = (error as InstanceType<typeof GraphQLError>).extensions;
        throw new GraphQLError((error as Error).message, { extensions });
      }
      return engine.onSubscribe(operation);
    },
  });

  metrics.observe(ws, engine);
  log.info({ url, subgraphs: resolvedSubgraphs }, 'gateway ready');

  let closing: Promise<void> | undefined;
  return {
    url,
    close() {
      closing ??= (async () => {
        phase = 'stopping';
        try {
          // Clients hear 1001 (going away) and resume elsewhere from their last cursor.
          await ws.close();
          await engine.close();
          // Runs the drain plugin: stops accepting, lets in-flight requests finish, closes the server.
          await apollo.stop();
        } finally {
          if (httpServer.listening) {
            httpServer.closeAllConnections();
            await new Promise<void>((resolve) => httpServer.close(() => resolve()));
          }
          phase = 'stopped';
          log.info('gateway stopped');
        }
      })();
      return closing;
    },
  };
}

/**
 * Whether a request with this `Origin` header may be served: no `Origin` (not a browser),
 * `corsOrigins` is `'*'`, `Origin` is in the list (compared as WHATWG URL origins), or it names
 * the `Host` the request was sent to (same origin; the scheme is not compared, so a gateway
 * behind a TLS-terminating proxy still recognises its own `https://` origin). `Origin: null`
 * (an opaque origin: sandboxed frame, `file:`) is allowed only by `'*'`.
 */
export function isOriginAllowed(corsOrigins: CorsOrigins, origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined || corsOrigins === '*') return true;
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (host !== undefined && url.host === host.toLowerCase()) return true;
  return corsOrigins.includes(url.origin);
}

/**
 * `ws://<host>/graphql`: the websocket endpoint as the client reached the HTTP one (its `Host`
 * header when it is a plain `host[:port]`, else `fallback`'s host).
 */
function websocketUrl(host: string | undefined, fallback: string): string {
  const plainHost = host !== undefined && /^(?:[\w.-]+|\[[0-9a-fA-F:.]+\])(?::\d{1,5})?$/.test(host) ? host : new URL(fallback).host;
  return `ws://${plainHost}/graphql`;
}

/** Apollo Server's message for a GET of a subscription (HTTP 405: GraphQL over HTTP allows GET for queries only). */
const GET_SUBSCRIPTION_MESSAGE = 'GET requests only support query operations, not subscription operations';

/** `formatError` step: Apollo's 405 for a GET of a subscription also names the websocket endpoint. */
function withWebsocketHint(formatted: GraphQLFormattedError, gatewayUrl: string): GraphQLFormattedError {
  if (formatted.message !== GET_SUBSCRIPTION_MESSAGE) return formatted;
  return { ...formatted, message: `${GET_SUBSCRIPTION_MESSAGE}: subscriptions are served over WebSocket only, at ${websocketUrl(undefined, gatewayUrl)} with the subprotocol ${WEBSOCKET_PROTOCOL}` };
}

/**
 * Answers a `subscription` sent over HTTP with HTTP 400 `BAD_REQUEST` naming the websocket
 * endpoint and its subprotocol, where the gateway's executor would have failed (HTTP 500).
 */
function subscriptionsOverHttpPlugin(fallbackUrl: () => string): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, request }) {
          if (operation?.operation !== 'subscription') return;
          const url = websocketUrl(request.http?.headers.get('host'), fallbackUrl());
          throw new GraphQLError(`Subscriptions are served over WebSocket only: connect to ${url} with the subprotocol ${WEBSOCKET_PROTOCOL}`, {
            extensions: { code: GatewayErrorCode.BadRequest, http: { status: 400 } },
          });
        },
      };
    },
  };
}

/**
 * Whether an HTTP request asks for the landing page (Sandbox), which needs no token: a GET whose
 * `Accept` names `text/html` and whose URL has neither `query` nor `extensions` (no operation).
 */
function isLandingPageRequest(req: http.IncomingMessage, search: string): boolean {
  if (req.method !== 'GET' || !/\btext\/html\b/i.test(req.headers.accept ?? '')) return false;
  const params = new URLSearchParams(search);
  return !params.has('query') && !params.has('extensions');
}

/** `http://host:port` of a listening server; unspecified addresses (0.0.0.0, ::) print as 127.0.0.1. */
function baseUrl(server: http.Server): string {
  const address = server.address() as AddressInfo;
  let host = address.address;
  if (host === '0.0.0.0' || host === '::') host = '127.0.0.1';
  else if (address.family === 'IPv6') host = `[${host}]`;
  return `http://${host}:${address.port}`;
}

/** `record` without its `undefined` entries, so they do not override what is spread before. */
function definedOnly<T extends object>(record: T): Partial<T> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Partial<T>;
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Reads a request body up to `limit` bytes; `'too-large'` (and the rest discarded) past it. */
async function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer | 'too-large'> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return 'too-large';
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function sendGraphQLError(res: http.ServerResponse, status: number, message: string, code: string): void {
  sendJson(res, status, { errors: [{ message, extensions: { code } }] });
}
