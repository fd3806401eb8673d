/**
 * Apollo Server 5 on Node's HTTP server (Apollo's `executeHTTPGraphQLRequest` integration API),
 * without the standalone helper so that listen errors reject, bodies are bounded and the path
 * is fixed:
 * - `POST|GET <path>`: GraphQL (JSON bodies up to `maxBodyBytes`); a number in the body (or
 *   in GET's `variables`) that a double cannot hold exactly is HTTP 400 `BAD_USER_INPUT`
 *   (`reason: 'INEXACT_NUMBER'`, eventstore/jsonNumbers.ts) instead of being rounded;
 * - with `authenticate`: a request to `<path>` it refuses gets HTTP 401 `UNAUTHENTICATED` before
 *   its body is read or Apollo runs (the subgraphs' check of the gateway identity);
 * - `GET /health/live`: 200 `{"status":"ok"}` while the process answers; `GET /health/ready` (and
 *   its alias `GET /health`): `readiness`'s report, 200 when `ok`, else 503 (never authenticated;
 *   `federation/readiness.ts`);
 * - the `routes` given (e.g. `/metrics`), never authenticated;
 * - anything else: 404.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { HeaderMap, type ApolloServer, type BaseContext, type ContextFunction } from '@apollo/server';
import { ApolloServerPluginDrainHttpServer } from '@apollo/server/plugin/drainHttpServer';
import { inexactNumberRefusal } from '../eventstore/jsonNumbers.ts';
import type { ReadinessReport } from './readiness.ts';
import { withServerSpan } from '../observability/httpSpans.ts';
import { tracingOn } from '../observability/tracer.ts';

/** Options of `listenApollo`. */
export interface ListenApolloOptions<TContext extends BaseContext, TAuth = undefined> {
  /** TCP port (0 = any free port). */
  port: number;
  /** Interface to bind. */
  host: string;
  /** GraphQL endpoint path. @default '/graphql' */
  path?: string;
  /** Largest request body accepted, in bytes; larger ones get 413. @default 2097152 (2 MiB) */
  maxBodyBytes?: number;
  /**
   * Authenticates each GraphQL request before anything else (body, Apollo): what it resolves
   * to reaches `context` as `auth`; when it rejects, the answer is HTTP 401 with one error
   * `{ message, extensions: { code: 'UNAUTHENTICATED' } }` (`message` the error's when it has
   * `code === 'UNAUTHENTICATED'`, else a generic one) and `onRefused` gets the error.
   * @default none: every request is admitted (`auth` undefined)
   */
  authenticate?: (req: http.IncomingMessage) => Promise<TAuth>;
  /** Told of each request `authenticate` refused (e.g. to log why at debug level). */
  onRefused?: (error: unknown, req: http.IncomingMessage) => void;
  /** Builds the per-request context from the request (headers) and what `authenticate` resolved to. */
  context: ContextFunction<[{ req: http.IncomingMessage; auth: TAuth }], TContext>;
  /**
   * The service name of the SERVER spans of GraphQL requests when tracing is on
   * (`flowgraph.service`, `observability/httpSpans.ts`). @default none: no spans
   */
  service?: string;
  /** Called with unexpected HTTP-level errors. */
  onError: (error: unknown) => void;
  /**
   * The readiness probe of `GET /health/ready` and `GET /health` (`federation/readiness.ts`
   * `createReadinessProbe`). @default always ready: `{"status":"ok","checks":{}}`
   */
  readiness?: () => Promise<ReadinessReport>;
  /**
   * Attaches more to the HTTP server once it listens (the graphql-ws server of the subgraph's
   * subscriptions, on the same port); what it returns is closed first on `close()`.
   */
  attach?: (server: http.Server) => { close(): Promise<void> };
  /**
   * More routes by exact path (any method; the handler answers), e.g. `{ '/metrics': … }`, served
   * before the GraphQL path and never authenticated: route only what may be read without the
   * gateway's identity. @default none
   */
  routes?: Readonly<Record<string, (req: http.IncomingMessage, res: http.ServerResponse) => Promise<void> | void>>;
}

