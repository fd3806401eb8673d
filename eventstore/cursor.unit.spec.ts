import { describe, expect, it } from 'vitest';
import { checkLogPosition, compareLogPositions, decodeCursor, encodeCursor, formatPosition, InvalidCursorError, InvalidEventDataError, LOG_START, parsePosition } from './index.ts';

describe('cursors', () => {
  it('round-trip a log position as an opaque string', () => {
    const position = { transactionId: '123456789012', globalPosition: '9223372036854775807' };
    const cursor = encodeCursor(position);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursor).not.toContain('123456789012');
    expect(decodeCursor(cursor)).toEqual(position);
    expect(decodeCursor(encodeCursor(LOG_START))).toEqual(LOG_START);
  });

  it.each(['', 'abc', encodeCursor(LOG_START).slice(1), Buffer.from('fg1:1:x').toString('base64url'), Buffer.from('fg1:01:2').toString('base64url'), Buffer.from('fg1:1:2:3').toString('base64url'), Buffer.from('fg1:1:99999999999999999999').toString('base64url'), Buffer.from('fg1:18446744073709551616:1').toString('base64url')])(
    'rejects %j with InvalidCursorError',
    (bad) => {
      expect(() => decodeCursor(bad)).toThrow(InvalidCursorError);
    },
  );

  it('orders positions by transaction id, then global position', () => {
    expect(compareLogPositions({ transactionId: '9', globalPosition: '100' }, { transactionId: '10', globalPosition: '1' })).toBeLessThan(0);
    expect(compareLogPositions({ transactionId: '10', globalPosition: '2' }, { transactionId: '10', globalPosition: '1' })).toBeGreaterThan(0);
    expect(compareLogPositions(LOG_START, LOG_START)).toBe(0);
  });

  it('write a position on the wire as "<tx>:<gp>" and read it back', () => {
    const position = { transactionId: '18446744073709551615', globalPosition: '9223372036854775807' };
    expect(formatPosition(position)).toBe('18446744073709551615:9223372036854775807');
    expect(parsePosition(formatPosition(position))).toEqual(position);
    expect(parsePosition('0:0')).toEqual(LOG_START);
  });

  it.each(['', ':', '1', '1:', ':1', '1:2:3', '01:2', '1:02', '-1:2', '1:2 ', ' 1:2', '1.5:2', '18446744073709551616:1', '1:9223372036854775808', '9'.repeat(100) + ':1'])(
    'parsePosition rejects %j with InvalidCursorError',
    (bad) => {
      expect(() => parsePosition(bad)).toThrow(InvalidCursorError);
    },
  );

  it('checkLogPosition accepts positions and names the option it refuses', () => {
    expect(() => checkLogPosition({ transactionId: '5', globalPosition: '7' }, 'options.after')).not.toThrow();
    for (const bad of [null, undefined, 5, {}, { transactionId: 5, globalPosition: '1' }, { transactionId: '1', globalPosition: '-1' }, { transactionId: '18446744073709551616', globalPosition: '1' }]) {
      expect(() => checkLogPosition(bad, 'options.after')).toThrow(InvalidEventDataError);
      expect(() => checkLogPosition(bad, 'options.after')).toThrow(/options\.after/);
    }
  });
});
