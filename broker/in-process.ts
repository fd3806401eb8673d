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
      for (const event of events) {
        for (const consumer of consumers) {
          if (consumer.source !== event.source) continue;
          if (consumer.types && !consumer.types.includes(event.type)) continue;
          // A failing consumer fails the publish: the relay rolls back and retries the batch.
          await consumer.handler(structuredClone(event));
        }
      }
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
    async close() {
      closed = true;
      consumers.clear();
      open();
    },
  };
}
