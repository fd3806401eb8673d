/**
 * The read side of monitoring: traces, run timelines, the event feed and the counters, from
 * `observed_events` and `event_counters` (prisma/monitoring/schema.prisma). Simple lookups go
 * through Prisma Client; the feed (gap-safe bound) and timelines (recursive causation) are SQL
 * on the same pool.
 */
import type pg from 'pg';
import { decodeCursor, encodeCursor, LOG_BOUND_CTE, type LogPosition, type RecordedEvent } from '../../eventstore/index.ts';
import type { PrismaClient } from '../../prisma/monitoring/generated/client.ts';
import { BadUserInputError, InvalidCursorInputError } from './errors.ts';
import type { IntegrationEventObservedData } from './observe/events.ts';
import type { Json } from './observe/summarizePayload.ts';
import { orderCausally, type CausalEntry } from './trace/orderCausally.ts';
import { traceIdOf } from '../../observability/tracer.ts';

/** Default and largest `first` of `eventFeed`. */
export const FEED_DEFAULT_PAGE_SIZE = 50;
export const FEED_MAX_PAGE_SIZE = 500;
/** Default and largest number of entries returned by a trace or a timeline. */
export const TRACE_DEFAULT_ENTRIES = 1000;
export const TRACE_MAX_ENTRIES = 10_000;
/** Most events of one correlation id loaded to order a trace (the earliest observed ones). */
export const TRACE_MAX_LOADED = 20_000;
/** Longest filter value (source, type, correlation id), in characters. */
export const MAX_FILTER_CHARS = 500;

/** An observed event as served: the stored observation, with its times as Dates. */
export interface ObservedEventView extends Omit<IntegrationEventObservedData, 'occurredAt'> {
  occurredAt: Date;
  /** When monitoring committed its observation. */
  observedAt: Date;
  /** Position of its observation in monitoring's log (feed order and cursor). */
  position: LogPosition;
  /** `position.globalPosition` as a bigint (tie-breaker of the causal order). */
  seq: bigint;
}

/** A trace: every observed event of one correlation id, in causal order. */
export interface TraceView {
  correlationId: string;
  /** Events observed with this correlation id (all of them, even past `entries`). */
  eventCount: number;
  startedAt: Date;
  endedAt: Date;
  /** `endedAt − startedAt`, ms. */
  durationMs: number;
  /** Services that published events of the trace, sorted. */
  sources: string[];
  /**
   * The W3C trace id (32 hex digits) of the first event in causal order whose metadata carried a
   * valid `traceparent`: the distributed trace of the operation; null when none did (tracing off).
   */
  traceId: string | null;
  /** The first `first` entries in causal order. */
  entries: CausalEntry<ObservedEventView>[];
  /** True when `entries` does not hold every event (the `first` limit, or more than TRACE_MAX_LOADED events). */
  truncated: boolean;
}

/** An event of a run's timeline. */
export interface TimelineEntryView {
  event: ObservedEventView;
  /** `occurredAt − occurredAt of the timeline's first event`, ms. */
  sinceRunStartMs: number;
  /** `occurredAt − occurredAt of the previous entry`, ms; null for the first. */
  sincePreviousMs: number | null;
  /** `occurredAt − occurredAt of its cause`, ms, when the cause was observed; else null. */
  durationSinceCauseMs: number | null;
}

/** Options of `runTimeline`. */
export interface TimelineOptions {
  /** Only events that occurred at or before this time (the timeline as of an event: see timeline/timelineAsOf.ts). */
  until?: Date | null;
  /**
   * Leaves out the run's own events (source workflows, stream `run-<runId>`) past this stream
   * position: events of the same millisecond as the one a timeline is as of are ties by time,
   * but the run's stream orders its own. Null or absent: no cut.
   */
  runStreamPositionAtMost?: number | null;
}

/** One timeline of {@link ReadModel.runTimelines}: the arguments of `runTimeline`. */
export interface TimelineRequest {
  runId: string;
  first?: number | null;
  options?: TimelineOptions;
}

/** Filter of the event feed; absent or null fields do not filter. */
export interface FeedFilter {
  source?: string | null;
  type?: string | null;
  correlationId?: string | null;
}

