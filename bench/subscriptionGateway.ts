/**
 * Child process of `bench:subscriptions`: one gateway under test, alone in its process so that
 * its CPU time and memory can be read (the benchmark runs it with `--expose-gc`).
 *
 * - `flowgraph`: `startGateway` of gateway/server.ts on the checked-in supergraph with the
 *   running subgraphs' URLs, default settings (what `npm start` runs; client tokens verified with
 *   the inherited `GATEWAY_JWT_*`), or with `auth: 'anonymous'` no client token verified.
 * - `hive`: the peer, Hive Gateway (`@graphql-hive/gateway` `createGatewayRuntime`) on the same
 *   supergraph (its subgraph URLs rewritten to the running ones), served on Node's HTTP server
 *   with graphql-ws over `ws` exactly as its own CLI does (`useServer(getGraphQLWSOptions(...))`),
 *   subscriptions to the subgraphs over websockets (`transportEntries` `*.http` →
 *   `subscriptions: { kind: 'ws' }`), default settings otherwise. One setting is added:
 *   Hive's ws transport multiplexes every upstream subscription over one socket per distinct
 *   `connectionParams`, and flowgraph's subgraphs accept at most 100 subscriptions per socket
 *   (ws/server.ts DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION), so the upstream `connectionParams`
 *   carry the client's `bucket` (a client's connection parameter, one bucket per 100 clients):
 *   one upstream socket per 100 subscriptions. Without it the 101st subscription is refused.
 *
 * - `floor`: the physical reference of the idle-memory figure, a bare `ws` server that holds
 *   graphql-transport-ws subscriptions and does nothing else (`startFloor`).
 *
 * Hive sends flowgraph's subgraphs `subgraphIdentity` (a gateway-signed identity) as the
 * `x-flowgraph-identity` header of its fetches and in its upstream `connection_init`.
 *
 * Commands: `start { kind, auth?, supergraphSdl, urls, subgraphIdentity? }` → `{ url }`; `subscriptions` (floor only); `memory` → process.memoryUsage()
 * after full garbage collections; `profileStart`, `profileStop { file }` → the profile's top
 * self-time functions (bench/cpuProfile.ts); `close`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '../config/logger.ts';
import { serveBenchCommands } from './childProcess.ts';
import { profileCommands } from './cpuProfile.ts';

let close: (() => Promise<void>) | undefined;

/** The supergraph with `urls` in place of its subgraphs' recorded URLs. */
export function withSubgraphUrls(supergraphSdl: string, urls: Readonly<Record<string, string>>): string {
  return supergraphSdl.replace(/@join__graph\(name: "([^"]+)", url: "([^"]*)"\)/g, (whole, name: string) =>
    urls[name] ? `@join__graph(name: "${name}", url: "${urls[name]}")` : whole,
  );
}

async function startFlowgraph(supergraphSdl: string, urls: Record<string, string>, auth: 'on' | 'anonymous'): Promise<string> {
  const { startGateway } = await import('../gateway/server.ts');
  const { createAuthenticator } = await import('../gateway/auth.ts');
  const { parseAuthConfig } = await import('../config/authConfig.ts');
  // Tracing as the composition roots start it: on when OTEL_EXPORTER_OTLP_ENDPOINT is set (the flowgraph-traced target).
  const { startTracing } = await import('../observability/tracing.ts');
  const tracing = startTracing(process.env, { defaultServiceName: 'bench-gateway' });
  const gateway = await startGateway({
    supergraphSdl,
    subgraphUrlOverrides: urls,
    port: 0,
    host: '127.0.0.1',
    logger: createLogger('warn').child({ component: 'gateway' }),
    // `on`: the default (GATEWAY_JWT_* of the parent's environment); anonymous: no client token verified.
    ...(auth === 'anonymous' ? { authenticate: createAuthenticator(parseAuthConfig({ GATEWAY_ANONYMOUS_ROLE: 'viewer' })) } : {}),
  });
  close = async () => {
    await gateway.close();
    await tracing.shutdown();
  };
  return gateway.url;
}

