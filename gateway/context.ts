/**
 * The per-request context the gateway builds once per HTTP request (and, later, per graphql-ws
 * operation) and hands to Apollo; `SubgraphDataSource` turns it into subgraph request headers.
 */
import type { Identity } from './auth.ts';

/** Context of one gateway operation. */
export interface GatewayContext {
  /** The caller, as verified by `gateway/auth.ts`. */
  identity: Identity;
  /** The client's `x-correlation-id`, or a fresh UUID when it sent none. */
  correlationId: string;
  /** The client's W3C `traceparent` header, when it sent one. */
  traceparent?: string;
}
