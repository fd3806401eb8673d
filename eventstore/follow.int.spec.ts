import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  compareLogPositions,
  InvalidEventDataError,
  InvalidStreamIdError,
  LOG_START,
  type LogFollower,
  type LogPosition,
  type RecordedEvent,
} from './index.ts';
import { createStoreFixture, delay, eventually, gate, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('follow');
});
afterAll(() => fx.close());

const positionOf = (e: RecordedEvent): LogPosition => ({ transactionId: e.transactionId, globalPosition: e.globalPosition });

/** Reads the log from `after` until caught up, with the given filters. */
async function drain(after: LogPosition, filters: { streamId?: string; types?: string[]; count?: number } = {}) {
  const events: RecordedEvent[] = [];
  let position = after;
  for (;;) {
    const page = await fx.store.readAll({ after: position, count: filters.count ?? 100, ...filters });
    events.push(...page.events);
    position = page.position;
    if (page.caughtUp) return { events, position };
  }
}

/** A follower that records what it is handed; `close()` it at the end. */
function record(after: LogPosition, options: { streamId?: string; types?: string[]; batchSize?: number } = {}) {
  const events: RecordedEvent[] = [];
  const pages: LogPosition[] = [];
  const moves: LogPosition[] = [];
  const follower = fx.store.follow({
    after,
    pollIntervalMs: 100,
    ...options,
    onEvents(page, position) {
      events.push(...page);
      pages.push(position);
    },
    onPosition: (position) => moves.push(position),
  });
  return { follower, events, pages, moves };
}

