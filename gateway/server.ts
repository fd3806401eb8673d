/**
 * The flowgraph gateway: `@apollo/gateway` executing a static supergraph behind
 * `@apollo/server` 5, served by Node's own HTTP server (no framework).
 *
 * Routes (host and port from the options):
 * - `POST /graphql` (and `/`): GraphQL over HTTP; `GET` with `?query=` for queries.
 * - `GET /graphql` (and `/`) from a browser: Apollo Sandbox (development) or Apollo's production
 *   landing page (`production: true`).
 * - `GET /health`: `200 {"status":"ok","subgraphs":[...]}` once the supergraph is loaded,
 *   `503 {"status":"starting"|"stopping"}` otherwise.
 * - anything else: `404`.
 *
 * Every operation passes the operation limits of `gateway/operationLimits.ts` (depth, aliases,
 * directives, tokens, cost, variable depth) before it is planned: HTTP 400 otherwise.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloGateway } from '@apollo/gateway';
import { ApolloServer, HeaderMap, type HTTPGraphQLRequest } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import {
  ApolloServerPluginLandingPageLocalDefault,
  ApolloServerPluginLandingPageProductionDefault,
} from '@apollo/server/plugin/landingPage/default';
import type { Logger } from 'pino';
import { authenticate as defaultAuthenticate, type Authenticate } from './auth.ts';
import type { GatewayContext } from './context.ts';
import { GatewayErrorCode } from './errors.ts';
import {
  formatTokenLimitError,
  operationLimitsFromEnv,
  operationLimitsPlugin,
  parseOptions,
  type OperationLimits,
} from './operationLimits.ts';
import { CORRELATION_ID_HEADER, SubgraphDataSource, TRACEPARENT_HEADER } from './subgraphDataSource.ts';
import { createSubscriptionEngine, type ConnectionIdentity } from './subscriptions/engine.ts';
import { supergraphSubgraphs } from './supergraph.ts';
import { createWsServer, type WsServer, type WsServerLimits } from '../ws/server.ts';

/** Largest request body the gateway reads by default: 10 MiB. */
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
  /** The authentication hook. @default `authenticate` from `gateway/auth.ts` */
  authenticate?: Authenticate;
  /** Largest accepted request body in bytes; larger ones get HTTP 413. @default 10 MiB */
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
  const authenticate = options.authenticate ?? defaultAuthenticate;
  const maxBodyBytes = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const overrides = options.subgraphUrlOverrides ?? {};
  const limits: OperationLimits = { ...operationLimitsFromEnv(process.env), ...definedOnly(options.operationLimits ?? {}) };

  const subgraphs = supergraphSubgraphs(options.supergraphSdl);
  const names = new Set(subgraphs.map((subgraph) => subgraph.name));
  for (const name of Object.keys(overrides)) {
    if (!names.has(name)) {
      throw new Error(`URL override for unknown subgraph "${name}": the supergraph has ${[...names].join(', ') || 'no subgraphs'}`);
    }
  }
  const resolvedSubgraphs = subgraphs.map(({ name, url }) => ({ name, url: overrides[name] ?? url }));

  let phase: Phase = 'starting';
  const apolloLogger = {
    debug: (message: unknown) => log.debug(String(message)),
    info: (message: unknown) => log.info(String(message)),
    warn: (message: unknown) => log.warn(String(message)),
    error: (message: unknown) => log.error(String(message)),
  };
  const gateway = new ApolloGateway({
    supergraphSdl: options.supergraphSdl,
    buildService: ({ name, url }) => new SubgraphDataSource({ name, url: overrides[name] ?? url ?? '' }),
    logger: apolloLogger,
  });
  const httpServer = http.createServer();
  const apollo = new ApolloServer<GatewayContext>({
    gateway,
    introspection: !production,
    includeStacktraceInErrorResponses: false,
    // Production: no "Did you mean …?" field suggestions in validation errors.
    hideSchemaDetailsFromClientErrors: production,
    parseOptions: parseOptions(limits),
    formatError: formatTokenLimitError,
    // The process's composition root owns SIGINT/SIGTERM (bin/start.ts), not Apollo.
    stopOnTerminationSignals: false,
    logger: apolloLogger,
    plugins: [
      ApolloServerPluginDrainHttpServer({ httpServer, stopGracePeriodMillis: options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS }),
      production
        ? ApolloServerPluginLandingPageProductionDefault({ footer: false })
        : ApolloServerPluginLandingPageLocalDefault({ footer: false }),
      operationLimitsPlugin<GatewayContext>(limits),
    ],
  });

  const health = (res: http.ServerResponse) => {
    if (phase === 'ready') {
      sendJson(res, 200, { status: 'ok', subgraphs: resolvedSubgraphs.map((subgraph) => subgraph.name) });
    } else {
      sendJson(res, 503, { status: phase === 'starting' ? 'starting' : 'stopping' });
    }
  };

  const handleGraphQL = async (req: http.IncomingMessage, res: http.ServerResponse, search: string) => {
    if (phase !== 'ready') {
      sendGraphQLError(res, 503, 'The gateway is not ready: its supergraph is loading or it is stopping', GatewayErrorCode.GatewayNotReady);
      return;
    }
    let body: unknown;
    if (req.method === 'POST' && JSON_CONTENT_TYPE.test(req.headers['content-type'] ?? '')) {
      const read = await readBody(req, maxBodyBytes);
      if (read === 'too-large') {
        res.setHeader('connection', 'close');
        sendGraphQLError(res, 413, `Request body exceeds ${maxBodyBytes} bytes`, GatewayErrorCode.BadRequest);
        return;
      }
      try {
        body = read.length === 0 ? undefined : JSON.parse(read.toString('utf8'));
      } catch {
        sendGraphQLError(res, 400, 'Request body is not valid JSON', GatewayErrorCode.BadRequest);
        return;
      }
    } else {
      req.resume();
    }

    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const httpGraphQLRequest: HTTPGraphQLRequest = { method: (req.method ?? 'GET').toUpperCase(), headers, search, body };
    const clientCorrelationId = headerValue(req.headers[CORRELATION_ID_HEADER]);
    const correlationId =
      clientCorrelationId !== undefined && SAFE_CORRELATION_ID.test(clientCorrelationId) ? clientCorrelationId : randomUUID();
    const traceparent = headerValue(req.headers[TRACEPARENT_HEADER]);

    // The landing page (a browser GET) needs no identity; everything else is authenticated.
    let identity;
    try {
      identity = await authenticate({ headers: req.headers });
    } catch (error) {
      const code = (error as { extensions?: { code?: unknown } }).extensions?.code;
      if (code !== GatewayErrorCode.Unauthenticated) throw error;
      sendGraphQLError(res, 401, (error as Error).message, GatewayErrorCode.Unauthenticated);
      return;
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
    // Permissive CORS: credentials travel in headers (bearer tokens), never in cookies.
    res.setHeader('access-control-allow-origin', '*');
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
    if (pathname === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
      handled = Promise.resolve(health(res));
    } else if (GRAPHQL_PATHS.has(pathname) && (req.method === 'GET' || req.method === 'POST')) {
      handled = handleGraphQL(req, res, search);
    } else {
      handled = Promise.resolve(sendJson(res, 404, { error: `No route ${req.method} ${pathname}: use /graphql or /health` }));
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

  // graphql-ws on the same port and path (issue 6): subscriptions through the engine, queries and
  // mutations through Apollo Server like HTTP requests.
  const serviceMap = Object.fromEntries(resolvedSubgraphs.map(({ name, url: subgraphUrl }) => [name, new SubgraphDataSource({ name, url: subgraphUrl })]));
  const engine = createSubscriptionEngine({
    supergraphSdl: options.supergraphSdl,
    subgraphUrls: Object.fromEntries(resolvedSubgraphs.map(({ name, url: subgraphUrl }) => [name, subgraphUrl])),
    serviceMap,
    limits,
    logger: log.child({ component: 'subscriptions' }),
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
    onSubscribe: (operation) => engine.onSubscribe(operation),
  });

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