async function startHive(supergraphSdl: string, urls: Record<string, string>, subgraphIdentity: string): Promise<string> {
  const { createGatewayRuntime, getGraphQLWSOptions } = await import('@graphql-hive/gateway');
  const { normalizeNodeRequest } = await import('@whatwg-node/server');
  const { WebSocketServer } = await import('ws');
  const { useServer } = await import('graphql-ws/use/ws');
  const runtime = createGatewayRuntime({
    supergraph: withSubgraphUrls(supergraphSdl, urls),
    logging: (process.env.BENCH_HIVE_LOGGING as 'warn' | 'debug' | undefined) ?? 'warn',
    transportEntries: {
      '*.http': {
        // flowgraph's subgraphs trust only a gateway-signed identity: a static one (one day) for the run.
        headers: [['x-flowgraph-identity', subgraphIdentity]],
        options: {
          subscriptions: {
            kind: 'ws',
            location: '/graphql',
            options: { connectionParams: { bucket: '{context.connectionParams.bucket}', identity: subgraphIdentity } },
          },
        },
      },
    },
  });
  const server = http.createServer(runtime);
  const wsServer = new WebSocketServer({ path: runtime.graphqlEndpoint, server });
  const disposable = useServer(
    getGraphQLWSOptions(runtime, (ctx: any) => ({
      req: ctx.extra.request,
      socket: ctx.extra.socket,
      request: normalizeNodeRequest(ctx.extra.request, runtime.fetchAPI as never),
    })),
    wsServer,
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  close = async () => {
    for (const client of wsServer.clients) client.terminate();
    await disposable.dispose();
    await runtime.dispose();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}${runtime.graphqlEndpoint}`;
  // The runtime loads the supergraph on its first HTTP request; a graphql-ws operation arriving
  // first meets a null schema ("Expected null to be a GraphQL schema"). One query loads it.
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) });
  const body = (await response.json()) as { data?: unknown };
  if (!body.data) throw new Error(`hive gateway: ${JSON.stringify(body)}`);
  return url;
}

/** Subscriptions the floor server holds. */
let floorSubscriptions = 0;

/**
 * The physical reference for idle memory: a bare `ws` server speaking just enough
 * graphql-transport-ws to hold subscriptions (ack, count `subscribe`, answer pings), with no
 * GraphQL at all. Its memory per idle subscription is what one socket costs this Node process.
 */
async function startFloor(): Promise<string> {
  const { WebSocketServer } = await import('ws');
  const server = http.createServer((_req, res) => res.writeHead(404).end());
  const wsServer = new WebSocketServer({ server, path: '/graphql', handleProtocols: () => 'graphql-transport-ws' });
  wsServer.on('connection', (socket) => {
    const held = new Map<string, unknown>();
    socket.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString('utf8')) as { type: string; id?: string; payload?: unknown };
      if (message.type === 'connection_init') socket.send('{"type":"connection_ack"}');
      else if (message.type === 'ping') socket.send('{"type":"pong"}');
      else if (message.type === 'subscribe' && message.id) {
        held.set(message.id, message.payload);
        floorSubscriptions++;
      } else if (message.type === 'complete' && message.id && held.delete(message.id)) floorSubscriptions--;
    });
    socket.on('close', () => {
      floorSubscriptions -= held.size;
      held.clear();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  close = async () => {
    for (const client of wsServer.clients) client.terminate();
    wsServer.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
}

serveBenchCommands(
  {
    async start(args: { kind: 'flowgraph' | 'hive' | 'floor'; auth?: 'on' | 'anonymous'; supergraphSdl: string; urls: Record<string, string>; subgraphIdentity?: string }) {
      const url =
        args.kind === 'flowgraph'
          ? await startFlowgraph(args.supergraphSdl, args.urls, args.auth ?? 'on')
          : args.kind === 'hive'
            ? await startHive(args.supergraphSdl, args.urls, args.subgraphIdentity ?? '')
            : await startFloor();
      return { url };
    },
    async subscriptions() {
      return floorSubscriptions;
    },
    async memory() {
      const gc = (globalThis as { gc?: () => void }).gc;
      for (let i = 0; i < 4; i++) {
        gc?.();
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return { ...process.memoryUsage(), gcExposed: gc !== undefined };
    },
    ...profileCommands,
    async close() {
      await close?.();
      close = undefined;
      return true;
    },
  },
  async () => {
    await close?.();
  },
);
