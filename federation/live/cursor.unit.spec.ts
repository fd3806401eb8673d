import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CursorExpiredError, EventStoreErrorCode, InvalidCursorError, type LogPosition } from '../../eventstore/index.ts';
import { canonicalJson, createCursorCodec, DEFAULT_RESUME_WINDOW_MS, parseCursorKeys, randomCursorCodec, type CursorBinding } from './cursor.ts';

const T0 = 1_750_000_000_000;
const key1 = Buffer.alloc(32, 1);
const key2 = Buffer.alloc(48, 2);
const binding: CursorBinding = { field: 'runUpdated', args: { runId: 'run-1', filter: { status: ['RUNNING'], since: undefined } } };
const position: LogPosition = { transactionId: '18446744073709551615', globalPosition: '9223372036854775807' };

function codec(options: { keys?: Buffer[]; resumeWindowMs?: number; now?: number } = {}) {
  return createCursorCodec({
    keys: options.keys ?? [key1],
    ...(options.resumeWindowMs !== undefined ? { resumeWindowMs: options.resumeWindowMs } : {}),
    now: () => options.now ?? T0,
  });
}

/** The cursor's inner text (`2.<tx>.<gp>.<atMs>.<mac>`). */
const inner = (cursor: string) => Buffer.from(cursor, 'base64url').toString('latin1');
const outer = (text: string) => Buffer.from(text, 'latin1').toString('base64url');

function expectInvalid(work: () => unknown): InvalidCursorError {
  try {
    work();
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidCursorError);
    expect((error as InvalidCursorError).code).toBe(EventStoreErrorCode.InvalidCursor);
    return error as InvalidCursorError;
  }
  throw new Error('expected an InvalidCursorError');
}

