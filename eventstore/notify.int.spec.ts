/**
 * Wake-up hints (eventstore/notify.ts) on the real PostgreSQL: a burst of commits costs one
 * `pg_notify` per interval (issue 13), a lone commit is hinted at once, the last commit of a
 * burst is always followed by a notification (no reader is left to its poll), and a bad interval
 * is a TypeError.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { Notifier } from './notify.ts';
import { NOTIFY_CHANNEL } from './schema.ts';
import { silentLogger } from './logger.ts';
import { createStoreFixture, delay, eventually } from './testing/fixture.ts';

let db: TestDatabase;
let listener: pg.Client;
/** performance.now() of each notification the LISTEN connection received. */
const received: number[] = [];

beforeAll(async () => {
  db = await createTestDatabase('notify');
  listener = new pg.Client(db.pool.options);
  await listener.connect();
  listener.on('notification', (n) => {
    if (n.channel === NOTIFY_CHANNEL) received.push(performance.now());
  });
  await listener.query(`LISTEN ${NOTIFY_CHANNEL}`);
});
afterAll(async () => {
  await listener.end();
  await db.drop();
});

describe('wake-up hints', () => {
  it('sends a lone hint at once and a burst as one notification per interval, ending with one after the last hint', async () => {
    const notifier = new Notifier(db.pool, silentLogger, 20);
    try {
      received.length = 0;
      const lone = performance.now();
      notifier.hint();
      await eventually(() => received.length === 1, 5_000, 'the lone hint');
      expect(received[0]! - lone).toBeLessThan(1_000);
      await delay(100);

      received.length = 0;
      const started = performance.now();
      let hints = 0;
      let lastHint = started;
      // 300 ms of hints every ~1 ms: a commit burst of one process.
      while (performance.now() - started < 300) {
        notifier.hint();
        lastHint = performance.now();
        hints += 1;
        await delay(1);
      }
      await delay(200);
      const elapsed = lastHint - started;
      expect(hints).toBeGreaterThan(50);
      // One at the start, then at most one per 20 ms interval (plus the trailing one).
      expect(received.length).toBeGreaterThanOrEqual(2);
      expect(received.length).toBeLessThanOrEqual(Math.ceil(elapsed / 20) + 2);
      expect(received.at(-1)!).toBeGreaterThan(lastHint);
    } finally {
      await notifier.close();
    }
  });

  it('wakes a reader of another store for the last append of a burst', async () => {
    const fx = await createStoreFixture('notify_store', { notifyIntervalMs: 50 });
    try {
      const other = fx.newStore();
      let wakes = 0;
      const off = other.onAppended(() => (wakes += 1));
      await delay(300); // its LISTEN connection is up
      const before = wakes;
      await Promise.all(Array.from({ length: 40 }, (_, i) => fx.store.appendToStream(`burst-${i}`, [{ type: 'Happened', data: { i } }])));
      await eventually(() => wakes > before, 5_000, 'a wake-up in the other store');
      const afterBurst = wakes;
      await delay(200);
      // A burst of 40 commits woke the other process a few times, not 40.
      expect(wakes - before).toBeLessThan(20);
      expect(wakes).toBeGreaterThanOrEqual(afterBurst);
      off();
    } finally {
      await fx.close();
    }
  });

  it.each([-1, Number.NaN, Infinity, 60_001])('refuses the interval %s with a TypeError', (interval) => {
    expect(() => new Notifier(db.pool, silentLogger, interval)).toThrow(TypeError);
  });
});
