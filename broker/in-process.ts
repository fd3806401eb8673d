/**
 * The embedded transport (DESIGN.md, "Broker"): integration events go from a relay straight to
 * the consumers registered in the same process. `publish` resolves only after every matching
 * consumer's handler resolved (its inbox transaction committed), so the relay's checkpoint
 * moves only after the consumers committed: a crash anywhere makes the relay publish again
 * and the inboxes absorb the redelivery. Same at-least-once + inbox semantics as NATS.
 *
 * Unlike a broker it keeps no messages: an event published while no consumer is registered is
 * gone for that consumer. A process therefore creates it `paused` and `open()`s it once every
 * service has registered its consumers.
 */
import type {
  IntegrationConsumer,
  IntegrationConsumerOptions,
  IntegrationEvent,
  IntegrationTransport,
} from '../eventstore/integration.ts';
import { startProducerSpan, traceDelivery } from '../observability/messagingSpans.ts';
import { tracingOn } from '../observability/tracer.ts';

/** The in-process transport. */
export interface InProcessTransport extends IntegrationTransport {
  /** Lets publishes through (they wait while paused). Idempotent. */
  open(): void;
}

/** Options of `createInProcessTransport`. */
export interface InProcessTransportOptions {
  /** Hold every publish until `open()`. @default false */
  paused?: boolean;
}

/** Creates an in-process transport shared by every service of one process. */
export function createInProcessTransport(options: InProcessTransportOptions = {}): InProcessTransport {
  const consumers = new Set<IntegrationConsumerOptions>();
  let closed = false;
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  if (!options.paused) open();
  return {
    kind: 'in-process',
    open,
    async publish(events: readonly IntegrationEvent[]) {
      await opened;
      if (closed) throw new Error('in-process transport is closed');
      // Consumers run side by side, each one in order over its own events (a slow consumer
      // delays the publish, not the others' handling). Any failure fails the publish: the
      // relay rolls back and republishes the batch, and the inboxes absorb what was handled.
      // Tracing on: a PRODUCER span per event, open until every consumer committed, and a
      // CONSUMER span per delivery linked to them (observability/messagingSpans.ts).
      const producers = tracingOn() ? new Map(events.map((e) => [e, startProducerSpan('in_process', `${e.source}.${e.type}`, e)])) : undefined;
      const deliver = (consumer: IntegrationConsumerOptions, batch: IntegrationEvent[], handle: () => Promise<void>) =>
        producers
          ? traceDelivery('in_process', consumer, batch.length === 1 ? `${batch[0]!.source}.${batch[0]!.type}` : consumer.source, batch, batch.map((e) => producers.get(e)?.carrier), handle)
          : handle();
      const results = await Promise.allSettled(
        [...consumers].map(async (consumer) => {
          const mine = events.filter((e) => e.source === consumer.source && (!consumer.types || consumer.types.includes(e.type)));
          if (consumer.handleBatch) {
            const size = consumer.maxBatch ?? 200;
            for (let i = 0; i < mine.length; i += size) {
              const batch = mine.slice(i, i + size);
              await deliver(consumer, batch, () => consumer.handleBatch!(structuredClone(batch)));
            }
          } else {
            for (const event of mine) await deliver(consumer, [event], () => consumer.handler(structuredClone(event)));
          }
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      for (const producer of producers?.values() ?? []) producer.end(failed?.reason);
      if (failed) throw failed.reason;
    },
    async consume(consumerOptions: IntegrationConsumerOptions): Promise<IntegrationConsumer> {
      if (closed) throw new Error('in-process transport is closed');
      consumers.add(consumerOptions);
      return {
        async close() {
          consumers.delete(consumerOptions);
        },
      };
    },
    async ping() {
      if (closed) throw new Error('in-process transport is closed');
    },
    async close() {
      closed = true;
      consumers.clear();
      open();
    },
  };
}
