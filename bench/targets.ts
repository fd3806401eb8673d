/**
 * The three implementations the benchmark compares, behind one interface: flowgraph's event
 * store, Emmett's PostgreSQL event store (the peer), and plain prepared `INSERT`s of rows as wide
 * as flowgraph's `eventstore.events` row, under the same unique indexes (the physical reference).
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import type { Event } from '@event-driven-io/emmett';
import { createEventStore, migrateEventStore, type NewEvent } from '../eventstore/index.ts';
import type { TargetName } from './config.ts';
import { createServiceMetrics } from '../observability/serviceMetrics.ts';
import { setTracingOn } from '../observability/tracer.ts';

/** The payload every implementation appends, per event (same type and data everywhere). */
export const BENCH_EVENT = { type: 'ItemAdded', data: { sku: 'abc-123', qty: 2, note: 'x'.repeat(100) } } as const;

/** An implementation opened on one database for one cell. Writer `w` owns stream `bench-<w>`. */
export interface TargetSession {
  /**
   * Appends one batch of `batchSize` events to writer `w`'s stream with the exact expected
   * version (its last version; "no stream" for its first append).
   * @throws whatever the implementation throws (any error aborts the run)
   */
  append(writer: number): Promise<void>;
  /**
   * Checks what is stored: each writer's stream holds exactly `appends[w] * batchSize` events
   * and its version says so.
   * @returns `undefined` when correct, else a description of the first mismatch
   */
  verify(appends: readonly number[]): Promise<string | undefined>;
  /** Closes the implementation and its pool. Idempotent. */
  close(): Promise<void>;
  /**
   * Called before each of the target's runs (warm-up and slices) and after it: where a target
   * switches process-wide state on for its own runs only (`flowgraph-traced`: tracing).
   */
  enter?(): void;
  /** Resolves once the target's background work of the run is done (its time counts in the run). */
  leave?(): Promise<void>;
}

/** Options of `openTarget`. */
export interface OpenTargetOptions {
  /** Connection string of the cell's fresh database. */
  url: string;
  writers: number;
  /** Events per append (1 for the single-event workload). */
  batchSize: number;
  /** Pool size, the same for every implementation (writers + 2). */
  poolMax: number;
}

/**
 * Emmett's driver (dumbo) replaces pg's global type parsers (int8 → BigInt, json(b) → its own
 * parser) the first time it makes a pool. flowgraph and the plain reference must run with
 * pg's defaults, as in production, whatever ran before them: their pools carry a snapshot of
 * the defaults taken when this module loads (before any Emmett store exists).
 */
const DEFAULT_PARSERS = new Map([20, 114, 3802, 1016].map((oid) => [oid, pg.types.getTypeParser(oid, 'text')]));
const defaultTypes = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    (format ?? 'text') === 'text' && DEFAULT_PARSERS.has(oid)
      ? DEFAULT_PARSERS.get(oid)
      : pg.types.getTypeParser(oid, format ?? 'text')) as typeof pg.types.getTypeParser,
};

function newPool(url: string, max: number, withDefaultTypes: boolean): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max, ...(withDefaultTypes ? { types: defaultTypes } : {}) });
  pool.on('error', () => {});
  return pool;
}

const streamOf = (writer: number) => `bench-${writer}`;

/** Opens `name` on a fresh database; schema creation happens here, before any timing. */
export async function openTarget(name: TargetName, options: OpenTargetOptions): Promise<TargetSession> {
  switch (name) {
    case 'flowgraph':
      return openFlowgraph(options, 'off');
    case 'flowgraph-notify-each':
      return openFlowgraph(options, 'off', 0);
    case 'flowgraph-metrics':
      return openFlowgraph(options, 'metrics');
    case 'flowgraph-traced':
      return openFlowgraph(options, 'traced');
    case 'emmett':
      return openEmmett(options);
    case 'plain':
      return openPlain(options);
  }
}

function onceClose(close: () => Promise<void>): () => Promise<void> {
  let closing: Promise<void> | undefined;
  return () => (closing ??= close());
}

