/**
 * The logging surface the event store needs: pino's `(object, message)` call shape, so a pino
 * logger (or child) can be passed as is. Defaults to silence.
 */
export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};

/** What a log line says of an error that is routine (it heals by itself): no stack trace. */
export interface BriefError {
  /** The error's class name, e.g. `TransactionConflictError`. */
  type: string;
  message: string;
  /** Its `code` (an EventStoreErrorCode or a SQLSTATE) when it has one. */
  code?: string;
}

/**
 * `{ type, message, code }` of `error`, for logging a routine, self-healing failure (a retried
 * transaction conflict, a lost write race, a broker reconnect) at info level without the stack
 * trace pino's `err` serializer would print.
 */
export function briefError(error: unknown): BriefError {
  if (!(error instanceof Error)) return { type: typeof error, message: String(error) };
  const code = (error as { code?: unknown }).code;
  return { type: error.constructor.name, message: error.message, ...(typeof code === 'string' ? { code } : {}) };
}
