/**
 * Typed errors of the knowledge subgraph and the registry of codes that reach GraphQL clients as
 * `extensions.code` (STYLE.md: one registry). Event store errors keep their own codes.
 */
import { EventStoreErrorCode } from '../../eventstore/index.ts';

/** Every `extensions.code` the knowledge subgraph can return. */
export const KnowledgeErrorCode = {
  /** An entity that does not exist (e.g. `neighbors` of an unknown id). */
  NotFound: 'NOT_FOUND',
  /** Input that breaks a documented rule (depth outside 1..3, empty search, `first` out of range). */
  BadUserInput: 'BAD_USER_INPUT',
  /** A concurrent writer won (from the event store). */
  WrongExpectedVersion: EventStoreErrorCode.WrongExpectedVersion,
  /** The service's database is unreachable, shutting down or out of connections: retry later (federation/formatError.ts). */
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
  /** Anything unexpected; the real error is logged, never returned. */
  InternalServerError: 'INTERNAL_SERVER_ERROR',
} as const;
export type KnowledgeErrorCode = (typeof KnowledgeErrorCode)[keyof typeof KnowledgeErrorCode];

/** Base class of deliberate errors; `details` is JSON safe to return in `extensions`. */
export class KnowledgeError extends Error {
  constructor(
    readonly code: KnowledgeErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Code `NOT_FOUND`. */
export class NotFoundError extends KnowledgeError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(KnowledgeErrorCode.NotFound, message, details);
  }
}

/** Code `BAD_USER_INPUT`; `details.field` names the argument. */
export class BadUserInputError extends KnowledgeError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(KnowledgeErrorCode.BadUserInput, message, details);
  }
}
