/**
 * How the gateway talks to one subgraph: Apollo's `RemoteGraphQLDataSource` plus flowgraph's
 * request headers and error codes.
 */
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import { GraphQLError } from 'graphql';
import { ACTOR_HEADER, ROLE_HEADER } from './auth.ts';
import type { GatewayContext } from './context.ts';
import { GatewayErrorCode } from './errors.ts';

/** Header carrying the request's correlation id to subgraphs (event metadata `correlation_id`). */
export const CORRELATION_ID_HEADER = 'x-correlation-id';
/** W3C Trace Context header, forwarded unchanged when the client sent one. */
export const TRACEPARENT_HEADER = 'traceparent';

/**
 * A data source for subgraph `name` at `url`. Every request it sends carries:
 * - `x-flowgraph-actor` / `x-flowgraph-role`: the identity `gateway/auth.ts` verified (never a
 *   header the client sent: the subgraph request's headers are built here from scratch);
 * - `x-correlation-id`: the client's, or the one the gateway generated for the request;
 * - `traceparent`: the client's, when it sent one.
 *
 * Failures become GraphQL errors with `extensions.serviceName` and a code from
 * `gateway/errors.ts`: `SUBGRAPH_UNAVAILABLE` when the subgraph cannot be reached,
 * `SUBGRAPH_REQUEST_FAILED` for a non-2xx answer (401/403 keep `UNAUTHENTICATED`/`FORBIDDEN`).
 * Messages never include the subgraph's URL, a stack trace or the subgraph's raw body.
 */
export class SubgraphDataSource extends RemoteGraphQLDataSource<GatewayContext> {
  readonly name: string;

  constructor(options: { name: string; url: string }) {
    // Node's own fetch (undici, keep-alive per origin), not Apollo's default make-fetch-happen:
    // profiled in bench:subscriptions, the default fetcher was 35 % of the gateway's busy time
    // per entity fetch (an `Error().stack` captured per request, source-mapped under tsx).
    super({ url: options.url, fetcher: globalThis.fetch as unknown as RemoteGraphQLDataSource['fetcher'] });
    this.name = options.name;
  }

  override willSendRequest(options: GraphQLDataSourceProcessOptions<GatewayContext>): void {
    const headers = options.request.http?.headers;
    if (!headers) return;
    // Schema loading and health checks carry no incoming request, hence no identity.
    if (options.kind !== 'incoming operation') return;
    const context = options.context as Partial<GatewayContext>;
    if (context.identity) {
      headers.set(ACTOR_HEADER, context.identity.subject);
      headers.set(ROLE_HEADER, context.identity.role);
    }
    if (context.correlationId) headers.set(CORRELATION_ID_HEADER, context.correlationId);
    if (context.traceparent) headers.set(TRACEPARENT_HEADER, context.traceparent);
  }

  override didEncounterError(error: Error, _fetchRequest: unknown, fetchResponse?: { status: number }): void {
    if (error instanceof GraphQLError) {
      // errorFromResponse's error: keep its code, drop `extensions.response` (URL and raw body).
      const { response: _response, ...extensions } = error.extensions as Record<string, unknown>;
      throw new GraphQLError(`Subgraph "${this.name}" answered HTTP ${fetchResponse?.status ?? 'error'}`, {
        extensions: {
          ...extensions,
          code: extensions.code ?? GatewayErrorCode.SubgraphRequestFailed,
          serviceName: this.name,
        },
      });
    }
    if (fetchResponse === undefined) {
      throw new GraphQLError(`Subgraph "${this.name}" is unavailable`, {
        extensions: { code: GatewayErrorCode.SubgraphUnavailable, serviceName: this.name },
        originalError: error,
      });
    }
    throw new GraphQLError(`Subgraph "${this.name}" sent an unreadable response`, {
      extensions: { code: GatewayErrorCode.SubgraphRequestFailed, serviceName: this.name },
      originalError: error,
    });
  }
}
