/**
 * Opaque cursors over the whole log (DESIGN.md, "Cursors"): a cursor encodes the
 * `(transaction_id, global_position)` of the last event delivered; clients pass it back as
 * `after` and receive every later event.
 */
import { InvalidCursorError } from './errors.ts';
import type { LogPosition } from './types.ts';

/** The position before the first event of the log. */
export const LOG_START: LogPosition = Object.freeze({ transactionId: '0', globalPosition: '0' });

const PREFIX = 'fg1:';
const DIGITS = /^(0|[1-9][0-9]{0,19})$/;

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
  if (BigInt(pos) > 9223372036854775807n || BigInt(tx) > 18446744073709551615n) throw new InvalidCursorError(cursor);
  return { transactionId: tx, globalPosition: pos };
}

/** Compares two log positions: negative when `a` is before `b`, 0 when equal. */
export function compareLogPositions(a: LogPosition, b: LogPosition): number {
  const tx = BigInt(a.transactionId) - BigInt(b.transactionId);
  if (tx !== 0n) return tx < 0n ? -1 : 1;
  const pos = BigInt(a.globalPosition) - BigInt(b.globalPosition);
  return pos === 0n ? 0 : pos < 0n ? -1 : 1;
}
