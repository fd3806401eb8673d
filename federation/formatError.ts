/**
 * Error formatting shared by every subgraph (Apollo Server's `formatError`):
 *
 * - a deliberate error of the subgraph's own registry (`subgraphs/<name>/errors.ts`) keeps its
 *   message, its code and its safe `details`, e.g. `{ code: 'ILLEGAL_TRANSITION', runId }`;
 * - an event store error keeps its message and code (`eventstore/errors.ts`), except the store's
 *   refusal of the input itself (a stream id or event payload built from the request's arguments:
 *   U+0000, an unpaired surrogate...), which is `BAD_USER_INPUT` with `reason` the store's code
 *   (`INVALID_STREAM_ID`, `INVALID_EVENT_DATA`);
 * - GraphQL's own errors (syntax, validation, variable coercion; Apollo gives them a code) and
 *   GraphQLErrors thrown on purpose with a code keep that code, minus any stack trace;
 * - a PostgreSQL refusal caused by the input itself (U+0000 in a text argument, SQLSTATE 22021;
 *   a number out of a column's range, 22003) becomes `BAD_USER_INPUT`;
 * - the database being unreachable, shutting down, out of connections or the pool timing out
 *   becomes `SERVICE_UNAVAILABLE` (retry later), logged as a warning;
 * - anything else reaches clients as `INTERNAL_SERVER_ERROR` with a generic message and is
 *   logged in full. No stack trace or SQL ever leaves the process.
 */
import type { GraphQLFormattedError } from 'graphql';
import { EventStoreError, EventStoreErrorCode, type Logger } from '../eventstore/index.ts';

/** Message of INTERNAL_SERVER_ERROR responses. */
export const INTERNAL_ERROR_MESSAGE = 'Internal server error';
/** Message of SERVICE_UNAVAILABLE responses. */
export const UNAVAILABLE_MESSAGE = 'The service cannot reach its database right now; retry later';

/** A subgraph's deliberate error: a client-facing code and JSON-safe details. */
export interface DeliberateError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown>;
}

/** Options of `createSubgraphFormatError`. */
export interface SubgraphFormatErrorOptions {
  /** The subgraph's name, prefixing the log messages (`<name>: unexpected error ...`). */
  name: string;
  /** Receives unexpected errors (error level) and unavailable-database errors (warn level). */
  logger: Logger;
  /** Recognises the subgraph's deliberate errors, e.g. `(e) => e instanceof WorkflowsError`. */
  isDeliberate: (error: unknown) => error is DeliberateError;
}

/** Creates Apollo Server's `formatError` for one subgraph (rules in this file's header). */
export function createSubgraphFormatError(options: SubgraphFormatErrorOptions): (formatted: GraphQLFormattedError, error: unknown) => GraphQLFormattedError {
  const { name, logger, isDeliberate } = options;
  return (formatted, error) => {
    const original = rootCause(error);
    const base = { message: formatted.message, ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}) };
    if (isDeliberate(original)) {
      return { ...base, message: original.message, extensions: { ...original.details, code: original.code } };
    }
    if (original instanceof EventStoreError) {
      if (original.code === EventStoreErrorCode.InvalidStreamId || original.code === EventStoreErrorCode.InvalidEventData) {
        return { ...base, message: original.message, extensions: { code: 'BAD_USER_INPUT', reason: original.code } };
      }
      return { ...base, message: original.message, extensions: { code: original.code } };
    }
    // A scalar's refusal inside validation (federation/scalars.ts: a number no double holds):
    // Apollo labels the wrapping error GRAPHQL_VALIDATION_FAILED; the client gets the scalar's own.
    const refusal = scalarRefusal(error);
    if (refusal) return { ...base, extensions: refusal };
    const code = formatted.extensions?.code;
    if (isGraphQLError(original) && typeof code === 'string' && code !== 'INTERNAL_SERVER_ERROR') {
      return { ...base, extensions: { code } };
    }
    const database = classifyDatabaseError(original);
    if (database === 'NUL_IN_TEXT') {
      return { ...base, message: 'Text arguments may not contain U+0000 (NUL)', extensions: { code: 'BAD_USER_INPUT' } };
    }
    if (database === 'OUT_OF_RANGE') {
      return { ...base, message: 'A numeric argument is out of range', extensions: { code: 'BAD_USER_INPUT' } };
    }
    if (database === 'UNAVAILABLE') {
      logger.warn({ err: original, path: formatted.path }, `${name}: database unavailable during a GraphQL request`);
      return { ...base, message: UNAVAILABLE_MESSAGE, extensions: { code: 'SERVICE_UNAVAILABLE' } };
    }
    logger.error({ err: original, path: formatted.path }, `${name}: unexpected error in a GraphQL request`);
    return { ...base, message: INTERNAL_ERROR_MESSAGE, extensions: { code: 'INTERNAL_SERVER_ERROR' } };
  };
}

