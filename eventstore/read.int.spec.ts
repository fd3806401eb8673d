import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { compareLogPositions } from './cursor.ts';
import { LOG_START, type LogPosition, type RecordedEvent } from './index.ts';
import { createStoreFixture, delay, eventually, gate, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
let otherDb: TestDatabase;
beforeAll(async () => {
  fx = await createStoreFixture('read_all');
  otherDb = await createTestDatabase('read_all_other');
});
afterAll(async () => {
  await fx.close();
  await otherDb.drop();
});

/** Reads the whole log from `after` until caught up. */
async function drain(after: LogPosition): Promise<{ events: RecordedEvent[]; position: LogPosition }> {
  const events: RecordedEvent[] = [];
  let position = after;
  for (;;) {
    const page = await fx.store.readAll({ after: position, count: 100 });
    events.push(...page.events);
    position = page.position;
    if (page.caughtUp) return { events, position };
  }
}

describe('readAll never skips a slow transaction', () => {
  it('A appends and stays open, B commits later: the reader gets A and B once each, in order, and never passes A while it is open', async () => {
    const { store } = fx;
    const start = (await drain(LOG_START)).position;
    const holdA = gate();
    const aAppended = gate();
    const aDone = store.transaction(async (tx) => {
      await tx.appendToStream('slow-a', [{ type: 'Slow', data: { who: 'A' } }]);
      aAppended.open();
      await holdA.promise;
    });
    await aAppended.promise;
    const b = await store.appendToStream('fast-b', [{ type: 'Fast', data: { who: 'B' } }]);

    // B is committed but its transaction id is above A's: nothing may be read past A.
    const first = await drain(start);
    expect(first.events).toEqual([]);
    const aXid = BigInt(first.position.transactionId) + 1n;
    expect(BigInt(b.transactionId)).toBeGreaterThan(aXid - 1n);

    holdA.open();
    await aDone;
    const second = await drain(first.position);
    expect(second.events.map((e) => e.data)).toEqual([{ who: 'A' }, { who: 'B' }]);
    const positions = second.events.map((e) => ({ transactionId: e.transactionId, globalPosition: e.globalPosition }));
    expect(compareLogPositions(positions[0]!, positions[1]!)).toBeLessThan(0);
    // A took its global position before B? Not required; order is by transaction first.
    expect(positions[0]!.transactionId).toBe(String(aXid));
    // Once more: nothing twice.
    expect((await drain(second.position)).events).toEqual([]);
  });

  it('a transaction that appends nothing, or runs in another database, does not hold the reader back', async () => {
    const { store } = fx;
    const start = (await drain(LOG_START)).position;
    // Same database: an open transaction with an xid that never appends.
    const idle = new pg.Client({ connectionString: fx.db.url });
    await idle.connect();
    await idle.query('BEGIN');
    await idle.query('CREATE TEMP TABLE t (x int)');
    await idle.query('SELECT pg_current_xact_id()');
    // Another database on the same server: an open transaction with an xid.
    const elsewhere = new pg.Client({ connectionString: otherDb.url });
    await elsewhere.connect();
    await elsewhere.query('BEGIN');
    await elsewhere.query('CREATE TABLE busy (x int)');
    try {
      await store.appendToStream('after-idle', [{ type: 'Fresh', data: { n: 1 } }]);
      await store.appendToStream('after-idle', [{ type: 'Fresh', data: { n: 2 } }]);
      // A read may still stop short of them while a transaction of another test file that
      // began earlier is finishing at that very moment (it bounds the read conservatively);
      // the idle transactions above never do: the events arrive within a few reads.
      let events: RecordedEvent[] = [];
      await eventually(async () => {
        events = (await drain(start)).events;
        return events.length >= 2;
      }, 5_000, 'events after the idle transactions');
      expect(events.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }]);
    } finally {
      await idle.query('ROLLBACK');
      await elsewhere.query('ROLLBACK');
      await idle.end();
      await elsewhere.end();
    }
  });

  it('a subscriber sees A and B exactly once, and its checkpoint never passes A while A is open', async () => {
    const { store } = fx;
    const start = (await drain(LOG_START)).position;
    const received: RecordedEvent[] = [];
    const checkpoints: LogPosition[] = [];
    const sub = store.subscribe({
      name: 'scenario-1',
      pollIntervalMs: 50,
      handler: async (events) => {
        received.push(...events.filter((e) => compareLogPositions(e, start) > 0));
      },
      onCommitted: (_events, checkpoint) => checkpoints.push(checkpoint),
    });
    try {
      await eventually(() => sub.state === 'active', 10_000, 'subscription active');
      const holdA = gate();
      const aAppended = gate();
      let aPosition: LogPosition | undefined;
      const aDone = store.transaction(async (tx) => {
        const r = await tx.appendToStream('sub-slow-a', [{ type: 'Slow', data: { who: 'A' } }]);
        aPosition = r.position;
        aAppended.open();
        await holdA.promise;
      });
      await aAppended.promise;
      await store.appendToStream('sub-fast-b', [{ type: 'Fast', data: { who: 'B' } }]);
      // Give the subscriber several polls and hints while A is open.
      await delay(400);
      expect(received.map((e) => e.data)).toEqual([]);
      for (const c of checkpoints) expect(compareLogPositions(c, aPosition!)).toBeLessThan(0);
      holdA.open();
      await aDone;
      await eventually(() => received.length >= 2, 10_000, 'A and B delivered');
      await delay(200);
      expect(received.map((e) => e.data)).toEqual([{ who: 'A' }, { who: 'B' }]);
    } finally {
      await sub.close();
    }
  });
});
