/**
 * Child of `bench:gateway --peers` (bench/gatewayPeers.ts): one peer gateway, alone in its
 * process so that its CPU time and RSS can be read, on flowgraph's supergraph (its subgraph URLs
 * rewritten to the running ones):
 *
 * - `stock`: `@apollo/gateway` `ApolloGateway({ supergraphSdl, buildService })` in
 *   `@apollo/server` `ApolloServer({ gateway })` served by `startStandaloneServer`, no plugin
 *   added; each subgraph's data source is a plain `RemoteGraphQLDataSource` (its default fetcher)
 *   whose `willSendRequest` only sets `x-flowgraph-identity` (the subgraphs require it).
 * - `hive`: Hive Gateway (`@graphql-hive/gateway` `createGatewayRuntime`) on Node's HTTP server,
 *   default settings; `transportEntries['*.http']` adds the same header. With
 *   `dedupe: false` the HTTP transport's `deduplicateInflightRequests: false` (the executor's
 *   merging of identical in-flight subgraph requests, on by default).
 *
 * Both get the supergraph as flowgraph's gateway hands it to Apollo: `executableSupergraphSdl`
 * (gateway/authorization.ts) removes `for: SECURITY` from the `@requiresScopes` link (flowgraph enforces it
 * itself; `@apollo/gateway` refuses to load a supergraph with a SECURITY feature it lacks).
 * The identity is one static gateway-signed token for the run (`benchSubgraphIdentity`, one day).
 * Commands: `start { kind, supergraphSdl, urls, subgraphIdentity, dedupe? }` → `{ url }`;
 * `profileStart`, `profileStop { file }` (bench/cpuProfile.ts).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { executableSupergraphSdl } from '../gateway/authorization.ts';
import { serveBenchCommands } from './childProcess.ts';
import { profileCommands } from './cpuProfile.ts';

let close: (() => Promise<void>) | undefined;

/** The supergraph with `urls` in place of its subgraphs' recorded URLs (as bench/subscriptionGateway.ts). */
function withSubgraphUrls(supergraphSdl: string, urls: Readonly<Record<string, string>>): string {
  return supergraphSdl.replace(/@join__graph\(name: "([^"]+)", url: "([^"]*)"\)/g, (whole, name: string) =>
    urls[name] ? `@join__graph(name: "${name}", url: "${urls[name]}")` : whole,
  );
}

async function startStock(supergraphSdl: string, identity: string): Promise<string> {
  const { ApolloGateway, RemoteGraphQLDataSource } = await import('@apollo/gateway');
  const { ApolloServer } = await import('@apollo/server');
  const { startStandaloneServer } = await import('@apollo/server/standalone');
  const gateway = new ApolloGateway({
    supergraphSdl,
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource({
        url,
        willSendRequest({ request }) {
          request.http?.headers.set('x-flowgraph-identity', identity);
        },
      }),
  });
  const server = new ApolloServer({ gateway });
  const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
  close = () => server.stop();
  return url;
}

async function startHive(supergraphSdl: string, identity: string, dedupe: boolean): Promise<string> {
  const { createGatewayRuntime } = await import('@graphql-hive/gateway');
  const runtime = createGatewayRuntime({
    supergraph: supergraphSdl,
    logging: 'warn',
    transportEntries: {
      '*.http': {
        headers: [['x-flowgraph-identity', identity]],
        ...(dedupe ? {} : { options: { deduplicateInflightRequests: false } }),
      },
    },
  });
  const server = http.createServer(runtime);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  close = async () => {
    await runtime.dispose();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}${runtime.graphqlEndpoint}`;
  // The runtime loads the supergraph on its first request.
  const body = (await (await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ __typename }' }) })).json()) as { data?: unknown };
  if (!body.data) throw new Error(`hive gateway: ${JSON.stringify(body)}`);
  return url;
}

serveBenchCommands(
  {
    async start(args: { kind: 'stock' | 'hive'; supergraphSdl: string; urls: Record<string, string>; subgraphIdentity: string; dedupe?: boolean }) {
      const sdl = withSubgraphUrls(executableSupergraphSdl(args.supergraphSdl), args.urls);
      const url = args.kind === 'stock' ? await startStock(sdl, args.subgraphIdentity) : await startHive(sdl, args.subgraphIdentity, args.dedupe ?? true);
      return { url };
    },
    ...profileCommands,
  },
  async () => {
    await close?.();
  },
);
