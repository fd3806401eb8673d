/**
 * A stream id with an unpaired surrogate never reaches PostgreSQL (issue 11): node-postgres would
 * encode it as U+FFFD, so `a\uD800` and `a\uDBFF` would be appended to, and read as, one stream.
 * The store refuses it on append, read and follow with InvalidStreamIdError and stores nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidStreamIdError, LOG_START } from './index.ts';
import { countStoredEvents, createStoreFixture, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('validate_strings');
});
afterAll(() => fx?.close());

describe('stream ids with an unpaired surrogate', () => {
  it('two ids differing only in their lone surrogate are refused, not merged into one stream: nothing stored', async () => {
    const before = await countStoredEvents(fx.db.pool);
    await expect(fx.store.appendToStream('doc-a\uD800', [{ type: 'A', data: {} }])).rejects.toBeInstanceOf(InvalidStreamIdError);
    await expect(fx.store.appendToStream('doc-a\uDBFF', [{ type: 'A', data: {} }], { expectedVersion: 'no_stream' })).rejects.toThrow(/unpaired UTF-16 surrogate/);
    await expect(fx.store.transaction((tx) => tx.appendToStream('doc-a\uDC00', [{ type: 'A', data: {} }]))).rejects.toBeInstanceOf(InvalidStreamIdError);
    expect(await countStoredEvents(fx.db.pool)).toBe(before);
    const { rows } = await fx.db.pool.query(`SELECT count(*)::int AS n FROM eventstore.events WHERE stream_id LIKE 'doc-a%'`);
    expect(rows[0].n).toBe(0);
  });

  it('reading or following such a stream is refused too (it would read the U+FFFD stream)', async () => {
    await fx.store.appendToStream('doc-b\uFFFD', [{ type: 'A', data: { n: 1 } }]);
    await expect(fx.store.readStream('doc-b\uD800')).rejects.toBeInstanceOf(InvalidStreamIdError);
    await expect(fx.store.readAll({ streamId: 'doc-b\uD800' })).rejects.toBeInstanceOf(InvalidStreamIdError);
    expect(() => fx.store.follow({ after: LOG_START, streamId: 'doc-b\uD800', onEvents: async () => {} })).toThrow(InvalidStreamIdError);
    // The real U+FFFD stream is a valid id of its own.
    expect((await fx.store.readStream('doc-b\uFFFD')).map((e) => e.data)).toEqual([{ n: 1 }]);
  });

  it('an emoji (a paired surrogate) in a stream id is stored and read back unchanged', async () => {
    await fx.store.appendToStream('doc-😀', [{ type: 'A', data: { ok: true } }]);
    const events = await fx.store.readStream('doc-😀');
    expect(events.map((e) => e.streamId)).toEqual(['doc-😀']);
  });
});
