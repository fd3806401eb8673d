/**
 * The embedded transport (DESIGN.md, "Broker"): integration events go from a relay straight to
 * the consumers registered in the same process. `publish` resolves only after every matching
 * consumer's handler resolved (its inbox transaction committed), so the relay's checkpoint
 * moves only after the consumers committed: a crash anywhere makes the relay publish again
 * and the inboxes absorb the redelivery. Same at-least-once + inbox semantics as NATS.
 */
import type {
  IntegrationConsumer,
  IntegrationConsumerOptions,
  IntegrationEvent,
  IntegrationTransport,
} from '../eventstore/integration.ts';

/** Creates an in-process transport shared by every service of one process. */
export function createInProcessTransport(): IntegrationTransport {
  const consumers = new Set<IntegrationConsumerOptions>();
  let closed = false;
  return {
    kind: 'in-process',
    async publish(events: readonly IntegrationEvent[]) {
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
    async consume(options: IntegrationConsumerOptions): Promise<IntegrationConsumer> {
      if (closed) throw new Error('in-process transport is closed');
      consumers.add(options);
      return {
        async close() {
          consumers.delete(options);
        },
      };
    },
    async close() {
      closed = true;
      consumers.clear();
    },
  };
}
