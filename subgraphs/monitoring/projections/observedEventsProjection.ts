/**
 * Inline projection of `IntegrationEventObserved` into `observed_events` and `event_counters`
 * (prisma/monitoring/schema.prisma). Runs in the transaction that appends the observation and
 * the inbox row, so the read models hold exactly the events the inbox accepted. Rebuildable
 * from monitoring's log (`reset` + replay).
 *
 * One append's events (a batch of a book's chunk results can hold hundreds) are written by one
 * statement: the rows are inserted from `unnest` of one array per column, and the counters are
 * upserted from the rows that insert actually wrote, grouped by `(source, type)`.
 */
import type { ClientBase } from 'pg';
import type { Projection, RecordedEvent } from '../../../eventstore/index.ts';
import { MONITORING_EVENT_TYPES, type IntegrationEventObservedData } from '../observe/events.ts';

/** Projection `monitoring.observedEvents`. */
export const observedEventsProjection: Projection = {
  name: 'monitoring.observedEvents',
  handles: MONITORING_EVENT_TYPES,
  async apply(events, client) {
    if (events.length > 0) await applyBatch(events, client);
  },
  async reset(client) {
    await client.query('TRUNCATE observed_events, event_counters');
  },
};

/**
 * Inserts the observations (`ON CONFLICT (source, event_id) DO NOTHING`: the inbox already
 * prevents a second one, this keeps a replay honest too) and counts only the rows inserted.
 * The counters' upsert sees one row per `(source, type)`, so a batch never updates a counter
 * twice in one statement.
 */
async function applyBatch(events: readonly RecordedEvent[], client: ClientBase): Promise<void> {
  const cols: unknown[][] = Array.from({ length: 16 }, () => []);
  for (const recorded of events) {
    const d = recorded.data as IntegrationEventObservedData;
    const row = [
      d.source,
      d.eventId,
      d.type,
      d.schemaVersion,
      d.streamId,
      d.streamPosition,
      d.correlationId,
      d.causationId,
      d.actor,
      d.runId,
      d.occurredAt,
      recorded.recordedAt,
      JSON.stringify(d.summary),
      recorded.transactionId,
      recorded.globalPosition,
      d.traceparent ?? null,
    ];
    for (let i = 0; i < row.length; i++) cols[i]!.push(row[i]);
  }
  await client.query(
    `WITH inserted AS (
       INSERT INTO observed_events (source, event_id, type, schema_version, stream_id, stream_position, correlation_id, causation_id,
                                    actor, run_id, occurred_at, observed_at, summary, log_transaction_id, log_position, traceparent)
       SELECT source, event_id, type, schema_version, stream_id, stream_position, correlation_id, causation_id,
              actor, run_id, occurred_at, observed_at, summary::jsonb, log_transaction_id, log_position, traceparent
         FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[], $7::text[], $8::text[],
                     $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[], $13::text[], $14::bigint[], $15::bigint[], $16::text[])
              AS r(source, event_id, type, schema_version, stream_id, stream_position, correlation_id, causation_id,
                   actor, run_id, occurred_at, observed_at, summary, log_transaction_id, log_position, traceparent)
       ON CONFLICT (source, event_id) DO NOTHING
       RETURNING source, type, occurred_at, observed_at
     )
     INSERT INTO event_counters (source, type, count, first_occurred_at, last_occurred_at, last_observed_at)
     SELECT source, type, count(*), min(occurred_at), max(occurred_at), max(observed_at) FROM inserted GROUP BY source, type
     ON CONFLICT (source, type) DO UPDATE SET
       count = event_counters.count + EXCLUDED.count,
       first_occurred_at = LEAST(event_counters.first_occurred_at, EXCLUDED.first_occurred_at),
       last_occurred_at = GREATEST(event_counters.last_occurred_at, EXCLUDED.last_occurred_at),
       last_observed_at = GREATEST(event_counters.last_observed_at, EXCLUDED.last_observed_at)`,
    cols,
  );
}
