/**
 * The integration consumer's handler: records one integration event of another service as an
 * `IntegrationEventObserved` event in monitoring's store, with the inbox row `(source,
 * event_id)` in the same transaction (`handleOnce`), so a redelivery has no second effect. The
 * inline projection writes the read models in that transaction too.
 */
import { z } from 'zod';
import { handleBatchOnce, handleOnce, type EventStore, type IntegrationEvent, type Logger } from '../../../eventstore/index.ts';
import {
  INTEGRATION_EVENT_OBSERVED,
  MONITORING_ACTOR,
  observationEventId,
  observationStreamId,
  type IntegrationEventObservedData,
} from './events.ts';
import { summarizePayload } from './summarizePayload.ts';
import { isValidTraceparent } from '../../../observability/tracer.ts';

const optionalText = z.string().min(1).max(1000).optional().catch(undefined);

/** What monitoring needs of an incoming event; anything else in it is ignored. */
const incomingSchema = z.object({
  eventId: z.string().min(1).max(200),
  source: z.string().min(1).max(100),
  type: z.string().min(1).max(200),
  schemaVersion: z.number().int().min(1),
  streamId: z.string().min(1).max(500),
  streamPosition: z.number().int().min(0),
  occurredAt: z.string().refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date'),
  metadata: z
    .object({
      correlationId: optionalText,
      causationId: optionalText,
      actor: optionalText,
      // Only valid W3C Trace Context is kept: garbage, oversized or all-zero ids are dropped.
      traceparent: z.string().refine(isValidTraceparent).optional().catch(undefined),
    })
    .catch({}),
  data: z.unknown(),
});

/** Result of one observation. */
export type ObservationOutcome = 'observed' | 'duplicate' | 'rejected';

/** Parses an incoming event into what monitoring stores; `null` (logged) when malformed. */
function toObservation(event: IntegrationEvent, logger: Logger): { incoming: z.infer<typeof incomingSchema>; observed: IntegrationEventObservedData } | null {
  const parsed = incomingSchema.safeParse(event);
  if (!parsed.success) {
    logger.error(
      { source: (event as Partial<IntegrationEvent>)?.source, eventId: (event as Partial<IntegrationEvent>)?.eventId, issues: parsed.error.issues },
      'monitoring: malformed integration event dropped',
    );
    return null;
  }
  const incoming = parsed.data;
  const runId = (incoming.data as { runId?: unknown } | null)?.runId;
  const observed: IntegrationEventObservedData = {
    source: incoming.source,
    eventId: incoming.eventId,
    type: incoming.type,
    schemaVersion: incoming.schemaVersion,
    streamId: incoming.streamId,
    streamPosition: incoming.streamPosition,
    correlationId: incoming.metadata.correlationId ?? null,
    causationId: incoming.metadata.causationId ?? null,
    actor: incoming.metadata.actor ?? null,
    runId: typeof runId === 'string' && runId.length > 0 && runId.length <= 200 ? runId : null,
    occurredAt: new Date(incoming.occurredAt).toISOString(),
    summary: summarizePayload(incoming.data),
    traceparent: incoming.metadata.traceparent ?? null,
  };
  return { incoming, observed };
}

/** The stored form of one observation. */
function observationEvent(observed: IntegrationEventObservedData) {
  return {
    eventId: observationEventId(observed.source, observed.eventId),
    type: INTEGRATION_EVENT_OBSERVED,
    data: observed,
    metadata: {
      ...(observed.correlationId !== null ? { correlationId: observed.correlationId } : {}),
      causationId: observed.eventId,
      actor: MONITORING_ACTOR,
    },
  };
}

/**
 * Records `event`. Resolving acknowledges it; throwing (database down...) makes the transport
 * redeliver it.
 * - `observed`: stored with its inbox row (and read models) in one transaction;
 * - `duplicate`: the inbox already had `(source, eventId)`, nothing written;
 * - `rejected`: malformed (no event id, bad date...): logged as an error and acknowledged,
 *   since redelivering it would fail forever; nothing written.
 */
export async function observeIntegrationEvent(store: EventStore, event: IntegrationEvent, logger: Logger): Promise<ObservationOutcome> {
  const parsed = toObservation(event, logger);
  if (!parsed) return 'rejected';
  const { incoming, observed } = parsed;
  const outcome = await handleOnce(store, incoming, (tx) =>
    tx.appendToStream(observationStreamId(observed.source, observed.correlationId), [observationEvent(observed)]),
  );
  return outcome.handled ? 'observed' : 'duplicate';
}

/**
 * Records a batch of one source's events in one transaction (inbox rows, observation events
 * and read models together): a book's hundreds of chunk events cost one commit, not hundreds.
 * Malformed events are logged and skipped as in `observeIntegrationEvent`.
 * @returns how many were observed (not duplicates, not rejected)
 */
export async function observeIntegrationEvents(store: EventStore, events: readonly IntegrationEvent[], logger: Logger): Promise<number> {
  const parsed = events.map((e) => toObservation(e, logger)).filter((p): p is NonNullable<typeof p> => p !== null);
  if (parsed.length === 0) return 0;
  const { handled } = await handleBatchOnce(
    store,
    parsed.map((p) => ({ ...p.incoming, observed: p.observed })),
    async (tx, fresh) => {
      const byStream = new Map<string, IntegrationEventObservedData[]>();
      for (const { observed } of fresh) {
        const streamId = observationStreamId(observed.source, observed.correlationId);
        byStream.set(streamId, [...(byStream.get(streamId) ?? []), observed]);
      }
      // Streams in a fixed order: two batches never wait on each other's stream locks in a cycle.
      for (const streamId of [...byStream.keys()].sort()) {
        await tx.appendToStream(streamId, byStream.get(streamId)!.map(observationEvent));
      }
    },
  );
  return handled.length;
}
