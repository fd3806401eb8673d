/**
 * Error formatting of the monitoring subgraph: deliberate errors keep their message and code
 * (registry in ../errors.ts); anything else reaches clients as INTERNAL_SERVER_ERROR with a
 * generic message and is logged in full. No stack trace or SQL ever leaves the process.
 * Same rules as subgraphs/workflows/graphql/formatError.ts.
 */
import type { GraphQLFormattedError } from 'graphql';
import type { Logger } from '../../../eventstore/index.ts';
import { MonitoringError, MonitoringErrorCode } from '../errors.ts';

/** Message of INTERNAL_SERVER_ERROR responses. */
export const INTERNAL_ERROR_MESSAGE = 'Internal server error';

/** Creates Apollo Server's `formatError`, logging unexpected errors on `logger`. */
export function createFormatError(logger: Logger): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  return (formatted, error) => {
    const original = rootCause(error);
    const base = { message: formatted.message, ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}) };
    if (original instanceof MonitoringError) {
      return { ...base, message: original.message, extensions: { ...original.details, code: original.code } };
    }
    // GraphQL's own errors (syntax, validation, variable coercion): keep their code, drop the stack.
    const code = formatted.extensions?.code;
    if (isGraphQLError(original) && typeof code === 'string' && code !== MonitoringErrorCode.InternalServerError) {
      return { ...base, extensions: { code } };
    }
    logger.error({ err: original, path: formatted.path }, 'monitoring: unexpected error in a GraphQL request');
    return { ...base, message: INTERNAL_ERROR_MESSAGE, extensions: { code: MonitoringErrorCode.InternalServerError } };
  };
}

/** The error a resolver threw, under GraphQL's wrapping (duck-typed: graphql's CJS and ESM builds may both be loaded). */
function rootCause(error: unknown): unknown {
  if (isGraphQLError(error) && error.path && error.originalError) return error.originalError;
  return error;
}

function isGraphQLError(error: unknown): error is Error & { path?: unknown; originalError?: unknown } {
  return error instanceof Error && 'extensions' in error && 'locations' in error;
}
