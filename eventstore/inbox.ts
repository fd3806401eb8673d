/**
 * The inbox (DESIGN.md, "Integration events"): a consumer records `(source, event_id)` in the
 * same transaction as its effects, so a redelivered message has no second effect.
 */
import type { IntegrationEvent } from './integration.ts';
import type { EventStore, EventStoreTransaction } from './store.ts';

/** Outcome of `handleOnce`. */
export type InboxOutcome<T> = { handled: true; value: T } | { handled: false };

/**
 * Runs `work` in one transaction with the inbox row of `event`; when the row already exists
 * (a redelivery), commits nothing and returns `{ handled: false }`. `work` may append events
 * through `tx.appendToStream` (the transaction is opened by the store, appenders-lock first)
 * and write read models through `tx.client`.
 * @throws whatever `work` throws (nothing is committed, the inbox row neither)
 */
export async function handleOnce<T>(
  store: EventStore,
  event: Pick<IntegrationEvent, 'source' | 'eventId' | 'type'>,
  work: (tx: EventStoreTransaction) => Promise<T>,
): Promise<InboxOutcome<T>> {
  return store.transaction(async (tx) => {
    const { rowCount } = await tx.client.query(
      `INSERT INTO eventstore.inbox (source, event_id, type) VALUES ($1, $2, $3) ON CONFLICT (source, event_id) DO NOTHING`,
      [event.source, event.eventId, event.type],
    );
    if (rowCount !== 1) return { handled: false } as const;
    return { handled: true, value: await work(tx) } as const;
  });
}