/** A Relay page of the feed, oldest observation first. */
export interface FeedPage {
  edges: { cursor: string; node: ObservedEventView }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** Counters of one event type of one service. */
export interface TypeCounterView {
  source: string;
  type: string;
  count: number;
  firstOccurredAt: Date;
  lastOccurredAt: Date;
  lastObservedAt: Date;
}

/** Counters of one service. */
export interface ServiceCounterView {
  source: string;
  count: number;
  lastOccurredAt: Date;
  types: TypeCounterView[];
}

/** Every counter. */
export interface CountersView {
  total: number;
  services: ServiceCounterView[];
  types: TypeCounterView[];
}

/** Queries of the monitoring read models. */
export interface ReadModel {
  /**
   * The trace of `correlationId`, or null when no event carries it.
   * @param first entries returned, 1..10000, default 1000
   * @throws BadUserInputError `first` out of range or an over-long id
   */
  trace(correlationId: string, first?: number | null): Promise<TraceView | null>;
  /**
   * The timeline of a run: events whose payload names `runId`, and every event they caused,
   * transitively (e.g. content's chunk events under the INGEST step), by `occurredAt` then
   * observation order. `[]` for an unknown run.
   * @param first entries returned, 1..10000, default 1000
   * @throws BadUserInputError `first` out of range
   */
  runTimeline(runId: string, first?: number | null, options?: TimelineOptions): Promise<TimelineEntryView[]>;
  /**
   * `runTimeline` of each request, in one SQL statement: its timeline, or the BadUserInputError
   * `runTimeline` would throw for it (such a request is not queried), in request order.
   */
  runTimelines(requests: readonly TimelineRequest[]): Promise<(TimelineEntryView[] | Error)[]>;
  /**
   * When the first observed event of stream `run-<runId>` (source workflows) at stream position
   * `streamPosition` or later occurred, or null while none is observed. Per-stream order makes it
   * a proof that every published event of the run up to `streamPosition` is observed.
   */
  observedRunEvent(runId: string, streamPosition: number): Promise<{ streamPosition: number; occurredAt: Date } | null>;
  /**
   * A page of observed events in observation order (monitoring's log order), never past an
   * observation still being committed, so paging with `endCursor` misses nothing and repeats nothing.
   * @param first 0..500, default 50
   * @param after an `endCursor` of a previous page
   * @throws BadUserInputError `first` out of range, a filter value over 500 characters, or a cursor this server did not make (`details.field = 'after'`)
   */
  eventFeed(filter: FeedFilter, first?: number | null, after?: string | null): Promise<FeedPage>;
  /** Counters per (source, type), per source, and the total; optionally of one source only. */
  counters(source?: string | null): Promise<CountersView>;
}

interface ObservedRow {
  source: string;
  event_id: string;
  type: string;
  schema_version: number;
  stream_id: string;
  stream_position: number;
  correlation_id: string | null;
  causation_id: string | null;
  actor: string | null;
  run_id: string | null;
  occurred_at: Date;
  observed_at: Date;
  summary: Json;
  log_transaction_id: string;
  log_position: string;
  traceparent: string | null;
}

const COLUMNS = `o.source, o.event_id, o.type, o.schema_version, o.stream_id, o.stream_position, o.correlation_id, o.causation_id,
  o.actor, o.run_id, o.occurred_at, o.observed_at, o.summary, o.log_transaction_id::text AS log_transaction_id, o.log_position::text AS log_position, o.traceparent`;

function toView(row: ObservedRow): ObservedEventView {
  return {
    source: row.source,
    eventId: row.event_id,
    type: row.type,
    schemaVersion: row.schema_version,
    streamId: row.stream_id,
    streamPosition: row.stream_position,
    correlationId: row.correlation_id,
    causationId: row.causation_id,
    actor: row.actor,
    runId: row.run_id,
    occurredAt: row.occurred_at,
    observedAt: row.observed_at,
    summary: row.summary,
    traceparent: row.traceparent,
    position: { transactionId: row.log_transaction_id, globalPosition: row.log_position },
    seq: BigInt(row.log_position),
  };
}

/**
 * The view of an observation from its stored event (what `observed_events` holds for it: the
 * projection writes `observed_at` = the event's recordedAt and the event's log position), for
 * the `eventFeed` subscription, which serves events as they are appended.
 */
export function observedEventViewOf(recorded: RecordedEvent): ObservedEventView {
  const d = recorded.data as IntegrationEventObservedData;
  return {
    source: d.source,
    eventId: d.eventId,
    type: d.type,
    schemaVersion: d.schemaVersion,
    streamId: d.streamId,
    streamPosition: d.streamPosition,
    correlationId: d.correlationId,
    causationId: d.causationId,
    actor: d.actor,
    runId: d.runId,
    occurredAt: new Date(d.occurredAt),
    observedAt: recorded.recordedAt,
    summary: d.summary,
    // As the projection stores it (observed_events.traceparent): null for observations recorded before it was kept.
    traceparent: d.traceparent ?? null,
    position: { transactionId: recorded.transactionId, globalPosition: recorded.globalPosition },
    seq: BigInt(recorded.globalPosition),
  };
}

/**
 * Runs `work` on a pooled client in a read-only transaction with `jit = off` (SET LOCAL: nothing
 * outlives the transaction, so it is safe behind a transaction-mode PgBouncer too).
 *
 * Why: the timelines' recursive statement runs with a generic plan whose estimates (a recursive
 * CTE is guessed at ten times its start) pass PostgreSQL's `jit_above_cost`, so every execution
 * compiled itself with LLVM first: EXPLAIN ANALYZE of one 20-run `_entities` batch on
 * `bench:gateway --peers` data spent 506 ms of its 673 ms in JIT (generation, inlining,
 * optimisation, emission) for 93 rows. The statement's own work is milliseconds.
 * @throws whatever `work` or the database throws (the transaction is rolled back)
 */
async function withoutJit<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: Error | undefined;
  try {
    // One round trip for both (a simple-protocol query may hold several statements).
    await client.query('BEGIN READ ONLY; SET LOCAL jit = off');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch((rollbackError: unknown) => {
      // The connection itself failed: do not hand it out again.
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    });
    throw error;
  } finally {
    client.release(broken);
  }
}

