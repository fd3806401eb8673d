/**
 * Where the time of one flowgraph append goes: `npx tsx bench/profileAppend.ts [--writers 1]
 * [--batch-size 1] [--duration 3]`. On one fresh database (dropped at the end) it runs, with
 * the same writers, variants that peel flowgraph's append apart layer by layer, in 1 s slices
 * interleaved across variants, then prints each variant's appends/s, p50 and WAL bytes per
 * append, and the plan of every statement inside `eventstore.append_to_stream` (auto_explain with nested statements, sent to the
 * client as NOTICEs). Diagnostic only: it changes nothing in `eventstore/`.
 */
import { randomUUID } from 'node:crypto';
import { Command } from 'commander';
import pg from 'pg';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import { createEventStore, migrateEventStore, type NewEvent } from '../eventstore/index.ts';
import { prepareBatch } from '../eventstore/validate.ts';
import { createBenchDatabase } from './benchDatabase.ts';
import { DEFAULT_ADMIN_URL } from './config.ts';
import { BENCH_EVENT } from './targets.ts';

const APPEND_SQL = `SELECT * FROM eventstore.append_to_stream($1, $2, $3::uuid[], $4::text[], $5::integer[], $6::jsonb[], $7::jsonb[], $8)`;
const DATA = JSON.stringify(BENCH_EVENT.data);

interface Variant {
  name: string;
  /** `true` when the variant does not apply to this batch size. */
  skip?: boolean;
  /** Prepares the variant's table or state on the pool (not timed). */
  setup?(pool: pg.Pool): Promise<void>;
  /** One append by writer `w`; `n` is its count of previous appends in this variant. */
  append(pool: pg.Pool, w: number, n: number): Promise<void>;
}

function variants(k: number, dbUrl: string): Variant[] {
  let store: ReturnType<typeof createEventStore> | undefined;
  let emmett: ReturnType<typeof getPostgreSQLEventStore> | undefined;
  const events: NewEvent[] = Array.from({ length: k }, () => ({ type: BENCH_EVENT.type, data: BENCH_EVENT.data }));
  const emmettEvents = Array.from({ length: k }, () => ({ type: 'ItemAdded' as const, data: { ...BENCH_EVENT.data } }));
  const repeat = <T,>(v: T) => Array.from({ length: k }, () => v);
  const ids = () => Array.from({ length: k }, () => randomUUID());
  const rows = (w: number, n: number, prefix: string) =>
    Array.from({ length: k }, (_, i) => `('${randomUUID()}', '${prefix}-${w}', ${n * k + i}, 'ItemAdded', 1, '${DATA}', '{}')`).join(', ');
  return [
    {
      name: 'store.appendToStream (as benchmarked)',
      async setup(pool) {
        store = createEventStore({ pool });
      },
      async append(_pool, w, n) {
        await store!.appendToStream(`full-${w}`, events, { expectedVersion: n === 0 ? 'no_stream' : n * k - 1 });
      },
    },
    {
      name: 'JS side only: prepareBatch (checks + JSON + UUIDs), no database',
      async append() {
        prepareBatch('s', events, undefined, 262144);
      },
    },
    {
      name: 'append_to_stream() SQL only (no JS checks, no pg_notify)',
      async append(pool, w, n) {
        await pool.query(APPEND_SQL, [`sql-${w}`, n === 0 ? 'no_stream' : String(n * k - 1), ids(), repeat(BENCH_EVENT.type), repeat(1), repeat(DATA), repeat('{}'), false]);
      },
    },
    {
      name: 'append_to_stream() SQL only, as a named prepared statement',
      async append(pool, w, n) {
        await pool.query({
          name: 'fg_append',
          text: APPEND_SQL,
          values: [`prep-${w}`, n === 0 ? 'no_stream' : String(n * k - 1), ids(), repeat(BENCH_EVENT.type), repeat(1), repeat(DATA), repeat('{}'), false],
        });
      },
    },
    {
      name: 'pg_notify alone (autocommit)',
      async append(pool) {
        await pool.query(`SELECT pg_notify('flowgraph_eventstore', '')`);
      },
    },
    {
      name: 'INSERT into eventstore.events directly (its 4 B-trees, no function)',
      async append(pool, w, n) {
        await pool.query(`INSERT INTO eventstore.events (event_id, stream_id, stream_position, type, schema_version, data, metadata) VALUES ${rows(w, n, 'ins')}`);
      },
    },
    {
      name: 'plain INSERT (PK only, as benchmarked)',
      async setup(pool) {
        await pool.query(`CREATE TABLE plain_events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id uuid NOT NULL, stream_id text NOT NULL,
          stream_position bigint NOT NULL, type text NOT NULL, schema_version integer NOT NULL, data jsonb NOT NULL, metadata jsonb NOT NULL,
          recorded_at timestamptz NOT NULL DEFAULT clock_timestamp())`);
      },
      async append(pool, w, n) {
        await pool.query(`INSERT INTO plain_events (event_id, stream_id, stream_position, type, schema_version, data, metadata) VALUES ${rows(w, n, 'plain')}`);
      },
    },
    {
      // Last: Emmett's driver replaces pg's global type parsers.
      name: 'Emmett appendToStream (the peer)',
      async setup(pool) {
        emmett = getPostgreSQLEventStore(dbUrl, { connectionOptions: { pool } });
        await emmett.schema.migrate();
      },
      async append(_pool, w, n) {
        await emmett!.appendToStream(`emmett-${w}`, emmettEvents, { expectedStreamVersion: BigInt(n * k) });
      },
    },
  ];
}