describe('subscription cursors', () => {
  it('round-trip the position and issue time, as URL-safe text of at most 200 characters', () => {
    const c = codec();
    const cursor = c.issue(binding, position, T0 - 1000);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(cursor.length).toBeLessThanOrEqual(200);
    expect(c.verify(binding, cursor)).toEqual({ position, atMs: T0 - 1000 });
    const start = { transactionId: '0', globalPosition: '0' };
    expect(c.verify(binding, c.issue(binding, start, T0)).position).toEqual(start);
    expect(c.resumeWindowMs).toBe(DEFAULT_RESUME_WINDOW_MS);
  });

  it('follow the documented format: base64url("2.tx.gp.atMs.mac"), mac = HMAC-SHA256 over field, canonical args and position, cut to 16 bytes', () => {
    const p = { transactionId: '7345', globalPosition: '12' };
    const cursor = codec().issue({ field: 'runs', args: { b: 2, a: 1 } }, p, T0);
    const mac = createHmac('sha256', key1).update(`2|runs|{"a":1,"b":2}|7345|12|${T0}`).digest().subarray(0, 16).toString('base64url');
    expect(inner(cursor)).toBe(`2.7345.12.${T0}.${mac}`);
  });

  it('bind a cursor to its field and arguments: another field or other arguments get INVALID_CURSOR', () => {
    const c = codec();
    const cursor = c.issue(binding, position, T0);
    expectInvalid(() => c.verify({ ...binding, field: 'documentProgress' }, cursor));
    expectInvalid(() => c.verify({ field: 'runUpdated', args: { runId: 'run-2', filter: { status: ['RUNNING'] } } }, cursor));
    expectInvalid(() => c.verify({ field: 'runUpdated', args: { runId: 'run-1' } }, cursor));
    expectInvalid(() => c.verify({ field: 'runUpdated', args: { runId: 'run-1', filter: { status: ['RUNNING', 'FAILED'] } } }, cursor));
    const error = expectInvalid(() => c.verify({ field: 'runUpdated', args: { runId: 'run-1', filter: { status: ['PENDING'] } } }, cursor));
    expect(error.reason).toBe('not issued for this subscription');
  });

  it('do not depend on the order of argument keys, at any depth, nor on undefined members', () => {
    const c = codec();
    const a = c.issue({ field: 'runs', args: { filter: { status: 'RUNNING', workflowId: 'w' }, first: 5 } }, position, T0);
    const sameArgs = { first: 5, extra: undefined, filter: Object.assign(Object.create(null) as Record<string, unknown>, { workflowId: 'w', status: 'RUNNING' }) };
    expect(c.verify({ field: 'runs', args: sameArgs }, a).position).toEqual(position);
    expect(canonicalJson({ b: [{ y: 1, x: undefined, w: 2 }], a: new Date(0) })).toBe('{"a":"1970-01-01T00:00:00.000Z","b":[{"w":2,"y":1}]}');
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
  });

  it('refuse a tampered position, issue time or mac with INVALID_CURSOR', () => {
    const c = codec();
    const p = { transactionId: '7345', globalPosition: '12' };
    const text = inner(c.issue(binding, p, T0 - 5000));
    const [, tx, gp, at, mac] = text.split('.') as [string, string, string, string, string];
    const flipped = mac.slice(0, 5) + (mac[5] === 'A' ? 'B' : 'A') + mac.slice(6);
    for (const tampered of [
      `2.7346.${gp}.${at}.${mac}`,
      `2.${tx}.13.${at}.${mac}`,
      `2.${tx}.${gp}.${Number(at) + 1}.${mac}`,
      `2.${tx}.${gp}.${at}.${flipped}`,
      `1.${tx}.${gp}.${at}.${mac}`,
      `2.${tx}.${gp}.${at}.${mac.slice(0, 21)}`,
      `2.0${tx}.${gp}.${at}.${mac}`,
      `2.${tx}.${gp}.${at}.${mac}.`,
    ]) {
      expectInvalid(() => c.verify(binding, outer(tampered)));
    }
    // A cursor of another key: same shape, wrong mac.
    expectInvalid(() => c.verify(binding, codec({ keys: [randomBytes(32)] }).issue(binding, p, T0)));
  });

  it('rotate keys: the first key signs, every key verifies', () => {
    const before = codec({ keys: [key1] });
    const after = codec({ keys: [key2, key1] });
    const old = before.issue(binding, position, T0);
    expect(after.verify(binding, old).position).toEqual(position);
    const fresh = after.issue(binding, position, T0);
    expect(fresh).not.toBe(old);
    expect(codec({ keys: [key2] }).verify(binding, fresh).position).toEqual(position);
    expectInvalid(() => before.verify(binding, fresh));
  });

  it('refuse a cursor older than the resume window with CURSOR_EXPIRED, saying how old, the window and what to do', () => {
    const c = codec({ resumeWindowMs: 3_600_000 });
    const cursor = c.issue(binding, position, T0 - 3_600_001 - 90_000);
    let error: unknown;
    try {
      c.verify(binding, cursor);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(CursorExpiredError);
    expect((error as CursorExpiredError).code).toBe('CURSOR_EXPIRED');
    expect((error as CursorExpiredError).ageMs).toBe(3_690_001);
    expect((error as CursorExpiredError).message).toMatch(/1 h 1 min 30 s ago.*window is 1 h.*re-query.*subscribe again/);
    // At the edge it still resumes; with no window any age does.
    expect(c.verify(binding, c.issue(binding, position, T0 - 3_600_000)).position).toEqual(position);
    expect(codec({ resumeWindowMs: 0 }).verify(binding, codec().issue(binding, position, 0)).atMs).toBe(0);
    // A forged old cursor is invalid, not expired: the mac is checked first.
    const text = inner(codec({ keys: [randomBytes(32)] }).issue(binding, position, 0));
    expectInvalid(() => c.verify(binding, outer(text)));
  });

  it('refuse a cursor issued more than 5 minutes in the future with INVALID_CURSOR', () => {
    const c = codec();
    expect(c.verify(binding, c.issue(binding, position, T0 + 300_000)).atMs).toBe(T0 + 300_000);
    expect(expectInvalid(() => c.verify(binding, c.issue(binding, position, T0 + 300_001))).reason).toBe('issued in the future');
  });

  it.each([
    ['empty', ''],
    ['10 kB', 'A'.repeat(10_000)],
    ['201 characters', 'A'.repeat(201)],
    ['non-ASCII', 'Mi4xLjEuMS7wn5iA'.replace('M', 'é')],
    ['emoji', '🙂🙂🙂'],
    ['dots', '..'],
    ['padding', `${outer('2.1.1.1.AAAAAAAAAAAAAAAAAAAAAA')}==`],
    ['standard base64 alphabet', `${outer('2.1.1.1.AAAAAAAAAAAAAAAAAAAAAA').slice(0, -2)}+/`],
    ['numbers past 2^64', outer(`2.18446744073709551616.1.${T0}.AAAAAAAAAAAAAAAAAAAAAA`)],
    ['global position past 2^63', outer(`2.1.9223372036854775808.${T0}.AAAAAAAAAAAAAAAAAAAAAA`)],
    ['a time past 2^53', outer(`2.1.1.9007199254740993.AAAAAAAAAAAAAAAAAAAAAA`)],
    ['negative numbers', outer(`2.-1.1.${T0}.AAAAAAAAAAAAAAAAAAAAAA`)],
    ['too many parts', outer(`2.1.1.1.1.AAAAAAAAAAAAAAAAAAAAAA`)],
    ['an eventstore log cursor', Buffer.from('fg1:1:2').toString('base64url')],
    ['a bit flip in the last character', outer('2.1.1.1.AAAAAAAAAAAAAAAAAAAAAA').slice(0, -1) + 'B'],
  ])('refuse hostile input quickly with INVALID_CURSOR: %s', (_what, bad) => {
    const c = codec();
    const started = process.hrtime.bigint();
    expectInvalid(() => c.verify(binding, bad));
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(50);
  });

  it('refuse a cursor that is not a string', () => {
    expectInvalid(() => codec().verify(binding, 42 as never));
  });

  it('refuse to issue for a bad field, time or position', () => {
    const c = codec();
    expect(() => c.issue({ field: 'a|b', args: {} }, position, T0)).toThrow(TypeError);
    expect(() => c.issue(binding, position, -1)).toThrow(TypeError);
    expect(() => c.issue(binding, position, 1.5)).toThrow(TypeError);
    expect(() => c.issue(binding, { transactionId: '18446744073709551616', globalPosition: '0' }, T0)).toThrow(TypeError);
  });

  it('refuse keys shorter than 32 bytes, no key, and a bad resume window', () => {
    expect(() => createCursorCodec({ keys: [] })).toThrow(/at least one key/);
    expect(() => createCursorCodec({ keys: [key1, Buffer.alloc(31)] })).toThrow(/key #2 is 31 bytes/);
    expect(() => createCursorCodec({ keys: [key1], resumeWindowMs: -1 })).toThrow(RangeError);
    const c = randomCursorCodec();
    expect(c.verify(binding, c.issue(binding, position, Date.now())).position).toEqual(position);
  });
});

describe('parseCursorKeys', () => {
  it('reads comma-separated base64, base64url and hex keys', () => {
    const a = randomBytes(32);
    const b = randomBytes(40);
    const c = randomBytes(33);
    const keys = parseCursorKeys(` ${a.toString('base64')}, ${b.toString('hex')} ,${c.toString('base64url')}`);
    expect(keys).toEqual([a, b, c]);
    expect(parseCursorKeys(a.toString('base64').replace(/=+$/, ''))).toEqual([a]);
  });

  it.each([
    ['', /empty/],
    ['  ', /empty/],
    [`${randomBytes(32).toString('base64')},`, /#2 of 2 is empty/],
    [randomBytes(16).toString('base64'), /#1 of 1 is 16 bytes; each key needs at least 32/],
    [randomBytes(31).toString('hex'), /is 31 bytes/],
    ['not a key at all!', /neither hex nor base64/],
    [`${randomBytes(32).toString('base64').slice(0, 42)}B=`, /not valid base64/],
  ])('names what is wrong with %j', (text, message) => {
    expect(() => parseCursorKeys(text)).toThrow(message);
  });

  it('never quotes key material in its errors', () => {
    const secret = randomBytes(20).toString('hex');
    expect(() => parseCursorKeys(secret)).toThrow(RangeError);
    try {
      parseCursorKeys(secret);
    } catch (error) {
      expect((error as Error).message).not.toContain(secret.slice(0, 8));
    }
  });
});