describe('readAll with streamId', () => {
  it('returns only that stream, in log order, and still moves the position to the safe bound', async () => {
    const { store } = fx;
    const start = (await drain(LOG_START)).position;
    for (let i = 0; i < 30; i++) {
      await store.appendToStream(`interleaved-${i % 3}`, [{ type: i % 2 ? 'Odd' : 'Even', data: { i } }]);
    }
    const all = await drain(start);
    const only = await drain(start, { streamId: 'interleaved-1', count: 4 });
    expect(only.events.map((e) => (e.data as { i: number }).i)).toEqual([1, 4, 7, 10, 13, 16, 19, 22, 25, 28]);
    expect(only.events.map((e) => e.streamPosition)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    // The last page is not full: the position moved past the other streams' later events too.
    expect(compareLogPositions(only.position, positionOf(all.events.at(-1)!))).toBeGreaterThanOrEqual(0);
    const both = await drain(start, { streamId: 'interleaved-1', types: ['Odd'] });
    expect(both.events.map((e) => (e.data as { i: number }).i)).toEqual([1, 7, 13, 19, 25]);
    const none = await store.readAll({ after: start, streamId: 'no-such-stream' });
    expect(none).toMatchObject({ events: [], caughtUp: true });
    expect(compareLogPositions(none.position, positionOf(all.events.at(-1)!))).toBeGreaterThanOrEqual(0);
  });

  it('refuses a bad stream id or position with typed errors', async () => {
    await expect(fx.store.readAll({ streamId: '' })).rejects.toBeInstanceOf(InvalidStreamIdError);
    await expect(fx.store.readAll({ streamId: 'x'.repeat(501) })).rejects.toBeInstanceOf(InvalidStreamIdError);
    await expect(fx.store.readAll({ after: { transactionId: '-1', globalPosition: '0' } })).rejects.toBeInstanceOf(InvalidEventDataError);
  });
});

describe('headPosition', () => {
  it('is what a readAll that read everything returns, and moves forward only', async () => {
    const { store } = fx;
    await store.appendToStream('head-1', [{ type: 'Head', data: {} }]);
    const before = await store.headPosition();
    const read = await drain(LOG_START, { count: 1000 });
    const after = await store.headPosition();
    expect(compareLogPositions(before, read.position)).toBeLessThanOrEqual(0);
    expect(compareLogPositions(read.position, after)).toBeLessThanOrEqual(0);
    expect((await store.readAll({ after: before })).events).toEqual([]);
  });

  it('a follower started after it gets exactly the later events, including those of an append still in progress then', async () => {
    const { store } = fx;
    await store.appendToStream('head-2', [{ type: 'Before', data: { n: 0 } }]);
    const hold = gate();
    const appended = gate();
    const inProgress = store.transaction(async (tx) => {
      await tx.appendToStream('head-2-slow', [{ type: 'Slow', data: { n: 1 } }]);
      appended.open();
      await hold.promise;
    });
    await appended.promise;
    // Committed before the head is read, but after the open append in log order (a later
    // transaction id): it is after the head too, or the open append would be skipped. It also
    // moves the snapshot's xmax past the open append's xid.
    await store.appendToStream('head-2', [{ type: 'Overtook', data: { n: 2 } }]);
    const head = await store.headPosition();
    const r = record(head);
    try {
      await store.appendToStream('head-2', [{ type: 'After', data: { n: 3 } }]);
      hold.open();
      await inProgress;
      await store.appendToStream('head-2', [{ type: 'After', data: { n: 4 } }]);
      await eventually(() => r.events.length >= 4, 10_000, 'four events');
      await delay(200);
      expect(r.events.map((e) => (e.data as { n: number }).n)).toEqual([1, 2, 3, 4]);
    } finally {
      await r.follower.close();
    }
  });
});

describe('follow', () => {
  it('hands out every event of concurrent writers once, in log order, and waits for each page', async () => {
    const { store } = fx;
    const start = await store.headPosition();
    let inHandler = 0;
    const received: RecordedEvent[] = [];
    const follower = store.follow({
      after: start,
      batchSize: 50,
      pollIntervalMs: 200,
      async onEvents(events) {
        inHandler++;
        expect(inHandler).toBe(1);
        await delay(Math.random() * 5);
        received.push(...events);
        inHandler--;
      },
    });
    try {
      await Promise.all(
        Array.from({ length: 8 }, async (_, w) => {
          for (let n = 0; n < 100; n += 5) {
            await store.transaction(async (tx) => {
              await tx.appendToStream(`writer-${w % 3}`, Array.from({ length: 5 }, (_, k) => ({ type: 'Written', data: { w, n: n + k } })));
              await delay(Math.random() * 3);
            });
          }
        }),
      );
      await eventually(() => received.length >= 800, 30_000, 'all 800 events');
      await delay(300);
      const log = (await drain(start)).events;
      expect(received.map((e) => e.eventId)).toEqual(log.map((e) => e.eventId));
      expect(received).toHaveLength(800);
      for (let i = 1; i < received.length; i++) expect(compareLogPositions(positionOf(received[i - 1]!), positionOf(received[i]!))).toBeLessThan(0);
      await eventually(() => follower.caughtUp, 5000, 'caught up');
      expect(compareLogPositions(follower.position, positionOf(received.at(-1)!))).toBeGreaterThanOrEqual(0);
    } finally {
      await follower.close();
    }
  }, 60_000);

  it('never skips a slow transaction that took an earlier position and commits late', async () => {
    const { store } = fx;
    const r = record(await store.headPosition());
    try {
      const holdA = gate();
      const aAppended = gate();
      let aPosition: LogPosition | undefined;
      const aDone = store.transaction(async (tx) => {
        aPosition = (await tx.appendToStream('follow-slow-a', [{ type: 'Slow', data: { who: 'A' } }])).position;
        aAppended.open();
        await holdA.promise;
      });
      await aAppended.promise;
      await store.appendToStream('follow-fast-b', [{ type: 'Fast', data: { who: 'B' } }]);
      // Several polls and a hint while A is open: nothing handed out, the position stays before A.
      await delay(400);
      expect(r.events).toEqual([]);
      expect(compareLogPositions(r.follower.position, aPosition!)).toBeLessThan(0);
      for (const p of [...r.pages, ...r.moves]) expect(compareLogPositions(p, aPosition!)).toBeLessThan(0);
      holdA.open();
      await aDone;
      await eventually(() => r.events.length >= 2, 10_000, 'A and B');
      await delay(200);
      expect(r.events.map((e) => e.data)).toEqual([{ who: 'A' }, { who: 'B' }]);
    } finally {
      await r.follower.close();
    }
  });

  it('streamId: hands out that stream only, and reports the position moving past other streams', async () => {
    const { store } = fx;
    const start = await store.headPosition();
    const r = record(start, { streamId: 'followed' });
    try {
      await store.appendToStream('followed', [{ type: 'Mine', data: { n: 1 } }]);
      await store.appendToStream('not-followed', [{ type: 'Mine', data: { n: 2 } }]);
      await store.appendToStream('followed', [{ type: 'Other', data: { n: 3 } }]);
      await eventually(() => r.events.length >= 2, 10_000, 'two events');
      const last = await store.appendToStream('not-followed', [{ type: 'Mine', data: { n: 4 } }]);
      await eventually(() => compareLogPositions(r.follower.position, last.position) >= 0, 10_000, 'position past the last event');
      expect(r.events.map((e) => e.data)).toEqual([{ n: 1 }, { n: 3 }]);
      expect(r.events.every((e) => e.streamId === 'followed')).toBe(true);
      expect(r.moves.length).toBeGreaterThan(0);
      // Positions handed out only move forward.
      const handed = [...r.pages, ...r.moves].sort(compareLogPositions);
      expect(compareLogPositions(handed.at(-1)!, r.follower.position)).toBe(0);
    } finally {
      await r.follower.close();
    }
  });

  it('types: hands out those types only; pages with nothing matching still move the position (onPosition)', async () => {
    const { store } = fx;
    const r = record(await store.headPosition(), { types: ['Wanted'] });
    try {
      await eventually(() => r.follower.caughtUp, 5000, 'caught up');
      const before = r.follower.position;
      const skipped = await store.appendToStream('typed', [{ type: 'Unwanted', data: { n: 1 } }]);
      await eventually(() => compareLogPositions(r.follower.position, skipped.position) >= 0, 10_000, 'moved past the unwanted event');
      expect(r.events).toEqual([]);
      expect(r.moves.some((p) => compareLogPositions(p, before) > 0)).toBe(true);
      await store.appendToStream('typed', [{ type: 'Wanted', data: { n: 2 } }, { type: 'Unwanted', data: { n: 3 } }, { type: 'Wanted', data: { n: 4 } }]);
      await eventually(() => r.events.length >= 2, 10_000, 'two wanted');
      expect(r.events.map((e) => e.data)).toEqual([{ n: 2 }, { n: 4 }]);
    } finally {
      await r.follower.close();
    }
  });

  it('a failing onEvents gets the same page again after a backoff; nothing is skipped', async () => {
    const { store } = fx;
    const start = await store.headPosition();
    const calls: string[][] = [];
    let failures = 2;
    const follower = store.follow({
      after: start,
      streamId: 'flaky',
      retryDelayMs: 20,
      pollIntervalMs: 100,
      onEvents(events) {
        calls.push(events.map((e) => e.eventId));
        if (failures-- > 0) throw new Error('handler is down');
      },
    });
    try {
      const first = await store.appendToStream('flaky', [{ type: 'F', data: { n: 1 } }, { type: 'F', data: { n: 2 } }]);
      await eventually(() => calls.length >= 3, 10_000, 'two retries');
      expect(calls[1]).toEqual(calls[0]);
      expect(calls[2]).toEqual(calls[0]);
      await eventually(() => compareLogPositions(follower.position, first.position) >= 0, 5000, 'position after the page');
      await store.appendToStream('flaky', [{ type: 'F', data: { n: 3 } }]);
      await eventually(() => calls.length >= 4, 10_000, 'the next page');
      expect(calls.slice(3).flat()).toHaveLength(1);
    } finally {
      await follower.close();
    }
  });

  it('close() during onEvents waits for it, then nothing more is handed out', async () => {
    const { store } = fx;
    const release = gate();
    const entered = gate();
    let calls = 0;
    let finished = false;
    const follower = store.follow({
      after: await store.headPosition(),
      streamId: 'closing',
      async onEvents() {
        calls++;
        entered.open();
        await release.promise;
        finished = true;
      },
    });
    const appended = await store.appendToStream('closing', [{ type: 'C', data: {} }]);
    await entered.promise;
    let closed = false;
    const closing = follower.close().then(() => (closed = true));
    await delay(100);
    expect(closed).toBe(false);
    release.open();
    await closing;
    expect(finished).toBe(true);
    expect(compareLogPositions(follower.position, appended.position)).toBeGreaterThanOrEqual(0);
    await store.appendToStream('closing', [{ type: 'C', data: {} }]);
    await delay(200);
    expect(calls).toBe(1);
    await follower.close();
    await follower.closed;
  });

  it('idle followers hold no connection and run no query until a hint or their poll', async () => {
    const { store, db } = fx;
    let acquired = 0;
    const count = () => acquired++;
    db.pool.on('acquire', count);
    const followers: LogFollower[] = [];
    try {
      const head = await store.headPosition();
      for (let i = 0; i < 100; i++) followers.push(store.follow({ after: head, pollIntervalMs: 60_000, onEvents() {} }));
      await eventually(() => followers.every((f) => f.caughtUp), 10_000, 'all caught up');
      const before = acquired;
      await delay(500);
      expect(acquired).toBe(before);
      expect(db.pool.totalCount - db.pool.idleCount).toBe(0);
      // A wake-up of one follower: it reads once, then is idle again.
      followers[0]!.wake();
      await delay(200);
      expect(acquired - before).toBe(1);
    } finally {
      await Promise.all(followers.map((f) => f.close()));
      db.pool.off('acquire', count);
    }
  });

  it('refuses bad options synchronously', () => {
    const { store } = fx;
    const onEvents = () => {};
    expect(() => store.follow({ after: undefined as never, onEvents })).toThrow(InvalidEventDataError);
    expect(() => store.follow({ after: { transactionId: 'x', globalPosition: '0' }, onEvents })).toThrow(/options\.after/);
    expect(() => store.follow({ after: LOG_START, onEvents, streamId: '' })).toThrow(InvalidStreamIdError);
    expect(() => store.follow({ after: LOG_START, onEvents, batchSize: 0 })).toThrow(/options\.batchSize/);
    expect(() => store.follow({ after: LOG_START, onEvents, pollIntervalMs: 0 })).toThrow(/options\.pollIntervalMs/);
    expect(() => store.follow({ after: LOG_START, onEvents, types: 'Tick' as never })).toThrow(/options\.types/);
    expect(() => store.follow({ after: LOG_START } as never)).toThrow(TypeError);
  });

  it('closing the store closes its followers', async () => {
    const other = fx.newStore();
    const follower = other.follow({ after: LOG_START, onEvents() {} });
    await other.close();
    await follower.closed;
    expect(() => other.follow({ after: LOG_START, onEvents() {} })).toThrow(/closed/);
  });
});
