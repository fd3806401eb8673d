import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EmptyBatchError,
  EventIdConflictError,
  EventTooLargeError,
  InvalidEventDataError,
  InvalidExpectedVersionError,
  InvalidStreamIdError,
  WrongExpectedVersionError,
  DEFAULT_MAX_EVENT_BYTES,
  MAX_JSON_DEPTH,
  type EventStore,
} from './index.ts';
import { createStoreFixture, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
let store: EventStore;
beforeAll(async () => {
  fx = await createStoreFixture('append');
  store = fx.store;
});
afterAll(() => fx.close());

const countEvents = async (streamId?: string) => {
  const { rows } = streamId
    ? await fx.db.pool.query('SELECT count(*)::int AS n FROM eventstore.events WHERE stream_id = $1', [streamId])
    : await fx.db.pool.query('SELECT count(*)::int AS n FROM eventstore.events');
  return rows[0].n as number;
};

/** `{ n: { n: ... { n: 1 } } }` with `levels` objects. */
const nested = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { n: value };
  return value;
};

describe('appendToStream', () => {
  it('checks every kind of expected version', async () => {
    await expect(store.appendToStream('ev-1', [{ type: 'A', data: {} }], { expectedVersion: 'stream_exists' })).rejects.toThrow(
      WrongExpectedVersionError,
    );
    const first = await store.appendToStream('ev-1', [{ type: 'A', data: {} }], { expectedVersion: 'no_stream' });
    expect(first.nextExpectedVersion).toBe(0);
    await expect(store.appendToStream('ev-1', [{ type: 'A', data: {} }], { expectedVersion: 'no_stream' })).rejects.toMatchObject({
      code: 'WRONG_EXPECTED_VERSION',
      streamId: 'ev-1',
      expected: 'no_stream',
      actual: 0,
    });
    const second = await store.appendToStream('ev-1', [{ type: 'B', data: {} }], { expectedVersion: 'stream_exists' });
    expect(second.nextExpectedVersion).toBe(1);
    const third = await store.appendToStream('ev-1', [{ type: 'C', data: {} }, { type: 'D', data: {} }], { expectedVersion: 1 });
    expect(third.nextExpectedVersion).toBe(3);
    await expect(store.appendToStream('ev-1', [{ type: 'E', data: {} }], { expectedVersion: 2 })).rejects.toMatchObject({
      expected: '2',
      actual: 3,
    });
    expect((await store.readStream('ev-1')).map((e) => [e.streamPosition, e.type])).toEqual([
      [0, 'A'],
      [1, 'B'],
      [2, 'C'],
      [3, 'D'],
    ]);
  });

  it('an exact version on a missing stream and -1 on an existing one are WrongExpectedVersionErrors that store nothing', async () => {
    for (const expectedVersion of [0, 5]) {
      await expect(store.appendToStream('ev-missing', [{ type: 'A', data: {} }], { expectedVersion })).rejects.toMatchObject({
        code: 'WRONG_EXPECTED_VERSION',
        expected: String(expectedVersion),
        actual: -1,
      });
    }
    expect(await countEvents('ev-missing')).toBe(0);
    await store.appendToStream('ev-missing', [{ type: 'A', data: {} }], { expectedVersion: -1 });
    await expect(store.appendToStream('ev-missing', [{ type: 'B', data: {} }], { expectedVersion: -1 })).rejects.toMatchObject({
      code: 'WRONG_EXPECTED_VERSION',
      actual: 0,
    });
    expect((await store.readStream('ev-missing')).map((e) => [e.streamPosition, e.type])).toEqual([[0, 'A']]);
  });

  it('16 writers at the same expected version: exactly one wins, 15 get WrongExpectedVersionError, no hole', async () => {
    await store.appendToStream('race-16', [{ type: 'Opened', data: {} }], { expectedVersion: 'no_stream' });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) => store.appendToStream('race-16', [{ type: 'Raced', data: { writer: i } }], { expectedVersion: 0 })),
    );
    const won = outcomes.filter((o) => o.status === 'fulfilled');
    const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(won).toHaveLength(1);
    expect(lost).toHaveLength(15);
    for (const l of lost) {
      expect(l.reason).toBeInstanceOf(WrongExpectedVersionError);
      expect(l.reason).toMatchObject({ streamId: 'race-16', expected: '0', actual: 1 });
    }
    const events = await store.readStream('race-16');
    expect(events.map((e) => e.streamPosition)).toEqual([0, 1]);
  });

  it('20 concurrent "any" appends to one stream: all 20 stored at positions 0..19', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) => store.appendToStream('any-20', [{ type: 'Counted', data: { i } }], { expectedVersion: 'any' })),
    );
    expect(new Set(results.map((r) => r.nextExpectedVersion)).size).toBe(20);
    const events = await store.readStream('any-20');
    expect(events.map((e) => e.streamPosition)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    expect(new Set(events.map((e) => (e.data as { i: number }).i)).size).toBe(20);
  });

  it('a batch retried with the same event ids stores nothing new and returns the original result', async () => {
    const batch = [
      { eventId: '0b4c1f6a-58f6-4b8e-9a4f-6f0d2f1c9e01', type: 'ItemAdded', data: { sku: 'a' } },
      { eventId: '0b4c1f6a-58f6-4b8e-9a4f-6f0d2f1c9e02', type: 'ItemAdded', data: { sku: 'b' } },
    ];
    const original = await store.appendToStream('cart-1', batch, { expectedVersion: 'no_stream' });
    const retried = await store.appendToStream('cart-1', batch, { expectedVersion: 'no_stream' });
    expect(await countEvents('cart-1')).toBe(2);
    expect(retried).toEqual({ ...original, duplicate: true });
    expect(original.duplicate).toBe(false);
    // Concurrent identical retries, with "any": still one copy.
    const again = await Promise.all([1, 2, 3, 4].map(() => store.appendToStream('cart-1', batch)));
    expect(again.every((r) => r.duplicate && r.lastGlobalPosition === original.lastGlobalPosition)).toBe(true);
    expect(await countEvents('cart-1')).toBe(2);
  });

  it('a used event id with another payload is an EventIdConflictError and stores nothing', async () => {
    const eventId = '7d1f0e2a-1111-4c2b-8e3a-9a1b2c3d4e5f';
    await store.appendToStream('idem-1', [{ eventId, type: 'Paid', data: { amount: 10 } }]);
    const before = await countEvents();
    await expect(store.appendToStream('idem-1', [{ eventId, type: 'Paid', data: { amount: 11 } }])).rejects.toBeInstanceOf(EventIdConflictError);
    await expect(store.appendToStream('idem-other', [{ eventId, type: 'Paid', data: { amount: 10 } }])).rejects.toBeInstanceOf(EventIdConflictError);
    // Half-retried batch: one known id, one new.
    await expect(
      store.appendToStream('idem-1', [
        { eventId, type: 'Paid', data: { amount: 10 } },
        { eventId: '7d1f0e2a-2222-4c2b-8e3a-9a1b2c3d4e5f', type: 'Paid', data: { amount: 1 } },
      ]),
    ).rejects.toBeInstanceOf(EventIdConflictError);
    expect(await countEvents()).toBe(before);
  });

  it('a batch is atomic: a conflict stores none of its events', async () => {
    await store.appendToStream('atomic-1', [{ type: 'A', data: {} }], { expectedVersion: 'no_stream' });
    await expect(
      store.appendToStream('atomic-1', Array.from({ length: 50 }, (_, i) => ({ type: 'B', data: { i } })), { expectedVersion: 5 }),
    ).rejects.toBeInstanceOf(WrongExpectedVersionError);
    expect(await countEvents('atomic-1')).toBe(1);
  });

  it(`stores data nested exactly MAX_JSON_DEPTH (${MAX_JSON_DEPTH}) levels deep and reads it back`, async () => {
    const data = nested(MAX_JSON_DEPTH);
    await store.appendToStream('deep-ok', [{ type: 'Deep', data }]);
    const [event] = await store.readStream('deep-ok');
    expect(event!.data).toEqual(data);
  });

  describe('bad input is a typed error and stores nothing', () => {
    const cases: [string, () => Promise<unknown>, new (...args: never[]) => Error][] = [
      ['unknown expected-version value', () => store.appendToStream('bad-1', [{ type: 'A', data: {} }], { expectedVersion: 'latest' as never }), InvalidExpectedVersionError],
      ['negative expected version', () => store.appendToStream('bad-1', [{ type: 'A', data: {} }], { expectedVersion: -2 }), InvalidExpectedVersionError],
      ['fractional expected version', () => store.appendToStream('bad-1', [{ type: 'A', data: {} }], { expectedVersion: 1.5 }), InvalidExpectedVersionError],
      ['empty batch', () => store.appendToStream('bad-1', []), EmptyBatchError],
      ['empty stream id', () => store.appendToStream('', [{ type: 'A', data: {} }]), InvalidStreamIdError],
      ['undefined data', () => store.appendToStream('bad-1', [{ type: 'A', data: undefined }]), InvalidEventDataError],
      ['a function in data', () => store.appendToStream('bad-1', [{ type: 'A', data: { f: () => 1 } }]), InvalidEventDataError],
      ['a BigInt in data', () => store.appendToStream('bad-1', [{ type: 'A', data: { n: 1n } }]), InvalidEventDataError],
      ['NaN in data', () => store.appendToStream('bad-1', [{ type: 'A', data: { n: Number.NaN } }]), InvalidEventDataError],
      ['a Date in data', () => store.appendToStream('bad-1', [{ type: 'A', data: { at: new Date() } }]), InvalidEventDataError],
      ['U+0000 in a string', () => store.appendToStream('bad-1', [{ type: 'A', data: { s: 'a\u0000b' } }]), InvalidEventDataError],
      ['an unpaired surrogate in a string', () => store.appendToStream('bad-1', [{ type: 'A', data: { s: 'a\ud800' } }]), InvalidEventDataError],
      ['an unpaired surrogate in a key', () => store.appendToStream('bad-1', [{ type: 'A', data: { ['k\udc00']: 1 } }]), InvalidEventDataError],
      ['a cycle', () => {
        const data: Record<string, unknown> = {};
        data.self = data;
        return store.appendToStream('bad-1', [{ type: 'A', data }]);
      }, InvalidEventDataError],
      ['data nested deeper than MAX_JSON_DEPTH', () => store.appendToStream('bad-1', [{ type: 'A', data: nested(MAX_JSON_DEPTH + 1) }]), InvalidEventDataError],
      ['metadata nested 100,000 levels deep', () => store.appendToStream('bad-1', [{ type: 'A', data: {}, metadata: { deep: nested(100_000) } }]), InvalidEventDataError],
      ['an empty type', () => store.appendToStream('bad-1', [{ type: '', data: {} }]), InvalidEventDataError],
      ['a malformed event id', () => store.appendToStream('bad-1', [{ eventId: 'not-a-uuid', type: 'A', data: {} }]), InvalidEventDataError],
      ['oversized event', () => store.appendToStream('bad-1', [{ type: 'A', data: { s: 'x'.repeat(DEFAULT_MAX_EVENT_BYTES) } }]), EventTooLargeError],
    ];
    for (const [name, attempt, errorClass] of cases) {
      it(name, async () => {
        const before = await countEvents();
        const error = await attempt().then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(error).toBeInstanceOf(errorClass);
        expect((error as { code: string }).code).toMatch(/^[A-Z_]+$/);
        expect(await countEvents()).toBe(before);
      });
    }

    it('an oversized event in the middle of a batch stores none of the batch', async () => {
      const before = await countEvents();
      const error = await store
        .appendToStream('bad-2', [
          { type: 'A', data: {} },
          { type: 'Big', data: { s: 'é'.repeat(DEFAULT_MAX_EVENT_BYTES / 2) } },
        ])
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EventTooLargeError);
      expect(error).toMatchObject({ index: 1, type: 'Big', limitBytes: DEFAULT_MAX_EVENT_BYTES });
      expect((error as EventTooLargeError).sizeBytes).toBeGreaterThan(DEFAULT_MAX_EVENT_BYTES);
      expect(await countEvents()).toBe(before);
    });

    it('an event just under the limit is stored', async () => {
      const s = 'x'.repeat(DEFAULT_MAX_EVENT_BYTES - 10); // {"s":"..."} adds 8 bytes
      const result = await store.appendToStream('limit-ok', [{ type: 'A', data: { s } }]);
      expect(result.nextExpectedVersion).toBe(0);
    });
  });

  it('stored events cannot be updated or deleted in place', async () => {
    await store.appendToStream('immutable-1', [{ type: 'A', data: { v: 1 } }]);
    await expect(fx.db.pool.query(`UPDATE eventstore.events SET data = '{}' WHERE stream_id = 'immutable-1'`)).rejects.toMatchObject({ code: 'FG405' });
    await expect(fx.db.pool.query(`DELETE FROM eventstore.events WHERE stream_id = 'immutable-1'`)).rejects.toMatchObject({ code: 'FG405' });
    expect((await store.readStream('immutable-1'))[0]?.data).toEqual({ v: 1 });
  });
});