/** What a database failure says about the request. */
export type DatabaseErrorClass = 'NUL_IN_TEXT' | 'OUT_OF_RANGE' | 'UNAVAILABLE' | undefined;

/** SQLSTATEs meaning the server is unreachable or going away (PostgreSQL appendix A). */
const UNAVAILABLE_SQLSTATES = new Set(['57P01', '57P02', '57P03', '53300', '53400']);
/** Node socket errors of an unreachable server. */
const UNAVAILABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);
/** Prisma's codes for an unreachable server or an exhausted pool (prisma.io/docs, error reference). */
const UNAVAILABLE_PRISMA = new Set(['P1001', 'P1002', 'P1017', 'P2024']);
/** node-postgres' own messages when a connection cannot be had or is lost. */
const UNAVAILABLE_MESSAGES = /timeout exceeded when trying to connect|Connection terminated|Client has encountered a connection error|Cannot use a pool after calling end/i;

/**
 * Classifies an error thrown by `pg` or by Prisma over `@prisma/adapter-pg` (whose SQLSTATE is
 * at `meta.driverAdapterError.cause.originalCode`), following `cause` chains (at most 5 deep).
 * @returns undefined for anything that is not one of the recognised database failures
 */
export function classifyDatabaseError(error: unknown): DatabaseErrorClass {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current !== null && typeof current === 'object'; depth++) {
    const e = current as { code?: unknown; message?: unknown; cause?: unknown; meta?: { driverAdapterError?: { cause?: { originalCode?: unknown } } } };
    const codes = [e.code, e.meta?.driverAdapterError?.cause?.originalCode].filter((c): c is string => typeof c === 'string');
    for (const code of codes) {
      if (code === '22021') return 'NUL_IN_TEXT';
      if (code === '22003') return 'OUT_OF_RANGE';
      if (code.startsWith('08') && code.length === 5) return 'UNAVAILABLE';
      if (UNAVAILABLE_SQLSTATES.has(code) || UNAVAILABLE_ERRNOS.has(code) || UNAVAILABLE_PRISMA.has(code)) return 'UNAVAILABLE';
    }
    if (typeof e.message === 'string' && UNAVAILABLE_MESSAGES.test(e.message)) return 'UNAVAILABLE';
    current = e.cause ?? e.meta?.driverAdapterError;
  }
  return undefined;
}

/**
 * The error a resolver threw, under GraphQL's wrapping (Apollo's `unwrapResolverError`,
 * duck-typed: graphql's CJS and ESM builds can both be loaded, e.g. under vitest, and their
 * `GraphQLError` classes differ). Request-level errors (syntax, validation, variables) have no
 * path and are returned as they are.
 */
/** The extensions of an INEXACT_NUMBER refusal somewhere down `error`'s `originalError` chain. */
function scalarRefusal(error: unknown): Record<string, unknown> | undefined {
  for (let e = error, depth = 0; e instanceof Error && depth < 5; e = (e as { originalError?: unknown }).originalError, depth++) {
    const extensions = (e as { extensions?: Record<string, unknown> }).extensions;
    if (extensions?.reason === 'INEXACT_NUMBER') {
      const { http: _http, ...rest } = extensions;
      return { ...rest, code: 'BAD_USER_INPUT' };
    }
  }
  return undefined;
}

function rootCause(error: unknown): unknown {
  if (isGraphQLError(error) && error.path && error.originalError) return error.originalError;
  return error;
}

/** A GraphQLError or subclass (Apollo's UserInputError...), from either graphql build. */
function isGraphQLError(error: unknown): error is Error & { path?: unknown; originalError?: unknown } {
  return error instanceof Error && 'extensions' in error && 'locations' in error;
}
