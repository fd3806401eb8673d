/**
 * What a live subscription does when the gateway ends it while the socket stays open (an `error`
 * message, a `next` carrying errors, or a `complete`): a live view has no natural end, so
 * unless the error says that asking again cannot help, it subscribes again from its last cursor
 * after a backoff. Without this a feed the gateway ended (e.g. a subgraph that refused the
 * first subscribe while it restarted: `SERVICE_UNAVAILABLE`) stayed silent under a `live` badge
 * until the socket itself dropped.
 *
 * The codes are the gateway's and the subgraphs' (gateway/subscriptions/upstream.ts
 * `TERMINAL_CODES`, federation/live/cursor.ts): pure functions, no DOM, unit-tested in Node.
 */

/** What to do after the gateway ended a subscription. */
export type Resumption =
  /** Subscribe again from the last cursor after {@link resumeDelayMs}. */
  | 'retry'
  /** The cursor is no longer usable (expired, or signed with a key the gateway no longer has): start over without one, now. */
  | 'restart'
  /** Asking again cannot succeed (no rights, bad input, not signed in): stay ended. */
  | 'stop';

/** Codes after which the same subscription would be refused again. */
const FINAL_CODES: ReadonlySet<string> = new Set([
  'FORBIDDEN',
  'UNAUTHENTICATED',
  'BAD_USER_INPUT',
  'GRAPHQL_VALIDATION_FAILED',
  'GRAPHQL_PARSE_FAILED',
  'NOT_FOUND',
  'OPERATION_LIMIT_EXCEEDED',
]);

/** Codes of a cursor the gateway will not resume from. */
const CURSOR_CODES: ReadonlySet<string> = new Set(['CURSOR_EXPIRED', 'INVALID_CURSOR']);

/**
 * The resumption after an error whose first `extensions.code` is `code` (undefined: no code,
 * treated as transient), or after a `complete` (pass `'complete'`).
 */
export function resumptionAfter(code: string | undefined): Resumption {
  if (code !== undefined && CURSOR_CODES.has(code)) return 'restart';
  if (code !== undefined && FINAL_CODES.has(code)) return 'stop';
  return 'retry';
}

/** First and longest retry delays, in ms. */
export const RESUME_MIN_MS = 500;
export const RESUME_MAX_MS = 30_000;

/**
 * The delay before retry number `attempt` (0-based), in ms: 500 doubling to 30 000, with
 * ±25 % jitter from `random` (a number in [0, 1), default `Math.random()`).
 * @throws RangeError when `attempt` is not a non-negative integer
 */
export function resumeDelayMs(attempt: number, random: number = Math.random()): number {
  if (!Number.isInteger(attempt) || attempt < 0) throw new RangeError(`resumeDelayMs: attempt must be a non-negative integer, got ${attempt}`);
  const base = Math.min(RESUME_MAX_MS, RESUME_MIN_MS * 2 ** Math.min(attempt, 16));
  return Math.round(base * (0.75 + random * 0.5));
}
