/**
 * Append: one SQL call (`eventstore.append_to_stream`) that checks the expected version,
 * detects idempotent retries and stores the batch atomically. DESIGN.md, "Append" and
 * "Idempotency".
 */
import type { ClientBase, Pool } from 'pg';
import {
  AppendNotFirstWriteError,
  EventIdConflictError,
  TransactionConflictError,
  WrongExpectedVersionError,
} from './errors.ts';
import { APPEND_SQLSTATE } from './schema.ts';
import type { AppendResult } from './types.ts';
import type { PreparedBatch } from './validate.ts';

interface AppendRow {
  next_expected_version: string;
  first_global_position: string;
  last_global_position: string;
  transaction_id: string;
  duplicate: boolean;
}

const APPEND_SQL = `SELECT next_expected_version, first_global_position, last_global_position, transaction_id, duplicate
  FROM eventstore.append_to_stream($1, $2, $3::uuid[], $4::text[], $5::integer[], $6::jsonb[], $7::jsonb[], $8)`;

/**
 * Runs the append on `db` (a pool for an autocommit append, or a client inside a transaction
 * opened by the store). Maps the function's SQLSTATEs to typed errors.
 * @throws WrongExpectedVersionError, EventIdConflictError, TransactionConflictError, AppendNotFirstWriteError
 */
export async function appendBatch(
  db: Pool | ClientBase,
  streamId: string,
  expected: string,
  batch: PreparedBatch,
): Promise<AppendResult> {
  const params = [
    streamId,
    expected,
    batch.eventIds,
    batch.types,
    batch.schemaVersions,
    batch.data,
    batch.metadata,
    batch.callerChoseIds,
  ];
  let row: AppendRow | undefined;
  try {
    // A named statement is parsed and planned once per connection (measured by bench:append:
    // the planning of the outer SELECT was a large share of a single-event append). Behind a
    // transaction-mode PgBouncer named statements need its prepared-statement support.
    ({ rows: [row] } = await db.query<AppendRow>({ name: 'flowgraph_eventstore_append', text: APPEND_SQL, values: params }));
  } catch (error) {
    throw mapAppendError(error, streamId, expected, batch);
  }
  if (!row) throw new Error('eventstore.append_to_stream returned no row');
  return {
    streamId,
    nextExpectedVersion: Number(row.next_expected_version),
    firstGlobalPosition: row.first_global_position,
    lastGlobalPosition: row.last_global_position,
    transactionId: row.transaction_id,
    position: { transactionId: row.transaction_id, globalPosition: row.last_global_position },
    duplicate: row.duplicate,
  };
}

/** `true` for the unique violation of two concurrent appends of the same event id. */
export function isConcurrentDuplicate(error: unknown): boolean {
  const e = error as { code?: string; constraint?: string };
  return e?.code === '23505' && e.constraint === 'events_event_id_key';
}

function mapAppendError(error: unknown, streamId: string, expected: string, batch: PreparedBatch): unknown {
  const e = error as { code?: string; detail?: string };
  switch (e?.code) {
    case APPEND_SQLSTATE.wrongExpectedVersion:
      return new WrongExpectedVersionError(streamId, expected, Number(e.detail ?? -1));
    case APPEND_SQLSTATE.eventIdConflict:
      return new EventIdConflictError(e.detail ?? batch.eventIds[0] ?? '?', 'the stored event has another stream, type or data');
    case APPEND_SQLSTATE.streamOrderConflict:
      return new TransactionConflictError(streamId);
    case APPEND_SQLSTATE.notFirstWrite:
      return new AppendNotFirstWriteError();
    default:
      return error;
  }
}
