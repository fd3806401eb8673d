/**
 * The inbox (DESIGN.md, "Integration events"): a consumer records `(source, event_id)` in the
 * same transaction as its effects, so a redelivered message has no second effect.
 *
 * Order inside the transaction: the inbox is read first (no write, so no transaction id yet),
 * then the effects are written (an append takes its stream's lock before the transaction gets
 * its id, which keeps per-stream log order without conflicts), then the inbox rows. A
 * concurrent delivery of the same event that committed meanwhile makes the insert find the row:
 * the whole transaction is rolled back with `DuplicateDeliveryError` and the redelivery finds it.
 */
import { EventStoreError, EventStoreErrorCode } from './errors.ts';
import type { IntegrationEvent } from './integration.ts';
import type { EventStore, EventStoreTransaction } from './store.ts';

/** Outcome of `handleOnce`. */
export type InboxOutcome<T> = { handled: true; value: T } | { handled: false };

/** Two deliveries of one event raced; this one rolled back. Retry it: the inbox absorbs it. */
export class DuplicateDeliveryError extends EventStoreError {
  constructor(readonly source: string, readonly eventIds: string[]) {
    super(EventStoreErrorCode.DuplicateDelivery, `Integration event(s) ${eventIds.slice(0, 3).join(', ')} of ${source} were handled concurrently; this delivery rolled back`);
  }
}

type Delivered = Pick<IntegrationEvent, 'source' | 'eventId' | 'type'>;

/**
 * Runs `work` in one transaction with the inbox row of `event`; when the row already exists
 * (a redelivery), commits nothing and returns `{ handled: false }`. `work` may append events
 * through `tx.appendToStream` and write read models through `tx.client`.
 * @throws whatever `work` throws (nothing is committed, the inbox row neither); DuplicateDeliveryError
 */
export async function handleOnce<T>(store: EventStore, event: Delivered, work: (tx: EventStoreTransaction) => Promise<T>): Promise<InboxOutcome<T>> {
  const outcome = await handleBatchOnce(store, [event], (tx) => work(tx));
  return outcome.handled.length === 1 ? { handled: true, value: outcome.value as T } : { handled: false };
}

/**
 * The batch form of `handleOnce` (one transaction, one commit, for a consumer that receives
 * many events at once): `work` receives the events of `events` not handled before, in order,
 * and is not called when there are none. All events must come from one source.
 * @returns the handled events and what `work` returned (undefined when not called)
 * @throws whatever `work` throws (nothing is committed); DuplicateDeliveryError
 */
export async function handleBatchOnce<E extends Delivered, T>(
  store: EventStore,
  events: readonly E[],
  work: (tx: EventStoreTransaction, fresh: E[]) => Promise<T>,
): Promise<{ handled: E[]; value: T | undefined }> {
  if (events.length === 0) return { handled: [], value: undefined };
  const source = events[0]!.source;
  if (events.some((e) => e.source !== source)) throw new Error('handleBatchOnce: every event of a batch must come from one source');
  return store.transaction(async (tx) => {
    const ids = events.map((e) => e.eventId);
    const { rows } = await tx.client.query<{ event_id: string }>(
      'SELECT event_id::text FROM eventstore.inbox WHERE source = $1 AND event_id = ANY ($2::uuid[])',
      [source, ids],
    );
    const seen = new Set(rows.map((r) => r.event_id));
    const fresh: E[] = [];
    for (const e of events) {
      if (seen.has(e.eventId.toLowerCase())) continue;
      seen.add(e.eventId.toLowerCase());
      fresh.push(e);
    }
    if (fresh.length === 0) return { handled: [], value: undefined };
    const value = await work(tx, fresh);
    const inserted = await tx.client.query(
      `INSERT INTO eventstore.inbox (source, event_id, type)
       SELECT $1, * FROM unnest($2::uuid[], $3::text[]) ON CONFLICT (source, event_id) DO NOTHING`,
      [source, fresh.map((e) => e.eventId), fresh.map((e) => e.type)],
    );
    if (inserted.rowCount !== fresh.length) throw new DuplicateDeliveryError(source, fresh.map((e) => e.eventId));
    return { handled: fresh, value };
  });
}
