/**
 * Reading: one stream by stream position, or the whole log in `(transaction_id,
 * global_position)` order, bounded so that no event of a still-open appender is ever skipped.
 */
import type { ClientBase, Pool } from 'pg';
import { checkLogPosition, compareLogPositions, LOG_START } from './cursor.ts';
import { checkStreamId } from './validate.ts';
import { InexactNumberError, InvalidEventDataError } from './errors.ts';
import { formatJsonPath, parseJsonExactly } from './jsonNumbers.ts';
import { ADVISORY_LOCK } from './schema.ts';
import type { LogPosition, ReadAllOptions, ReadAllResult, ReadStreamOptions, RecordedEvent, Upcasters } from './types.ts';

/** Largest bigint PostgreSQL stores: used as "after every event of that transaction". */
export const MAX_GLOBAL_POSITION = '9223372036854775807';
/** Default page size of `readAll`, in events. */
export const DEFAULT_READ_ALL_COUNT = 1000;

interface EventRow {
  event_id: string;
  stream_id: string;
  stream_position: string;
  global_position: string;
  transaction_id: string;
  type: string;
  schema_version: number;
  /** jsonb as text (`data::text`): parsed here, so that no number is rounded silently. */
  data: string;
  /** jsonb as text (`metadata::text`). */
  metadata: string;
  recorded_at: Date;
}

const COLUMNS = `event_id, stream_id, stream_position, global_position, transaction_id::text AS transaction_id,
  type, schema_version, data::text AS data, metadata::text AS metadata, recorded_at`;

/**
 * Turns a stored row into a `RecordedEvent`, upcasting its payload to the current version.
 * Upcasters are chained: `upcasters[type][v]` produces version v+1. `data` and `metadata`
 * arrive as jsonb text and are parsed exactly (eventstore/jsonNumbers.ts): a number no double
 * holds exactly (only another writer can have stored one) fails the read.
 * @throws InexactNumberError naming the event, the column, the number's path and its text
 */
export function toRecordedEvent(row: EventRow, upcasters: Upcasters | undefined): RecordedEvent {
  const event: RecordedEvent = {
    eventId: row.event_id,
    streamId: row.stream_id,
    streamPosition: Number(row.stream_position),
    globalPosition: row.global_position,
    transactionId: row.transaction_id,
    type: row.type,
    schemaVersion: row.schema_version,
    data: parseColumn(row, 'data'),
    metadata: parseColumn(row, 'metadata') as RecordedEvent['metadata'],
    recordedAt: row.recorded_at,
  };
  const chain = upcasters?.[row.type];
  if (chain) {
    for (let upcast = chain[event.schemaVersion]; upcast; upcast = chain[event.schemaVersion]) {
      event.data = upcast(event.data, event);
      event.schemaVersion += 1;
    }
  }
  return event;
}

function parseColumn(row: EventRow, column: 'data' | 'metadata'): unknown {
  const parsed = parseJsonExactly(row[column]);
  if (parsed.inexact) {
    throw new InexactNumberError(row.stream_id, Number(row.stream_position), row.event_id, column, formatJsonPath(parsed.inexact.path), parsed.inexact.text);
  }
  return parsed.value;
}

/**
 * Reads one stream, ordered by stream position whatever plan PostgreSQL picks.
 * @returns the events, `[]` when the stream does not exist
 * @throws InvalidStreamIdError, InvalidEventDataError (bad from/count); InexactNumberError for a
 *   stored number a double cannot hold exactly
 */
