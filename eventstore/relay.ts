/**
 * The relay (DESIGN.md, "Integration events"): the event log is the outbox. A subscription
 * over the service's own log publishes the events it declares public and moves its checkpoint
 * only after the transport acknowledged them, so a crash anywhere republishes rather than
 * loses; the broker de-duplicates by event id and consumers' inboxes absorb the rest.
 */
import { toIntegrationEvent, type IntegrationEvent, type IntegrationTransport, type PublicEvents } from './integration.ts';
import type { EventStore } from './store.ts';
import type { Subscription, SubscriptionOptions } from './subscribe.ts';

/** Options of `startRelay`. */
export interface RelayOptions {
  /** Name of the publishing service: the `source` of every integration event. */
  source: string;
  /** Public event declarations; other event types are never published. */
  publicEvents: PublicEvents;
  transport: IntegrationTransport;
  /** Checkpoint name. @default `relay:<source>` */
  name?: string;
  /** Events per publish round. @default 200 */
  batchSize?: number;
  /** Passed to the subscription (poll interval, standby retry...). */
  subscription?: Omit<SubscriptionOptions, 'name' | 'handler' | 'types' | 'batchSize'>;
}

/**
 * Starts the relay of `options.source` as a subscription (one active relay per service
 * across processes). A transport that keeps no messages of its own (the in-process one) relays
 * itself, one position per consumer (`IntegrationTransport.startRelay`).
 * @returns the subscription; `close()` stops the relay
 */
export function startRelay(store: EventStore, options: RelayOptions): Subscription {
  if (options.transport.startRelay) return options.transport.startRelay(store, options);
  const types = Object.keys(options.publicEvents);
  return store.subscribe({
    ...options.subscription,
    name: options.name ?? `relay:${options.source}`,
    types,
    batchSize: options.batchSize ?? 200,
    handler: async (events) => {
      const messages: IntegrationEvent[] = events.map((event) => toIntegrationEvent(options.source, options.publicEvents[event.type]!, event));
      // The checkpoint commits after this resolves: only acknowledged events are passed.
      await options.transport.publish(messages);
    },
  });
}