describe('readStream', () => {
  it('reads forwards and backwards with from and count, ordered by stream position', async () => {
    await store.appendToStream(
      'read-1',
      Array.from({ length: 10 }, (_, i) => ({ type: 'N', data: { i } })),
    );
    const positions = async (o: Parameters<EventStore['readStream']>[1]) => (await store.readStream('read-1', o)).map((e) => e.streamPosition);
    expect(await positions({})).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(await positions({ from: 7 })).toEqual([7, 8, 9]);
    expect(await positions({ from: 2, count: 3 })).toEqual([2, 3, 4]);
    expect(await positions({ direction: 'backwards', count: 3 })).toEqual([9, 8, 7]);
    expect(await positions({ direction: 'backwards', from: 4 })).toEqual([4, 3, 2, 1, 0]);
    expect(await store.readStream('read-missing')).toEqual([]);
  });

  it('keeps stream order under any query plan', async () => {
    const client = await fx.db.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SET LOCAL enable_indexscan = off');
      await client.query('SET LOCAL enable_bitmapscan = off');
      await client.query('SET LOCAL enable_sort = off');
      const { readStream } = await import('./read.ts');
      const events = await readStream(client, undefined, 'read-1', { direction: 'backwards' });
      expect(events.map((e) => e.streamPosition)).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
  });
});