async function main(): Promise<void> {
  const opts = new Command('profileAppend')
    .option('--url <url>', 'admin connection string', process.env.FLOWGRAPH_ADMIN_DATABASE_URL || DEFAULT_ADMIN_URL)
    .option('--writers <n>', 'concurrent writers', '1')
    .option('--duration <seconds>', 'seconds per variant', '3')
    .option('--batch-size <n>', 'events per append', '1')
    .parse(process.argv)
    .opts<{ url: string; writers: string; duration: string; batchSize: string }>();
  const k = Number(opts.batchSize);
  const writers = Number(opts.writers);
  const durationMs = Number(opts.duration) * 1000;
  const db = await createBenchDatabase(opts.url, 'profile');
  try {
    const setupPool = new pg.Pool({ connectionString: db.url, max: 2 });
    await migrateEventStore(setupPool);
    await setupPool.end();
    console.log(`profileAppend: ${writers} writer(s), ${k} event(s) per append, ${durationMs} ms per variant, pool = writers + 2, fresh database ${db.name}\n`);
    // All variants stay open; their measured slices are interleaved (rounds × 1 s slices,
    // rotating order) so that background load falls on each alike.
    const rounds = Math.max(1, Math.round(durationMs / 1000));
    const live = [];
    for (const variant of variants(k, db.url)) {
      if (variant.skip) continue;
      // Idle connections close between a variant's slices, so that all variants together stay
      // under max_connections (9 pools × 18 connections at 16 writers did not).
      const pool = new pg.Pool({ connectionString: db.url, max: writers + 2, idleTimeoutMillis: 200 });
      await variant.setup?.(pool);
      await pool.query('SELECT 1');
      live.push({ variant, pool, latencies: [] as number[], elapsed: 0, wal: 0n, counts: Array.from({ length: writers }, () => 0) });
    }
    const admin = new pg.Client({ connectionString: opts.url });
    await admin.connect();
    const walNow = async () => BigInt((await admin.query<{ b: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint::text AS b`)).rows[0]!.b);
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < live.length; i++) {
        const v = live[(i + round) % live.length]!;
        // Reopen the writers' connections before the slice (not measured).
        await Promise.all(Array.from({ length: writers }, () => v.pool.query('SELECT 1')));
        const w0 = await walNow();
        const start = performance.now();
        await Promise.all(
          Array.from({ length: writers }, async (_, w) => {
            while (performance.now() - start < durationMs / rounds) {
              const t0 = performance.now();
              await v.variant.append(v.pool, w, v.counts[w]!++);
              v.latencies.push(performance.now() - t0);
            }
          }),
        );
        v.elapsed += performance.now() - start;
        v.wal += (await walNow()) - w0;
      }
    }
    await admin.end();
    for (const v of live) {
      const n = v.latencies.length;
      v.latencies.sort((a, b) => a - b);
      console.log(
        `${v.variant.name.padEnd(85)} ${((n / v.elapsed) * 1000).toFixed(0).padStart(7)}/s  p50 ${v.latencies[Math.floor(n / 2)]!.toFixed(2).padStart(6)} ms  ` +
          `WAL ${(Number(v.wal) / n).toFixed(0).padStart(6)} B/append`,
      );
      await v.pool.end();
    }

    console.log('\nPlans inside eventstore.append_to_stream (auto_explain, nested statements, the 10th exact-version append of one session to an existing stream):');
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const notices: string[] = [];
    client.on('notice', (m) => notices.push(m.message ?? ''));
    await client.query(APPEND_SQL, ['explain-0', 'no_stream', [randomUUID()], [BENCH_EVENT.type], [1], [DATA], ['{}'], false]);
    await client.query(`LOAD 'auto_explain'`);
    await client.query(`SET auto_explain.log_min_duration = 0; SET auto_explain.log_analyze = on; SET auto_explain.log_nested_statements = on;
      SET auto_explain.log_timing = on; SET auto_explain.log_buffers = on; SET auto_explain.log_wal = on; SET auto_explain.log_level = notice;
      SET client_min_messages = notice; SET track_functions = 'all'`);
    // Plans are cached per session after the first calls: show the 10th append, the steady state.
    for (let v = 0; v < 10; v++) {
      notices.length = 0;
      await client.query(APPEND_SQL, ['explain-0', String(v), [randomUUID()], [BENCH_EVENT.type], [1], [DATA], ['{}'], false]);
    }
    await client.end();
    for (const notice of notices) console.log(notice.replace(/^/gm, '  '), '\n');
  } finally {
    await db.drop();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
