/**
 * Typed errors of the monitoring subgraph and the registry of codes that reach GraphQL clients
 * as `extensions.code` (STYLE.md: one registry). Monitoring only reads, so its clients can
 * only get wrong input or an internal error.
 */

/** Every `extensions.code` the monitoring subgraph can return. */
export const MonitoringErrorCode = {
  /**
   * Input that breaks a documented rule: `first` out of range, an over-long filter value
   * (`details.field` names the argument).
   */
  BadUserInput: 'BAD_USER_INPUT',
  /** An `after` cursor the server did not produce: the event store's code, as the other subgraphs answer. */
  InvalidCursor: 'INVALID_CURSOR',
  /** The service's database is unreachable, shutting down or out of connections: retry later (federation/formatError.ts). */
  ServiceUnavailable: 'SERVICE_UNAVAILABLE',
  /** Anything unexpected; the real error is logged, never returned. */
  InternalServerError: 'INTERNAL_SERVER_ERROR',
} as const;
export type MonitoringErrorCode = (typeof MonitoringErrorCode)[keyof typeof MonitoringErrorCode];

/** Base class of monitoring's deliberate errors; `details` is JSON safe to return in `extensions`. */
export class MonitoringError extends Error {
  constructor(
    readonly code: MonitoringErrorCode,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A cursor this server did not produce; `details.field` names the argument. Code `INVALID_CURSOR`. */
export class InvalidCursorInputError extends MonitoringError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(MonitoringErrorCode.InvalidCursor, message, details);
  }
}

/** Input breaks a rule; `details.field` names the offending argument. Code `BAD_USER_INPUT`. */
export class BadUserInputError extends MonitoringError {
  constructor(message: string, details: Record<string, unknown> = {}) {
    super(MonitoringErrorCode.BadUserInput, message, details);
  }
}
