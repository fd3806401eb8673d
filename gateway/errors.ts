/**
 * Codes of the errors the gateway itself produces; they become GraphQL `extensions.code`.
 * Errors a subgraph returns keep the subgraph's own code (for example `WRONG_EXPECTED_VERSION`
 * or `NOT_FOUND`) and gain `extensions.serviceName`.
 */
export const GatewayErrorCode = {
  /** The caller could not be verified by `gateway/auth.ts` (HTTP status 401). */
  Unauthenticated: 'UNAUTHENTICATED',
  /** A subgraph could not be reached (connection refused, reset, DNS failure...). */
  SubgraphUnavailable: 'SUBGRAPH_UNAVAILABLE',
  /** A subgraph answered with a non-2xx HTTP status (401 and 403 keep `UNAUTHENTICATED`/`FORBIDDEN`). */
  SubgraphRequestFailed: 'SUBGRAPH_REQUEST_FAILED',
  /** The HTTP request body is not valid JSON or is larger than the gateway accepts (HTTP 400/413). */
  BadRequest: 'BAD_REQUEST',
  /** The gateway has not finished loading its supergraph, or is shutting down (HTTP 503). */
  GatewayNotReady: 'GATEWAY_NOT_READY',
} as const;
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];