export async function readStream(
  db: Pool | ClientBase,
  upcasters: Upcasters | undefined,
  streamId: string,
  options: ReadStreamOptions = {},
): Promise<RecordedEvent[]> {
  checkStreamId(streamId);
  const backwards = options.direction === 'backwards';
  if (options.direction !== undefined && options.direction !== 'forwards' && !backwards) {
    throw new InvalidEventDataError('options.direction', 'must be "forwards" or "backwards"');
  }
  const from = options.from;
  if (from !== undefined && (!Number.isSafeInteger(from) || from < 0)) throw new InvalidEventDataError('options.from', 'must be an integer >= 0');
  const count = options.count;
  if (count !== undefined && (!Number.isSafeInteger(count) || count < 0)) throw new InvalidEventDataError('options.count', 'must be an integer >= 0');
  if (count === 0) return [];
  const params: unknown[] = [streamId];
  let where = 'stream_id = $1';
  if (from !== undefined) {
    params.push(from);
    where += backwards ? ` AND stream_position <= $2` : ` AND stream_position >= $2`;
  }
  let limit = '';
  if (count !== undefined) {
    params.push(count);
    limit = ` LIMIT $${params.length}`;
  }
  const { rows } = await db.query<EventRow>(
    `SELECT ${COLUMNS} FROM eventstore.events WHERE ${where} ORDER BY stream_position ${backwards ? 'DESC' : 'ASC'}${limit}`,
    params,
  );
  return rows.map((row) => toRecordedEvent(row, upcasters));
}

/**
 * Common table expressions defining `bound(xid xid8)`: the safe bound of a whole-log read.
 * Exported for read models that keep the `(transaction_id, global_position)` of the events
 * they were written from and page over them gap-safely (e.g. monitoring's event feed): the
 * rows must be written in the appending transaction (inline projections) and the read must
 * filter `transaction_id < (SELECT xid FROM bound)` in the same statement.
 *
 * It is computed in the same statement (hence the same
 * snapshot) as the read: the smallest of the snapshot's `xmax` and the xids of transactions
 * that were in progress at the snapshot and either hold the appenders lock now or have
 * finished since (their events are invisible to this snapshot). In-progress transactions that
 * never took the lock — idle sessions, other databases on the instance — do not bound it.
 * An appender takes the lock before it has an xid (see `eventstore.append_to_stream`), so an
 * appender in progress at the snapshot always holds it when the lock table is read.
 */
export const LOG_BOUND_CTE = `
snap AS MATERIALIZED (SELECT pg_current_snapshot() AS s),
locks AS MATERIALIZED (
  SELECT locktype, pid, database, classid, objid, objsubid, transactionid, mode, granted
    FROM pg_locks WHERE locktype IN ('advisory', 'transactionid') AND granted
),
appender_pids AS (
  SELECT pid FROM locks
   WHERE locktype = 'advisory'
     AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
     AND classid = ${ADVISORY_LOCK.namespace} AND objid = ${ADVISORY_LOCK.appenders} AND objsubid = 2
),
-- An appender's xid, two ways: its transactionid lock (visible to every role), and its
-- backend_xid (set at the very moment the xid enters snapshots, a little before that lock is
-- taken; visible for sessions of the reader's own role, which appenders of a service are).
appender_xids AS (
  SELECT transactionid FROM locks
   WHERE locktype = 'transactionid' AND mode = 'ExclusiveLock' AND pid IN (SELECT pid FROM appender_pids)
  UNION
  SELECT backend_xid FROM pg_stat_activity
   WHERE pid IN (SELECT pid FROM appender_pids) AND backend_xid IS NOT NULL
),
bound AS (
  SELECT LEAST(
           pg_snapshot_xmax(s),
           (SELECT min(x) FROM pg_snapshot_xip(s) AS x
             WHERE x::xid IN (SELECT transactionid FROM appender_xids)
                OR pg_xact_status(x) IS DISTINCT FROM 'in progress')
         ) AS xid
    FROM snap
)`;

/**
 * Reads the whole log after `after`, in `(transaction_id, global_position)` order, never past
 * a transaction that is still appending (DESIGN.md, "Global order without lost events").
 * With `streamId`, only that stream's events are returned (read through the
 * `(stream_id, stream_position)` index); the position still moves to the safe bound when the
 * page is not full, exactly as with `types`.
 * @throws InvalidEventDataError for a bad `after`, `count` or `types`; InvalidStreamIdError for a bad `streamId`;
 *   InexactNumberError for a stored number a double cannot hold exactly (the page is not returned)
 */
