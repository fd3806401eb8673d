/**
 * Inline projection of `IntegrationEventObserved` into `observed_events` and `event_counters`
 * (prisma/monitoring/schema.prisma). Runs in the transaction that appends the observation and
 * the inbox row, so the read models hold exactly the events the inbox accepted. Rebuildable
 * from monitoring's log (`reset` + replay).
 */
import type { ClientBase } from 'pg';
import type { Projection, RecordedEvent } from '../../../eventstore/index.ts';
import { MONITORING_EVENT_TYPES, type IntegrationEventObservedData } from '../observe/events.ts';

/** Projection `monitoring.observedEvents`. */
export const observedEventsProjection: Projection = {
  name: 'monitoring.observedEvents',
  handles: MONITORING_EVENT_TYPES,
  async apply(events, client) {
    for (const event of events) await applyOne(event, client);
  },
  async reset(client) {
    await client.query('TRUNCATE observed_events, event_counters');
  },
};

async function applyOne(recorded: RecordedEvent, client: ClientBase): Promise<void> {
  const d = recorded.data as IntegrationEventObservedData;
  const { rowCount } = await client.query(
    `INSERT INTO observed_events (source, event_id, type, schema_version, stream_id, stream_position, correlation_id, causation_id,
                                  actor, run_id, occurred_at, observed_at, summary, log_transaction_id, log_position, traceparent)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::timestamptz, $12, $13::jsonb, $14::bigint, $15::bigint, $16)
     ON CONFLICT (source, event_id) DO NOTHING`,
    [
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
    ],
  );
  // Only a new observation counts (the inbox already prevents a second one; this keeps a replay honest too).
  if (rowCount !== 1) return;
  await client.query(
    `INSERT INTO event_counters (source, type, count, first_occurred_at, last_occurred_at, last_observed_at)
     VALUES ($1, $2, 1, $3::timestamptz, $3::timestamptz, $4)
     ON CONFLICT (source, type) DO UPDATE SET
       count = event_counters.count + 1,
       first_occurred_at = LEAST(event_counters.first_occurred_at, EXCLUDED.first_occurred_at),
       last_occurred_at = GREATEST(event_counters.last_occurred_at, EXCLUDED.last_occurred_at),
       last_observed_at = GREATEST(event_counters.last_observed_at, EXCLUDED.last_observed_at)`,
    [d.source, d.type, d.occurredAt, recorded.recordedAt],
  );
}
