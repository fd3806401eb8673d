import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InexactNumberError, InvalidEventDataError, LOG_START, type Logger, type RecordedEvent } from './index.ts';
import { countStoredEvents, createStoreFixture, eventually, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('json_numbers');
});
afterAll(async () => {
  await fx.close();
});

/** Appends one event the way another writer would: raw SQL, the jsonb text as written. */
async function appendRaw(streamId: string, dataJson: string, metadataJson = '{}', type = 'Raw'): Promise<void> {
  await fx.db.pool.query(
    `SELECT * FROM eventstore.append_to_stream($1, 'any', ARRAY[gen_random_uuid()], ARRAY[$4], ARRAY[1], ARRAY[$2::jsonb], ARRAY[$3::jsonb], false)`,
    [streamId, dataJson, metadataJson, type],
  );
}

async function readWholeLog(): Promise<RecordedEvent[]> {
  const events: RecordedEvent[] = [];
  let after = LOG_START;
  for (;;) {
    const page = await fx.store.readAll({ after, count: 1000 });
    events.push(...page.events);
    after = page.position;
    if (page.caughtUp) return events;
  }
}

describe('exact numbers in the event store', () => {
  it('round-trips exact doubles unchanged: 2^53, 1e300, 0.1, 123.456, -5, 5e-324, the largest double', async () => {
    const data = { a: 2 ** 53, b: 1e300, c: 0.1, d: 123.456, e: -5, f: 5e-324, g: Number.MAX_VALUE, nested: [{ h: 0.30000000000000004 }] };
    await fx.store.appendToStream('exact-1', [{ type: 'Exact', data }], { metadata: { correlation_id: 'c', weight: 1e21 } as never });
    const [event] = await fx.store.readStream('exact-1');
    expect(event!.data).toEqual(data);
    expect(Object.is((event!.data as { e: number }).e, -5)).toBe(true);
    expect((event!.metadata as unknown as { weight: number }).weight).toBe(1e21);
  });

  it('reads exact numbers another writer stored in any spelling (1.0, 1e2, 100, 9007199254740992)', async () => {
    await appendRaw('raw-exact', '{"one": 1.0, "hundreds": [1e2, 100, 100.00], "max": 9007199254740992, "tiny": 1e-7}');
    const [event] = await fx.store.readStream('raw-exact');
    expect(event!.data).toEqual({ one: 1, hundreds: [100, 100, 100], max: 9007199254740992, tiny: 1e-7 });
  });

  it('readStream refuses to round a number another writer stored that no double holds: InexactNumberError naming stream, version, path and text', async () => {
    await appendRaw('raw-inexact', '{"ok": 1}');
    await appendRaw('raw-inexact', '{"items": [1, {"big": 9007199254740993}]}');
    const error = await fx.store.readStream('raw-inexact').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InexactNumberError);
    expect(error).toMatchObject({
      code: 'INEXACT_NUMBER',
      streamId: 'raw-inexact',
      streamPosition: 1,
      column: 'data',
      jsonPath: 'items[1].big',
      text: '9007199254740993',
    });
    expect((error as Error).message).toContain('9007199254740993');
    // The event before it still reads.
    expect((await fx.store.readStream('raw-inexact', { count: 1 }))[0]!.data).toEqual({ ok: 1 });
  });

  it('readAll refuses a page holding an inexact number (int64 max, 0.1000000000000000055) in data or metadata', async () => {
    await appendRaw('raw-int64', '{"n": 9223372036854775807}');
    await appendRaw('raw-meta', '{}', '{"ratio": 0.1000000000000000055}');
    const error = await readWholeLog().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InexactNumberError);
    expect(error).toMatchObject({ code: 'INEXACT_NUMBER' });
    // The first bad event of the log fails the page (the stream of the previous test is earlier).
    expect(['9007199254740993', '9223372036854775807', '0.1000000000000000055']).toContain((error as InexactNumberError).text);
    const meta = await fx.store.readStream('raw-meta').catch((e: unknown) => e);
    expect(meta).toMatchObject({ column: 'metadata', jsonPath: 'ratio', text: '0.1000000000000000055' });
    const int64 = await fx.store.readAll({ streamId: 'raw-int64' }).catch((e: unknown) => e);
    expect(int64).toMatchObject({ streamId: 'raw-int64', jsonPath: 'n', text: '9223372036854775807' });
  });

  it('a follower never hands out a rounded value: its read fails with InexactNumberError and retries', async () => {
    const warnings: unknown[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (obj) => void warnings.push((obj as { err?: unknown }).err) };
    const store = fx.newStore({ logger });
    await appendRaw('raw-follow', '{"big": 12345678901234567890}');
    const seen: unknown[] = [];
    const follower = store.follow({ after: LOG_START, streamId: 'raw-follow', retryDelayMs: 10, onEvents: async (events) => void seen.push(...events.map((e) => e.data)) });
    try {
      await eventually(() => warnings.some((e) => e instanceof InexactNumberError), 20_000, 'the follower to report InexactNumberError');
      expect(seen).toEqual([]);
      expect(warnings.find((e) => e instanceof InexactNumberError)).toMatchObject({ streamId: 'raw-follow', text: '12345678901234567890' });
    } finally {
      await follower.close();
    }
  });

  it('a subscription never hands a rounded value to its handler: its read fails with InexactNumberError and retries', async () => {
    const warnings: unknown[] = [];
    const logger: Logger = { debug() {}, info() {}, error() {}, warn: (obj) => void warnings.push((obj as { err?: unknown }).err) };
    const store = fx.newStore({ logger });
    await appendRaw('raw-subscribe', '{"amount": 1e400}', '{}', 'RawSubscribed');
    const handled: unknown[] = [];
    const subscription = store.subscribe({ name: 'exact-numbers', types: ['RawSubscribed'], retryDelayMs: 10, handler: async (events) => void handled.push(...events.map((e) => e.data)) });
    try {
      await eventually(() => warnings.some((e) => e instanceof InexactNumberError), 20_000, 'the subscription to report InexactNumberError');
      expect(handled).toEqual([]);
      expect(warnings.find((e) => e instanceof InexactNumberError)).toMatchObject({ streamId: 'raw-subscribe', jsonPath: 'amount', text: `1${'0'.repeat(400)}` });
      expect((warnings.find((e) => e instanceof InexactNumberError) as Error).message).toContain('(401 characters)');
    } finally {
      await subscription.close();
    }
  });

  it('append refuses -0 (stored as 0) and non-finite numbers with InvalidEventDataError, storing nothing', async () => {
    const before = await countStoredEvents(fx.db.pool);
    for (const bad of [{ x: -0 }, { x: [1, -0] }, { x: Number.NaN }, { x: Number.POSITIVE_INFINITY }]) {
      const error = await fx.store.appendToStream('refused-1', [{ type: 'Bad', data: bad }]).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(InvalidEventDataError);
    }
    await expect(fx.store.appendToStream('refused-1', [{ type: 'Bad', data: { x: -0 } }])).rejects.toThrow(/-0 is stored as 0/);
    expect(await countStoredEvents(fx.db.pool)).toBe(before);
    expect(await fx.store.readStream('refused-1')).toEqual([]);
  });
});
