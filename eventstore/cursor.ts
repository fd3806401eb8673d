/**
 * Opaque cursors over the whole log (DESIGN.md, "Cursors"): a cursor encodes the
 * `(transaction_id, global_position)` of the last event delivered; clients pass it back as
 * `after` and receive every later event.
 */
import { InvalidCursorError, InvalidEventDataError } from './errors.ts';
import type { LogPosition } from './types.ts';

export type { LogPosition } from './types.ts';

/** The position before the first event of the log. */
export const LOG_START: LogPosition = Object.freeze({ transactionId: '0', globalPosition: '0' });

const PREFIX = 'fg1:';
const DIGITS = /^(0|[1-9][0-9]{0,19})$/;
/** Largest `transaction_id` (`xid8`, unsigned 64-bit). */
const MAX_TRANSACTION_ID = 18446744073709551615n;
/** Largest `global_position` (`bigint`, signed 64-bit). */
const MAX_GLOBAL_POSITION_BIGINT = 9223372036854775807n;

/** `true` when `tx` and `gp` are canonical decimals within `xid8` and `bigint` range. */
function inRange(tx: string, gp: string): boolean {
  return DIGITS.test(tx) && DIGITS.test(gp) && BigInt(tx) <= MAX_TRANSACTION_ID && BigInt(gp) <= MAX_GLOBAL_POSITION_BIGINT;
}

/** Encodes a log position as an opaque, URL-safe string (`base64url("fg1:<tx>:<pos>")`). */
export function encodeCursor(position: LogPosition): string {
  return Buffer.from(`${PREFIX}${position.transactionId}:${position.globalPosition}`, 'utf8').toString('base64url');
}

/**
 * Decodes a cursor made by `encodeCursor`.
 * @throws InvalidCursorError for anything else (wrong encoding, prefix or numbers).
 */
export function decodeCursor(cursor: string): LogPosition {
  if (typeof cursor !== 'string' || cursor.length === 0 || cursor.length > 100) throw new InvalidCursorError(String(cursor));
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(PREFIX)) throw new InvalidCursorError(cursor);
  const [tx, pos, ...rest] = text.slice(PREFIX.length).split(':');
  if (rest.length > 0 || tx === undefined || pos === undefined || !DIGITS.test(tx) || !DIGITS.test(pos)) {
    throw new InvalidCursorError(cursor);
  }
  // global_position is a bigint, transaction_id an xid8 (unsigned 64-bit).
  if (!inRange(tx, pos)) throw new InvalidCursorError(cursor);
  return { transactionId: tx, globalPosition: pos };
}

/**
 * The wire form of a log position, `"<transactionId>:<globalPosition>"` (decimal), e.g.
 * `"7345:12"`: what a subgraph's live updates carry in `extensions.flowgraph.position` so that
 * the gateway can order one subgraph's events. Not a cursor: it is neither opaque nor signed.
 */
export function formatPosition(position: LogPosition): string {
  return `${position.transactionId}:${position.globalPosition}`;
}

/**
 * Parses `formatPosition`'s output.
 * @throws InvalidCursorError for anything else: not two canonical decimals (no sign, no
 *   leading zero) separated by one `:`, or numbers past `xid8` / `bigint` range
 */
export function parsePosition(text: string): LogPosition {
  if (typeof text !== 'string' || text.length > 41) throw new InvalidCursorError(String(text), 'not a log position "<transactionId>:<globalPosition>"');
  const colon = text.indexOf(':');
  const tx = text.slice(0, colon);
  const gp = text.slice(colon + 1);
  if (colon < 0 || !inRange(tx, gp)) throw new InvalidCursorError(text, 'not a log position "<transactionId>:<globalPosition>"');
  return { transactionId: tx, globalPosition: gp };
}

/**
 * Checks that `value` is a `LogPosition` (canonical decimal strings within range).
 * @param path what to name in the error, e.g. `options.after`
 * @throws InvalidEventDataError
 */
export function checkLogPosition(value: unknown, path: string): asserts value is LogPosition {
  const p = value as Partial<LogPosition> | null | undefined;
  if (
    p === null ||
    typeof p !== 'object' ||
    typeof p.transactionId !== 'string' ||
    typeof p.globalPosition !== 'string' ||
    !inRange(p.transactionId, p.globalPosition)
  ) {
    throw new InvalidEventDataError(path, 'must be a log position { transactionId, globalPosition } of decimal strings within xid8 / bigint range');
  }
}

/** Compares two log positions: negative when `a` is before `b`, 0 when equal. */
export function compareLogPositions(a: LogPosition, b: LogPosition): number {
  const tx = BigInt(a.transactionId) - BigInt(b.transactionId);
  if (tx !== 0n) return tx < 0n ? -1 : 1;
  const pos = BigInt(a.globalPosition) - BigInt(b.globalPosition);
  return pos === 0n ? 0 : pos < 0n ? -1 : 1;
}
