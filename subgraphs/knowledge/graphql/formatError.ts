/**
 * Error formatting of the knowledge subgraph: deliberate errors keep their message and code
 * (registry in ../errors.ts); GraphQL's own errors (validation, variables) keep theirs; anything
 * else reaches clients as INTERNAL_SERVER_ERROR with a generic message and is logged in full.
 * No stack trace or SQL ever leaves the process.
 */
import type { GraphQLFormattedError } from 'graphql';
import { EventStoreError, type Logger } from '../../../eventstore/index.ts';
import { KnowledgeError, KnowledgeErrorCode } from '../errors.ts';

/** Message of INTERNAL_SERVER_ERROR responses. */
export const INTERNAL_ERROR_MESSAGE = 'Internal server error';

/** Creates Apollo Server's `formatError`, logging unexpected errors on `logger`. */
export function createFormatError(logger: Logger): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  return (formatted, error) => {
    const original = isGraphQLError(error) && error.path && error.originalError ? error.originalError : error;
    const base = { message: formatted.message, ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}) };
    if (original instanceof KnowledgeError) return { ...base, message: original.message, extensions: { ...original.details, code: original.code } };
    if (original instanceof EventStoreError) return { ...base, message: original.message, extensions: { code: original.code } };
    const code = formatted.extensions?.code;
    if (isGraphQLError(original) && typeof code === 'string' && code !== KnowledgeErrorCode.InternalServerError) return { ...base, extensions: { code } };
    logger.error({ err: original, path: formatted.path }, 'knowledge: unexpected error in a GraphQL request');
    return { ...base, message: INTERNAL_ERROR_MESSAGE, extensions: { code: KnowledgeErrorCode.InternalServerError } };
  };
}

/** A GraphQLError from either graphql build (duck-typed, as in the workflows subgraph). */
function isGraphQLError(error: unknown): error is Error & { path?: unknown; originalError?: unknown } {
  return error instanceof Error && 'extensions' in error && 'locations' in error;
}
