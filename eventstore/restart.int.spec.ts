/**
 * A subscription survives a PostgreSQL restart: it reconnects on its own and resumes from its
 * checkpoint; a follower (`store.follow`, what live GraphQL subscriptions read) re-reads from
 * the last position it handed out, so it misses nothing and repeats nothing. Uses a private embedded PostgreSQL (a test never restarts the shared server).
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '../db/embedded.ts';
import { createEventStore, LOG_START, migrateEventStore, startProjection, type EventStore } from './index.ts';
import { APPLIED_TABLE_SQL, countingProjection } from './testing/counting-projection.ts';
import { delay, eventually } from './testing/fixture.ts';

let dir: string;
let port: number;
let server: RunningEmbeddedPostgres;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'flowgraph-restart-'));
  // mkdtemp makes a mode-700 folder: the postgres OS user must be able to reach the data inside.
  await chmod(dir, 0o755);
  port = await new Promise<number>((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
  server = await startEmbeddedPostgres({ port, dataDir: path.join(dir, 'pg'), secretsFile: path.join(dir, 'secrets.json') });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('after PostgreSQL restarts', () => {
  it('a subscription and a follower reconnect on their own and deliver every event once', async () => {
    const pool = new pg.Pool({ connectionString: server.adminUrl, max: 5, connectionTimeoutMillis: 2000 });
    pool.on('error', () => {});
    let store: EventStore | undefined;
    try {
      await migrateEventStore(pool);
      await pool.query(APPLIED_TABLE_SQL);
      store = createEventStore({ pool });
      const sub = startProjection(store, countingProjection('restart', 'me', ['Tick']), { pollIntervalMs: 100, retryDelayMs: 100 });
      const followed: number[] = [];
      const follower = store.follow({
        after: LOG_START,
        types: ['Tick'],
        pollIntervalMs: 100,
        retryDelayMs: 100,
        onEvents: async (events) => {
          for (const event of events) followed.push((event.data as { i: number }).i);
        },
      });
      for (let i = 0; i < 50; i++) await store.appendToStream('ticks', [{ type: 'Tick', data: { i } }]);
      await eventually(async () => (await pool.query('SELECT count(*)::int AS n FROM applied')).rows[0].n === 50, 20_000, 'first 50');

      await server.stop();
      expect(sub.state).not.toBe('closed');
      await delay(500);
      server = await startEmbeddedPostgres({ port, dataDir: path.join(dir, 'pg'), secretsFile: path.join(dir, 'secrets.json') });

      // The pool hands out fresh connections; the subscription and LISTEN reconnect by themselves.
      await eventually(async () => {
        try {
          await store!.appendToStream('ticks', [{ type: 'Tick', data: { i: 50 } }]);
          return true;
        } catch {
          return false;
        }
      }, 20_000, 'appends accepted again');
      for (let i = 51; i < 100; i++) await store.appendToStream('ticks', [{ type: 'Tick', data: { i } }]);
      await eventually(async () => (await pool.query('SELECT count(*)::int AS n FROM applied')).rows[0].n >= 100, 30_000, 'all 100 applied');
      await delay(300);
      const { rows } = await pool.query('SELECT count(*)::int AS n, count(DISTINCT event_id)::int AS d FROM applied');
      expect(rows[0]).toEqual({ n: 100, d: 100 });
      expect(sub.state).toBe('active');
      await eventually(() => followed.length >= 100, 20_000, 'the follower at 100');
      await delay(300);
      expect(followed).toEqual(Array.from({ length: 100 }, (_, i) => i));
      await follower.close();
    } finally {
      await store?.close();
      await pool.end();
    }
  }, 120_000);
});
