import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVISORY_LOCK } from './schema.ts';
import { startProjection, type RecordedEvent } from './index.ts';
import { APPLIED_TABLE_SQL, countingProjection } from './testing/counting-projection.ts';
import { createStoreFixture, delay, eventually, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('subscribe');
  await fx.db.pool.query(APPLIED_TABLE_SQL);
});
afterAll(() => fx.close());

describe('subscriptions', () => {
  it('20 writers x 500 events with random commit delays: one subscriber gets every event once, per-stream order kept', async () => {
    const { store } = fx;
    const writers = 20;
    const perWriter = 500;
    const received: RecordedEvent[] = [];
    const sub = store.subscribe({
      name: 'scenario-5',
      types: ['Written'],
      pollIntervalMs: 200,
      handler: async (events) => {
        received.push(...events);
      },
    });
    const writer = async (w: number) => {
      let written = 0;
      while (written < perWriter) {
        const size = Math.min(perWriter - written, 1 + Math.floor(Math.random() * 5));
        const first = written;
        await store.transaction(async (tx) => {
          // Writers share five streams so that per-stream order is really contended.
          await tx.appendToStream(
            `shared-${w % 5}`,
            Array.from({ length: size }, (_, i) => ({ type: 'Written', data: { w, n: first + i } })),
          );
          await delay(Math.random() * 4);
        });
        written += size;
      }
    };
    await Promise.all(Array.from({ length: writers }, (_, w) => writer(w)));
    await eventually(() => received.length >= writers * perWriter, 60_000, 'all events delivered');
    await delay(300);
    await sub.close();

    expect(received).toHaveLength(writers * perWriter);
    expect(new Set(received.map((e) => e.eventId)).size).toBe(writers * perWriter);
    const lastPosition = new Map<string, number>();
    const lastN = new Map<number, number>();
    for (const e of received) {
      const prev = lastPosition.get(e.streamId) ?? -1;
      expect(e.streamPosition).toBe(prev + 1);
      lastPosition.set(e.streamId, e.streamPosition);
      const { w, n } = e.data as { w: number; n: number };
      expect(n).toBe((lastN.get(w) ?? -1) + 1);
      lastN.set(w, n);
    }
  }, 120_000);

  it("killing the active consumer's connection: a standby in another process takes over from the checkpoint, nothing lost or applied twice", async () => {
    const { store, db } = fx;
    const name = 'scenario-6';
    const projection = countingProjection(name, 'parent', ['Tick']);
    const active = startProjection(store, projection, { pollIntervalMs: 100, standbyRetryMs: 1000, retryDelayMs: 50 });
    await eventually(() => active.state === 'active', 10_000, 'parent consumer active');

    const script = fileURLToPath(new URL('./testing/projection-consumer.ts', import.meta.url));
    const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', script, db.url, name, 'child'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let childOutput = '';
    child.stdout!.on('data', (chunk: Buffer) => (childOutput += chunk.toString()));
    try {
      await eventually(() => childOutput.includes('state:standby'), 20_000, 'child consumer standing by');

      const total = 3000;
      const writing = (async () => {
        for (let i = 0; i < total; i += 10) {
          await store.appendToStream(`tick-${i % 7}`, Array.from({ length: 10 }, (_, k) => ({ type: 'Tick', data: { i: i + k } })));
          if (i % 200 === 0) await delay(5);
        }
      })();
      await eventually(async () => (await appliedCount()) > 300, 20_000, 'parent applying');

      const { rows } = await db.pool.query<{ pid: number }>(
        `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1
            AND objid = (hashtext($2)::bigint & 4294967295)::text::oid AND objsubid = 2`,
        [ADVISORY_LOCK.subscriptionsNamespace, name],
      );
      expect(rows).toHaveLength(1);
      await db.pool.query('SELECT pg_terminate_backend($1)', [rows[0]!.pid]);

      await eventually(() => childOutput.includes('state:active'), 20_000, 'child consumer took over');
      await writing;
      await eventually(async () => (await appliedCount()) >= total, 30_000, 'every event applied');
      await delay(500);

      const { rows: stats } = await db.pool.query<{ n: number; distinct_ids: number; by_child: number }>(
        `SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS distinct_ids,
                count(*) FILTER (WHERE consumer = 'child')::int AS by_child FROM applied`,
      );
      expect(stats[0]).toMatchObject({ n: total, distinct_ids: total });
      expect(stats[0]!.by_child).toBeGreaterThan(0);
      // The parent reconnected on its own and now stands by.
      await eventually(() => active.state === 'standby', 10_000, 'parent standing by');
    } finally {
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      await active.close();
    }
  }, 120_000);
});

async function appliedCount(): Promise<number> {
  const { rows } = await fx.db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM applied');
  return rows[0]!.n;
}
