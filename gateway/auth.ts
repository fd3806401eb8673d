/**
 * The gateway's single authentication hook (DESIGN.md, "Auth"). Every request that reaches the
 * gateway goes through {@link authenticate} exactly once: HTTP requests with their headers (a
 * bearer token once the auth issue lands), graphql-ws connections with their `connection_init`
 * payload. The verified {@link Identity} is then forwarded to subgraphs in the
 * {@link ACTOR_HEADER} / {@link ROLE_HEADER} headers (see `gateway/subgraphDataSource.ts`), so
 * subgraphs never see a client's raw credentials and never trust a header a client sent.
 *
 * Until the auth issue lands the hook admits everyone as `operator`. Adding real tokens changes
 * this file only (and `test/support/client.ts`, the one place tests build their credentials).
 */
import { GraphQLError } from 'graphql';
import { GatewayErrorCode } from './errors.ts';

/** What a principal may do. Only `operator` exists until the auth issue adds more roles. */
export type Role = 'operator';

/** The verified caller of one request or websocket connection. */
export interface Identity {
  /** Stable id of the principal; subgraphs record it as the `actor` of the events they append. */
  subject: string;
  /** The principal's role. */
  role: Role;
}

/** Node's incoming headers shape (`IncomingHttpHeaders`): lowercase names. */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

/**
 * What the hook authenticates: the headers of an HTTP request, or the `connection_init` payload
 * of a graphql-ws connection (`connectionParams`, whatever JSON object the client sent, or
 * `undefined` when it sent none).
 */
export type AuthenticationInput =
  | { headers: RequestHeaders }
  | { connectionParams: Readonly<Record<string, unknown>> | undefined };

/** Signature of the hook, so tests and the gateway can swap in another one. */
export type Authenticate = (input: AuthenticationInput) => Promise<Identity>;

/** Header carrying the verified identity's `subject` from the gateway to subgraphs. */
export const ACTOR_HEADER = 'x-flowgraph-actor';
/** Header carrying the verified identity's `role` from the gateway to subgraphs. */
export const ROLE_HEADER = 'x-flowgraph-role';

/** The identity everyone gets until the auth issue lands. */
export const OPERATOR: Identity = Object.freeze({ subject: 'operator', role: 'operator' });

/**
 * Authenticates one HTTP request or graphql-ws connection.
 *
 * For now it admits every caller as {@link OPERATOR} (`{ subject: 'operator', role: 'operator' }`)
 * whatever it sent. Once tokens exist, a missing or invalid credential throws
 * {@link unauthenticated}; the HTTP handler answers that with status 401 and a GraphQL error
 * whose `extensions.code` is `UNAUTHENTICATED`, and the websocket server closes the connection
 * with code 4401.
 *
 * @throws GraphQLError with `extensions.code` `UNAUTHENTICATED` (not yet: everyone is admitted)
 */
export const authenticate: Authenticate = async (_input) => OPERATOR;

/** The error {@link authenticate} throws when a caller cannot be verified. */
export function unauthenticated(reason: string): GraphQLError {
  return new GraphQLError(`Not authenticated: ${reason}`, {
    extensions: { code: GatewayErrorCode.Unauthenticated, http: { status: 401 } },
  });
}
