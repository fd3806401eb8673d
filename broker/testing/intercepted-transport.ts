/**
 * A transport wrapper for tests that break a relay mid-batch: every `publish` goes through an
 * interceptor that may publish all, part or none of the batch through the real transport, crash
 * the caller's database connection, or throw, and every event the real transport acknowledged
 * is counted by event id (so a test can prove the relay really sent duplicates).
 */
import type { IntegrationEvent, IntegrationTransport } from '../../eventstore/integration.ts';

/**
 * Decides what one `publish(events)` does. `publish` hands events to the real transport and
 * counts them once it resolved; whatever the interceptor throws, the caller's publish throws.
 */
export type PublishInterceptor = (events: readonly IntegrationEvent[], publish: (events: readonly IntegrationEvent[]) => Promise<void>) => Promise<void>;

/** A transport whose publishes are intercepted and counted. */
export interface InterceptedTransport extends IntegrationTransport {
  /** Times each event id was acknowledged by the real transport's `publish`. */
  readonly published: ReadonlyMap<string, number>;
  /** Sum of `published`: events acknowledged, duplicates included. */
  readonly publishedCount: number;
}

/**
 * Wraps `inner`: `consume` and `close` go straight through, `publish` through `intercept`
 * (default: publish everything).
 */
export function interceptPublish(inner: IntegrationTransport, intercept: PublishInterceptor = (events, publish) => publish(events)): InterceptedTransport {
  const published = new Map<string, number>();
  let publishedCount = 0;
  const publish = async (events: readonly IntegrationEvent[]) => {
    await inner.publish(events);
    for (const e of events) published.set(e.eventId, (published.get(e.eventId) ?? 0) + 1);
    publishedCount += events.length;
  };
  return {
    kind: inner.kind,
    published,
    get publishedCount() {
      return publishedCount;
    },
    publish: (events) => intercept(events, publish),
    consume: (options) => inner.consume(options),
    ping: (signal) => inner.ping(signal),
    close: () => inner.close(),
  };
}
