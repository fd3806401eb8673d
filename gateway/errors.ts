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
  /**
   * A subgraph did not answer (headers and body) within the gateway's subgraph request timeout
   * (`GATEWAY_SUBGRAPH_TIMEOUT_MS`, 30 s by default); the request to it is aborted. For a
   * mutation, whether the subgraph applied it is unknown (as for `SUBGRAPH_UNAVAILABLE` once sent).
   */
  SubgraphTimeout: 'SUBGRAPH_TIMEOUT',
  /** A subgraph answered with a non-2xx HTTP status (401 and 403 keep `UNAUTHENTICATED`/`FORBIDDEN`). */
  SubgraphRequestFailed: 'SUBGRAPH_REQUEST_FAILED',
  /**
   * The HTTP request body is not valid JSON or is larger than the gateway accepts (HTTP 400/413),
   * or it is a `subscription`, which the gateway serves over its websocket only (HTTP 400).
   */
  BadRequest: 'BAD_REQUEST',
  /**
   * A browser request (HTTP, CORS preflight or websocket upgrade) from an `Origin` that
   * `GATEWAY_CORS_ORIGINS` does not allow (HTTP 403).
   */
  Forbidden: 'FORBIDDEN',
  /** The gateway has not finished loading its supergraph, or is shutting down (HTTP 503). */
  GatewayNotReady: 'GATEWAY_NOT_READY',
  /**
   * The operation exceeds one of the gateway's operation limits (HTTP 400); `extensions.limit`
   * names it: `maxDepth`, `maxAliases`, `maxDirectives`, `maxTokens` or `maxCost`
   * (see `gateway/operationLimits.ts`), or `maxDocumentBytes` (HTTP 413, before parsing). A variable nested too deep is `BAD_USER_INPUT` instead.
   */
  OperationLimitExceeded: 'OPERATION_LIMIT_EXCEEDED',
  /**
   * The document's operation cannot be chosen: several operations and no `operationName`, or an
   * unknown `operationName` (HTTP 400; Apollo Server's own code for it).
   */
  OperationResolutionFailure: 'OPERATION_RESOLUTION_FAILURE',
} as const;
export type GatewayErrorCode = (typeof GatewayErrorCode)[keyof typeof GatewayErrorCode];