/** A listening server. */
export interface ListeningApollo {
  /** e.g. `http://127.0.0.1:4001/graphql` */
  url: string;
  /** Closes what `attach` attached, then stops Apollo (which drains and closes the HTTP server, grace 10 s). Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts `server` (not started yet) and listens.
 * @throws the listen error (e.g. EADDRINUSE), after stopping `server`
 */
export async function listenApollo<TContext extends BaseContext, TAuth = undefined>(
  server: ApolloServer<TContext>,
  options: ListenApolloOptions<TContext, TAuth>,
): Promise<ListeningApollo> {
  const path = options.path ?? '/graphql';
  const maxBodyBytes = options.maxBodyBytes ?? 2 * 1024 * 1024;

  const httpServer = http.createServer((req, res) => {
    // Tracing on (observability/tracing.ts): a SERVER span per GraphQL request, continuing the gateway's traceparent.
    const traced = options.service !== undefined && tracingOn() && (req.url ?? '/').split('?', 1)[0] === path;
    (traced ? withServerSpan(req, res, options.service!, path, () => handle(req, res)) : handle(req, res)).catch((error: unknown) => {
      options.onError(error);
      if (!res.headersSent) send(res, 500, { errors: [{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      else res.end();
    });
  });

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (url.pathname === '/health/live') return send(res, 200, { status: 'ok' });
      if (url.pathname === '/health/ready' || url.pathname === '/health') {
        const report = options.readiness ? await options.readiness() : { status: 'ok', checks: {} };
        return send(res, report.status === 'ok' ? 200 : 503, report);
      }
    }
    const route = options.routes && Object.hasOwn(options.routes, url.pathname) ? options.routes[url.pathname] : undefined;
    if (route) {
      req.resume();
      return route(req, res);
    }
    if (url.pathname !== path) return send(res, 404, { errors: [{ message: `Not found: GraphQL is served at ${path}`, extensions: { code: 'NOT_FOUND' } }] });
    let auth = undefined as TAuth;
    if (options.authenticate) {
      try {
        auth = await options.authenticate(req);
      } catch (error) {
        options.onRefused?.(error, req);
        const message = (error as { code?: unknown } | null)?.code === 'UNAUTHENTICATED' ? (error as Error).message : 'Not authenticated';
        // The body is left unread: close the connection rather than drain it.
        res.setHeader('connection', 'close');
        return send(res, 401, { errors: [{ message, extensions: { code: 'UNAUTHENTICATED' } }] });
      }
    }
    const body = await readBody(req, maxBodyBytes);
    if (body === 'too-large') return send(res, 413, { errors: [{ message: `Request body exceeds ${maxBodyBytes} bytes`, extensions: { code: 'BAD_REQUEST' } }] });
    let parsed: unknown;
    if (body.length > 0) {
      try {
        parsed = JSON.parse(body);
      } catch {
        return send(res, 400, { errors: [{ message: 'Request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
      }
    }
    // JSON.parse has rounded any number a double cannot hold: refuse those (eventstore/jsonNumbers.ts).
    const inexact = inexactNumberRefusal(body) ?? inexactNumberRefusal(url.searchParams.get('variables') ?? '', ['variables']);
    if (inexact) return send(res, 400, { errors: [inexact] });
    const headers = new HeaderMap();
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers.set(key, Array.isArray(value) ? value.join(', ') : value);
    }
    const response = await server.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: (req.method ?? 'GET').toUpperCase(), headers, search: url.search, body: parsed },
      context: () => options.context({ req, auth }),
    });
    for (const [key, value] of response.headers) res.setHeader(key, value);
    res.statusCode = response.status ?? 200;
    if (response.body.kind === 'complete') {
      res.end(response.body.string);
      return;
    }
    for await (const chunk of response.body.asyncIterator) res.write(chunk);
    res.end();
  }

  server.addPlugin(ApolloServerPluginDrainHttpServer({ httpServer }));
  await server.start();
  try {
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen({ port: options.port, host: options.host }, () => {
        httpServer.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await server.stop().catch(() => {});
    throw error;
  }
  httpServer.on('error', options.onError);
  const attached = options.attach?.(httpServer);
  const address = httpServer.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  return {
    url: `http://${host}:${address.port}${path}`,
    close: () =>
      (closing ??= (async () => {
        // Websockets first: the HTTP server's close waits for every socket, upgraded ones included.
        await attached?.close().catch(options.onError);
        await server.stop();
      })()),
  };
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) tooLarge = true;
      else chunks.push(chunk);
    });
    req.on('end', () => resolve(tooLarge ? 'too-large' : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}