/**
 * `off`: the store alone (what `FLOWGRAPH_METRICS=off` and no OTLP endpoint run). `metrics`: with a
 * service's metrics (`createServiceMetrics`: append counters and histogram, as the services run
 * it). `traced`: metrics, and tracing on during its own runs (a provider registered once by
 * `bench/append.ts` with a BatchSpanProcessor exporting OTLP/HTTP to a sink process;
 * `setTracingOn` is true only inside this target's runs, so the targets interleaved with it pay
 * nothing): each append records an `eventstore.append` span and stores its traceparent in the
 * events' metadata. `notifyIntervalMs` 0 (`flowgraph-notify-each`): a wake-up hint sent after each
 * commit as soon as the previous one returned, as before issue 13 coalesced them per 5 ms.
 */
async function openFlowgraph({ url, writers, batchSize, poolMax }: OpenTargetOptions, mode: 'off' | 'metrics' | 'traced', notifyIntervalMs?: number): Promise<TargetSession> {
  const pool = newPool(url, poolMax, true);
  await migrateEventStore(pool);
  const metrics = mode === 'off' ? undefined : createServiceMetrics({ service: 'bench', pool });
  const store = createEventStore({ pool, ...(metrics ? { metrics: metrics.store } : {}), ...(notifyIntervalMs !== undefined ? { notifyIntervalMs } : {}) });
  const events: NewEvent[] = Array.from({ length: batchSize }, () => ({ type: BENCH_EVENT.type, data: BENCH_EVENT.data }));
  const versions: number[] = Array.from({ length: writers }, () => -1);
  return {
    async append(w) {
      const last = versions[w]!;
      const result = await store.appendToStream(streamOf(w), events, { expectedVersion: last === -1 ? 'no_stream' : last });
      versions[w] = result.nextExpectedVersion;
    },
    async verify(appends) {
      for (let w = 0; w < writers; w++) {
        const expected = appends[w]! * batchSize;
        const [last] = await store.readStream(streamOf(w), { direction: 'backwards', count: 1 });
        const { rows } = await pool.query<{ n: string; positions: string }>(
          `SELECT count(*) AS n, count(DISTINCT stream_position) AS positions FROM eventstore.events WHERE stream_id = $1`,
          [streamOf(w)],
        );
        const stored = Number(rows[0]?.n);
        const positions = Number(rows[0]?.positions);
        if (stored !== expected || positions !== expected || (last?.streamPosition ?? -1) !== expected - 1 || versions[w] !== expected - 1) {
          return `${streamOf(w)}: expected ${expected} events (version ${expected - 1}), found ${stored} rows at ${positions} positions, last position ${last?.streamPosition}, client version ${versions[w]}`;
        }
      }
      return undefined;
    },
    close: onceClose(async () => {
      await store.close();
      await pool.end();
    }),
    ...(mode === 'traced'
      ? {
          enter: () => {
            if (!tracingRegistered) throw new Error('flowgraph-traced needs the tracer provider of bench/append.ts');
            setTracingOn(true);
          },
          leave: async () => {
            setTracingOn(false);
            await flushSpans();
          },
        }
      : {}),
  };
}

let tracingRegistered = false;
let flushSpans: () => Promise<void> = async () => {};
/**
 * Told by `bench/append.ts` once its tracer provider is registered: tracing then stays off outside
 * `flowgraph-traced` runs, and `flush` (the provider's `forceFlush`: export every queued span)
 * ends each of them.
 */
export function tracingProviderRegistered(flush: () => Promise<void>): void {
  tracingRegistered = true;
  flushSpans = flush;
  setTracingOn(false);
}

type ItemAdded = Event<'ItemAdded', { sku: string; qty: number; note: string }>;

