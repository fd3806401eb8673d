/**
 * Error formatting of the content subgraph: deliberate errors keep their message, code and
 * safe details (registry in ../errors.ts, e.g. `{ code: 'BAD_USER_INPUT', reason:
 * 'EMPTY_DOCUMENT', field: 'text' }`); anything else reaches clients as INTERNAL_SERVER_ERROR
 * with a generic message and is logged in full. No stack trace or SQL ever leaves the process.
 */
import type { GraphQLFormattedError } from 'graphql';
import { EventStoreError, type Logger } from '../../../eventstore/index.ts';
import { ContentError, ContentErrorCode } from '../errors.ts';

/** Message of INTERNAL_SERVER_ERROR responses. */
export const INTERNAL_ERROR_MESSAGE = 'Internal server error';

/** Creates Apollo Server's `formatError`, logging unexpected errors on `logger`. */
export function createFormatError(logger: Logger): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  return (formatted, error) => {
    const original = rootCause(error);
    const base = { message: formatted.message, ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}) };
    if (original instanceof ContentError) {
      return { ...base, message: original.message, extensions: { ...original.details, code: original.code } };
    }
    if (original instanceof EventStoreError) {
      return { ...base, message: original.message, extensions: { code: original.code } };
    }
    // GraphQL's own errors (syntax, validation, variable coercion: Apollo gives them a code):
    // keep them, minus any stack trace.
    const code = formatted.extensions?.code;
    if (isGraphQLError(original) && typeof code === 'string' && code !== ContentErrorCode.InternalServerError) {
      return { ...base, extensions: { code } };
    }
    logger.error({ err: original, path: formatted.path }, 'unexpected error in a GraphQL request');
    return { ...base, message: INTERNAL_ERROR_MESSAGE, extensions: { code: ContentErrorCode.InternalServerError } };
  };
}

/**
 * The error a resolver threw, under GraphQL's wrapping (duck-typed: graphql's CJS and ESM
 * builds can both be loaded, e.g. under vitest). Request-level errors have no path.
 */
function rootCause(error: unknown): unknown {
  if (isGraphQLError(error) && error.path && error.originalError) return error.originalError;
  return error;
}

/** A GraphQLError or subclass, from either graphql build. */
function isGraphQLError(error: unknown): error is Error & { path?: unknown; originalError?: unknown } {
  return error instanceof Error && 'extensions' in error && 'locations' in error;
}
