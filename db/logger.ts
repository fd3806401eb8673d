/**
 * The logging surface the database plumbing needs: a structural subset of pino's `Logger`, so
 * a pino logger (or a child of one) can be passed as is, and tests can pass `silentLogger`.
 */
export interface DbLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

/** A logger that drops everything (the default when none is given). */
export const silentLogger: DbLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