async function openEmmett({ url, writers, batchSize, poolMax }: OpenTargetOptions): Promise<TargetSession> {
  // Our own pg.Pool so that the pool size is the same as the others'; Emmett borrows it.
  const pool = newPool(url, poolMax, false);
  const store = getPostgreSQLEventStore(url, { connectionOptions: { pool } });
  await store.schema.migrate();
  const events: ItemAdded[] = Array.from({ length: batchSize }, () => ({ type: 'ItemAdded', data: { ...BENCH_EVENT.data } }));
  // Emmett counts versions from 1; 0n means "the stream does not exist yet".
  const versions: bigint[] = Array.from({ length: writers }, () => 0n);
  return {
    async append(w) {
      const result = await store.appendToStream<ItemAdded>(streamOf(w), events, { expectedStreamVersion: versions[w]! });
      versions[w] = result.nextExpectedStreamVersion;
    },
    async verify(appends) {
      for (let w = 0; w < writers; w++) {
        const expected = appends[w]! * batchSize;
        const { rows } = await pool.query<{ n: string; position: string | null }>(
          `SELECT (SELECT count(*) FROM emt_messages WHERE stream_id = $1)::text AS n,
                  (SELECT stream_position FROM emt_streams WHERE stream_id = $1)::text AS position`,
          [streamOf(w)],
        );
        const stored = Number(rows[0]?.n);
        const position = Number(rows[0]?.position ?? 0);
        if (stored !== expected || position !== expected || versions[w] !== BigInt(expected)) {
          return `${streamOf(w)}: expected ${expected} events, found ${stored} rows, emt_streams.stream_position ${position}, client version ${versions[w]}`;
        }
      }
      return undefined;
    },
    close: onceClose(async () => {
      await store.close();
      await pool.end();
    }),
  };
}

/**
 * Same columns and types as `eventstore.events` (xid8 aside), identity PK, and the same unique
 * indexes (eventstore/schema.ts: `events_event_id_key`, `events_stream_position_key`), so the
 * reference pays for the uniqueness every event store row needs. Not copied: the log-order index
 * on (transaction_id, global_position), whose column is the event store's own.
 */
const PLAIN_TABLE = `CREATE TABLE plain_events (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id         uuid NOT NULL,
  stream_id        text NOT NULL,
  stream_position  bigint NOT NULL,
  type             text NOT NULL,
  schema_version   integer NOT NULL,
  data             jsonb NOT NULL,
  metadata         jsonb NOT NULL,
  recorded_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT plain_events_event_id_key UNIQUE (event_id),
  CONSTRAINT plain_events_stream_position_key UNIQUE (stream_id, stream_position)
)`;

async function openPlain({ url, writers, batchSize, poolMax }: OpenTargetOptions): Promise<TargetSession> {
  const pool = newPool(url, poolMax, true);
  await pool.query(PLAIN_TABLE);
  // Prepared (a named statement: parsed and planned once per connection). One event: one row of
  // VALUES; a batch: the same rows as arrays through unnest, 7 parameters whatever its size.
  const columns = 'event_id, stream_id, stream_position, type, schema_version, data, metadata';
  const statement =
    batchSize === 1
      ? { name: 'plain-append-1', text: `INSERT INTO plain_events (${columns}) VALUES ($1, $2, $3, $4, $5, $6, $7)` }
      : {
          name: 'plain-append-batch',
          text: `INSERT INTO plain_events (${columns})
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[], $5::int[], $6::jsonb[], $7::jsonb[])`,
        };
  const data = JSON.stringify(BENCH_EVENT.data);
  const next: number[] = Array.from({ length: writers }, () => 0);
  return {
    async append(w) {
      const first = next[w]!;
      if (batchSize === 1) {
        await pool.query({ ...statement, values: [randomUUID(), streamOf(w), first, BENCH_EVENT.type, 1, data, '{}'] });
      } else {
        const positions = Array.from({ length: batchSize }, (_, i) => first + i);
        await pool.query({
          ...statement,
          values: [
            positions.map(() => randomUUID()),
            positions.map(() => streamOf(w)),
            positions,
            positions.map(() => BENCH_EVENT.type),
            positions.map(() => 1),
            positions.map(() => data),
            positions.map(() => '{}'),
          ],
        });
      }
      next[w] = first + batchSize;
    },
    async verify(appends) {
      const { rows } = await pool.query<{ stream_id: string; n: string; last: string }>(
        'SELECT stream_id, count(*) AS n, max(stream_position) AS last FROM plain_events GROUP BY stream_id',
      );
      for (let w = 0; w < writers; w++) {
        const expected = appends[w]! * batchSize;
        const row = rows.find((r) => r.stream_id === streamOf(w));
        if (Number(row?.n ?? 0) !== expected || Number(row?.last ?? -1) !== expected - 1) {
          return `${streamOf(w)}: expected ${expected} rows, found ${row?.n ?? 0} (last position ${row?.last})`;
        }
      }
      return undefined;
    },
    close: onceClose(() => pool.end()),
  };
}
