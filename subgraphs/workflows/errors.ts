/**
 * Typed errors of the workflows subgraph and the one registry of codes that reach GraphQL
 * clients as `extensions.code` (STYLE.md: "Errors that reach a GraphQL client carry
 * `extensions.code` from one registry"). Event store errors keep their own codes
 * (`eventstore/errors.ts`, e.g. `WRONG_EXPECTED_VERSION`), listed here so the registry is
 * complete.
 */
import { EventStoreErrorCode } from '../../eventstore/index.ts';

/** Every `extensions.code` the workflows subgraph can return. */
export const WorkflowsErrorCode = {
  /** A workflow, run or step that does not exist. */
  NotFound: 'NOT_FOUND',
  /** Input that breaks a documented rule (empty name, duplicate step names, timeoutMs ≤ 0...). */
  BadUserInput: 'BAD_USER_INPUT',
  /** A command that the aggregate's current state does not allow (e.g. completing a step of a cancelled run). */
  IllegalTransition: 'ILLEGAL_TRANSITION',
  /** `defineWorkflow` with the id of an existing, different workflow. */
  AlreadyExists: 'ALREADY_EXISTS',
  /** `startRun` with an idempotency key already used for the same workflow with a different input. */
  IdempotencyConflict: 'IDEMPOTENCY_CONFLICT',
  /** A concurrent writer won (from the event store). */
  WrongExpectedVersion: EventStoreErrorCode.WrongExpectedVersion,
  /** A command lost to concurrent writers on every attempt (from the event store). */
  CommandRetriesExhausted: EventStoreErrorCode.CommandRetriesExhausted,
  /** A pagination cursor the server did not produce (from the event store's cursor rules). */
  InvalidCursor: EventStoreErrorCode.InvalidCursor,
  /** An event payload above the store's limit (e.g. a huge run input or step output). */
  EventTooLarge: EventStoreErrorCode.EventTooLarge,
  /** The service's database is unreachable, shutting down or out of connections: retry later (federation/formatError.ts). */
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
  /** Anything unexpected; the real error is logged, never returned. */
  InternalServerError: 'INTERNAL_SERVER_ERROR',
} as const;
export type WorkflowsErrorCode = (typeof WorkflowsErrorCode)[keyof typeof WorkflowsErrorCode];

/**
 * Base class of the domain's deliberate errors. `code` is the client-facing code; `details`
 * holds JSON context (ids, states) that is safe to return in `extensions`.
 */
export class WorkflowsError extends Error {
  constructor(
    readonly code: WorkflowsErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The workflow, run or step named in `details` does not exist. Code `NOT_FOUND`. */
export class NotFoundError extends WorkflowsError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(WorkflowsErrorCode.NotFound, message, details);
  }
}

/** Input breaks a rule; `details.field` names the offending field when known. Code `BAD_USER_INPUT`. */
export class BadUserInputError extends WorkflowsError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(WorkflowsErrorCode.BadUserInput, message, details);
  }
}

/**
 * The command is not allowed in the aggregate's current state; `details` carries the current
 * status and the command. Code `ILLEGAL_TRANSITION`. Nothing is appended.
 */
export class IllegalTransitionError extends WorkflowsError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(WorkflowsErrorCode.IllegalTransition, message, details);
  }
}

/** An aggregate with this id already exists with different content. Code `ALREADY_EXISTS`. */
export class AlreadyExistsError extends WorkflowsError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(WorkflowsErrorCode.AlreadyExists, message, details);
  }
}

/** The idempotency key was already used with a different input. Code `IDEMPOTENCY_CONFLICT`. */
export class IdempotencyConflictError extends WorkflowsError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(WorkflowsErrorCode.IdempotencyConflict, message, details);
  }
}