export async function readAll(
  db: Pool | ClientBase,
  upcasters: Upcasters | undefined,
  options: ReadAllOptions = {},
): Promise<ReadAllResult> {
  const after = options.after ?? LOG_START;
  checkLogPosition(after, 'options.after');
  const count = options.count ?? DEFAULT_READ_ALL_COUNT;
  if (!Number.isSafeInteger(count) || count < 1 || count > 100_000) throw new InvalidEventDataError('options.count', 'must be an integer from 1 to 100000');
  const types = options.types;
  if (types !== undefined && (!Array.isArray(types) || types.some((t) => typeof t !== 'string'))) {
    throw new InvalidEventDataError('options.types', 'must be an array of event type names');
  }
  const streamId = options.streamId;
  if (streamId !== undefined) checkStreamId(streamId);
  const params: unknown[] = [after.transactionId, after.globalPosition, count];
  let filter = '';
  if (types !== undefined) {
    params.push(types);
    filter += ` AND e.type = ANY ($${params.length}::text[])`;
  }
  if (streamId !== undefined) {
    params.push(streamId);
    filter += ` AND e.stream_id = $${params.length}`;
  }
  const { rows } = await db.query<EventRow & { bound: string | null }>(
    `WITH ${LOG_BOUND_CTE},
     page AS (
       SELECT e.event_id, e.stream_id, e.stream_position, e.global_position, e.transaction_id::text AS transaction_id,
              e.type, e.schema_version, e.data::text AS data, e.metadata::text AS metadata, e.recorded_at
         FROM eventstore.events e
        WHERE (e.transaction_id, e.global_position) > ($1::xid8, $2::bigint)
          AND e.transaction_id < (SELECT xid FROM bound)${filter}
        ORDER BY e.transaction_id, e.global_position
        LIMIT $3
     )
     SELECT page.*, (SELECT xid::text FROM bound) AS bound FROM (SELECT 1) one LEFT JOIN page ON true`,
    params,
  );
  const bound = rows[0]?.bound ?? null;
  const events = rows.filter((row) => row.event_id !== null).map((row) => toRecordedEvent(row, upcasters));
  const last = events.at(-1);
  const full = events.length === count;
  let position: LogPosition = last ? { transactionId: last.transactionId, globalPosition: last.globalPosition } : after;
  if (!full && bound !== null) {
    // Every transaction below the bound has finished (or never appends): nothing can still
    // appear there, so the reader may move to the end of the bound's predecessor.
    const safe = safePositionBelow(bound);
    if (compareLogPositions(safe, position) > 0) position = safe;
  }
  return { events, position, caughtUp: !full };
}

/**
 * The log's head now: every event at or before it is committed and visible, and no event at
 * or before it can still appear (DESIGN.md, "Global order without lost events"). It is the
 * `position` a `readAll` that read everything would return now, so a reader that starts
 * `after` it receives exactly the events committed later, including those of appenders still
 * in progress now. One statement, no read of the events table.
 */
export async function headPosition(db: Pool | ClientBase): Promise<LogPosition> {
  const { rows } = await db.query<{ bound: string }>(`WITH ${LOG_BOUND_CTE} SELECT xid::text AS bound FROM bound`);
  return safePositionBelow(rows[0]!.bound);
}

/** `(bound - 1, MAX_GLOBAL_POSITION)`: after every event of every transaction below `bound`. */
function safePositionBelow(bound: string): LogPosition {
  const xid = BigInt(bound);
  // xid8 values start at 3 (FirstNormalTransactionId); 0 only guards against the impossible.
  return xid > 0n ? { transactionId: (xid - 1n).toString(), globalPosition: MAX_GLOBAL_POSITION } : LOG_START;
}