/** Creates the read model on the monitoring pool and its Prisma client (the caller owns both). */
export function createReadModel(pool: pg.Pool, prisma: PrismaClient): ReadModel {
  const readModel: ReadModel = {
    async trace(correlationId, first) {
      const limit = checkedCount(first, TRACE_DEFAULT_ENTRIES, 1, TRACE_MAX_ENTRIES, 'first');
      checkedText(correlationId, 'correlationId');
      const { rows } = await pool.query<ObservedRow>(
        `SELECT ${COLUMNS} FROM observed_events o WHERE o.correlation_id = $1
          ORDER BY o.log_transaction_id, o.log_position LIMIT $2`,
        [correlationId, TRACE_MAX_LOADED],
      );
      if (rows.length === 0) return null;
      const total = rows.length < TRACE_MAX_LOADED ? rows.length : await prisma.observedEvent.count({ where: { correlationId } });
      const events = rows.map(toView);
      const ordered = orderCausally(events);
      const times = events.map((e) => e.occurredAt.getTime());
      const startedAt = new Date(times.reduce((a, b) => Math.min(a, b)));
      const endedAt = new Date(times.reduce((a, b) => Math.max(a, b)));
      return {
        correlationId,
        eventCount: total,
        startedAt,
        endedAt,
        durationMs: endedAt.getTime() - startedAt.getTime(),
        sources: [...new Set(events.map((e) => e.source))].sort(),
        traceId: ordered.map((entry) => traceIdOf(entry.event.traceparent)).find((id) => id !== null) ?? null,
        entries: ordered.slice(0, limit),
        truncated: total > limit,
      };
    },

    async runTimeline(runId, first, options = {}) {
      const [timeline] = await readModel.runTimelines([{ runId, first, options }]);
      if (timeline instanceof Error) throw timeline;
      return timeline!;
    },

    async runTimelines(requests) {
      const answers: (TimelineEntryView[] | Error)[] = new Array(requests.length);
      const valid: { index: number; runId: string; limit: number; until: Date | null; atMost: number | null }[] = [];
      requests.forEach(({ runId, first, options = {} }, index) => {
        try {
          const limit = checkedCount(first, TRACE_DEFAULT_ENTRIES, 1, TRACE_MAX_ENTRIES, 'first');
          checkedText(runId, 'runId');
          valid.push({ index, runId, limit, until: options.until ?? null, atMost: options.runStreamPositionAtMost ?? null });
        } catch (error) {
          answers[index] = error as Error;
        }
      });
      if (valid.length === 0) return answers;
      // One statement for every timeline asked: the causation closure of every run at once (a
      // row per run and event: an event caused by two runs' events is in both), then each
      // request's cut (until, own stream position) and its first `lim` entries in timeline order.
      const { rows } = await withoutJit(pool, (client) => client.query<ObservedRow & { request: number; cause_occurred_at: Date | null }>({
        // A named statement: parsed and planned once per connection (its plan does not depend on the arrays' values).
        name: 'monitoring.runTimelines',
        text: `WITH RECURSIVE request AS (
           SELECT * FROM unnest($1::text[], $2::int[], $3::timestamptz[], $4::int[]) WITH ORDINALITY AS r(run_id, lim, until, at_most, request)
         ), in_run AS (
           -- Each event of the closure carries what the cut and the order need, so that only the
           -- entries kept are read again whole (a closure has hundreds of events per run).
           SELECT run_id, source, event_id, occurred_at, log_transaction_id, log_position, stream_id, stream_position
             FROM observed_events WHERE run_id = ANY($1::text[])
           UNION
           -- An index lookup (causation_id) per event found, never a scan of the table: OFFSET 0 keeps
           -- the planner from flattening it into a merge join over every observed event. The run
           -- test is a filter on the rows found (coalesce), not a second index: "run_id IS NULL"
           -- as an index condition read every event without a run, once per match.
           SELECT r.run_id, o.source, o.event_id, o.occurred_at, o.log_transaction_id, o.log_position, o.stream_id, o.stream_position
             FROM in_run r CROSS JOIN LATERAL (
             SELECT o.source, o.event_id, o.occurred_at, o.log_transaction_id, o.log_position, o.stream_id, o.stream_position FROM observed_events o
              WHERE o.causation_id = r.event_id AND coalesce(o.run_id, r.run_id) = r.run_id OFFSET 0) o
         ), cut AS (
           SELECT q.request, q.lim, i.source, i.event_id,
                  row_number() OVER (PARTITION BY q.request ORDER BY i.occurred_at, i.log_transaction_id, i.log_position) AS rank
             FROM request q JOIN in_run i ON i.run_id = q.run_id
            WHERE (q.until IS NULL OR i.occurred_at <= q.until)
              AND (q.at_most IS NULL OR NOT (i.source = 'workflows' AND i.stream_id = 'run-' || q.run_id AND i.stream_position > q.at_most))
         )
         SELECT c.request::int AS request, ${COLUMNS},
                (SELECT x.occurred_at FROM observed_events x WHERE x.event_id = o.causation_id LIMIT 1) AS cause_occurred_at
           FROM cut c JOIN observed_events o ON o.source = c.source AND o.event_id = c.event_id
          WHERE c.rank <= c.lim
          ORDER BY c.request, c.rank`,
        values: [valid.map((v) => v.runId), valid.map((v) => v.limit), valid.map((v) => v.until), valid.map((v) => v.atMost)],
      }));
      const byRequest = valid.map(() => [] as (ObservedRow & { cause_occurred_at: Date | null })[]);
      for (const row of rows) byRequest[row.request - 1]!.push(row);
      valid.forEach((v, i) => {
        const timeline = byRequest[i]!;
        const start = timeline[0]?.occurred_at.getTime() ?? 0;
        answers[v.index] = timeline.map((row, j) => ({
          event: toView(row),
          sinceRunStartMs: row.occurred_at.getTime() - start,
          sincePreviousMs: j === 0 ? null : row.occurred_at.getTime() - timeline[j - 1]!.occurred_at.getTime(),
          durationSinceCauseMs: row.cause_occurred_at ? row.occurred_at.getTime() - row.cause_occurred_at.getTime() : null,
        }));
      });
      return answers;
    },

    async observedRunEvent(runId, streamPosition) {
      const { rows } = await pool.query<{ stream_position: number; occurred_at: Date }>(
        `SELECT stream_position, occurred_at FROM observed_events
          WHERE run_id = $1 AND source = 'workflows' AND stream_id = $2 AND stream_position >= $3
          ORDER BY stream_position LIMIT 1`,
        [runId, `run-${runId}`, streamPosition],
      );
      return rows[0] ? { streamPosition: rows[0].stream_position, occurredAt: rows[0].occurred_at } : null;
    },

    async eventFeed(filter, first, after) {
      const take = checkedCount(first, FEED_DEFAULT_PAGE_SIZE, 0, FEED_MAX_PAGE_SIZE, 'first');
      const source = filter.source ?? null;
      const type = filter.type ?? null;
      const correlationId = filter.correlationId ?? null;
      for (const [field, value] of [['filter.source', source], ['filter.type', type], ['filter.correlationId', correlationId]] as const) {
        if (value !== null) checkedText(value, field);
      }
      const from = after === null || after === undefined ? { transactionId: '0', globalPosition: '0' } : decodeAfter(after);
      const { rows } = await pool.query<ObservedRow>(
        // Gap-safe (the event store's rule): observations are written by an inline projection,
        // so rows of a transaction still appending sit at or above the bound.
        `WITH ${LOG_BOUND_CTE}
         SELECT ${COLUMNS} FROM observed_events o
          WHERE (o.log_transaction_id, o.log_position) > ($1::bigint, $2::bigint)
            AND o.log_transaction_id < (SELECT xid::text::bigint FROM bound)
            AND ($3::text IS NULL OR o.source = $3)
            AND ($4::text IS NULL OR o.type = $4)
            AND ($5::text IS NULL OR o.correlation_id = $5)
          ORDER BY o.log_transaction_id, o.log_position
          LIMIT $6`,
        [from.transactionId, from.globalPosition, source, type, correlationId, take + 1],
      );
      const page = rows.slice(0, take).map(toView);
      const edges = page.map((node) => ({ cursor: encodeCursor(node.position), node }));
      return { edges, pageInfo: { hasNextPage: rows.length > take, endCursor: edges.at(-1)?.cursor ?? (after ?? null) } };
    },

    async counters(source) {
      if (source !== null && source !== undefined) checkedText(source, 'source');
      const rows = await prisma.eventCounter.findMany({
        where: source ? { source } : {},
        orderBy: [{ source: 'asc' }, { type: 'asc' }],
      });
      const types: TypeCounterView[] = rows.map((r) => ({
        source: r.source,
        type: r.type,
        count: Number(r.count),
        firstOccurredAt: r.firstOccurredAt,
        lastOccurredAt: r.lastOccurredAt,
        lastObservedAt: r.lastObservedAt,
      }));
      const bySource = new Map<string, ServiceCounterView>();
      for (const t of types) {
        const s = bySource.get(t.source);
        if (!s) bySource.set(t.source, { source: t.source, count: t.count, lastOccurredAt: t.lastOccurredAt, types: [t] });
        else {
          s.count += t.count;
          if (t.lastOccurredAt > s.lastOccurredAt) s.lastOccurredAt = t.lastOccurredAt;
          s.types.push(t);
        }
      }
      const services = [...bySource.values()];
      return { total: services.reduce((n, s) => n + s.count, 0), services, types };
    },
  };
  return readModel;
}

function decodeAfter(after: string): LogPosition {
  try {
    const position = decodeCursor(after);
    // Positions are stored as bigint: a larger transaction id cannot come from this server.
    if (BigInt(position.transactionId) > 9223372036854775807n) throw new Error('transaction id out of range');
    return position;
  } catch {
    throw new InvalidCursorInputError('Invalid cursor: pass back an endCursor the server returned', { field: 'after' });
  }
}

function checkedCount(value: number | null | undefined, fallback: number, min: number, max: number, field: string): number {
  if (value === null || value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BadUserInputError(`${field} must be an integer in ${min}..${max}, got ${value}`, { field });
  }
  return value;
}

function checkedText(value: string, field: string): void {
  if (value.length === 0 || value.length > MAX_FILTER_CHARS) {
    throw new BadUserInputError(`${field} must have 1..${MAX_FILTER_CHARS} characters`, { field });
  }
}
