/**
 * A small real subgraph for gateway tests: `@apollo/subgraph` behind Apollo Server 5 on a real
 * port, which can be stopped and restarted on the same port and counts the requests it gets.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApolloServer, HeaderMap } from '@apollo/server';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { parse } from 'graphql';

/** A running test subgraph. */
export interface TestSubgraph {
  port: number;
  /** Its GraphQL endpoint. */
  url: string;
  /** GraphQL requests received since it was created (schema loading aside: the gateway uses a static supergraph). */
  readonly requests: number;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts a subgraph of `sdl` with `resolvers` on `port` (0 = any free port). Resolvers get
 * `{ headers }` (the request's headers) as their context.
 */
export async function testSubgraph(sdl: string, resolvers: Record<string, any>, port = 0): Promise<TestSubgraph> {
  let server: http.Server | undefined;
  let apollo: ApolloServer | undefined;
  let requests = 0;
  const subgraph: TestSubgraph = {
    port,
    url: '',
    get requests() {
      return requests;
    },
    async start() {
      apollo = new ApolloServer({ schema: buildSubgraphSchema({ typeDefs: parse(sdl), resolvers }), stopOnTerminationSignals: false });
      await apollo.start();
      const running = apollo;
      server = http.createServer(async (req, res) => {
        // Like flowgraph's subgraphs (federation/httpServer.ts): liveness for the gateway's readiness; not counted in `requests`.
        if (req.method === 'GET' && req.url === '/health/live') {
          res.setHeader('content-type', 'application/json');
          res.end('{"status":"ok"}');
          return;
        }
        requests++;
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const headerMap = new HeaderMap();
        for (const [key, value] of Object.entries(req.headers)) if (typeof value === 'string') headerMap.set(key, value);
        const response = await running.executeHTTPGraphQLRequest({
          httpGraphQLRequest: {
            method: req.method ?? 'POST',
            headers: headerMap,
            search: new URL(req.url ?? '/', 'http://subgraph.invalid').search,
            body: chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined,
          },
          context: async () => ({ headers: req.headers }),
        });
        for (const [key, value] of response.headers) res.setHeader(key, value);
        res.statusCode = response.status ?? 200;
        res.end(response.body.kind === 'complete' ? response.body.string : '');
      });
      await new Promise<void>((resolve) => server!.listen(subgraph.port, '127.0.0.1', resolve));
      subgraph.port = (server.address() as AddressInfo).port;
      subgraph.url = `http://127.0.0.1:${subgraph.port}/graphql`;
    },
    async stop() {
      if (server?.listening) {
        server.closeAllConnections();
        await new Promise<void>((resolve) => server!.close(() => resolve()));
      }
      await apollo?.stop();
    },
  };
  await subgraph.start();
  return subgraph;
}
