/**
 * What the event store tells a metrics backend (DESIGN.md, "Observability"): appends,
 * subscriptions' handled batches and retries, integration consumers' handled events and failed
 * attempts. The store knows no metrics library: `observability/serviceMetrics.ts` implements
 * these hooks with prom-client; without one the store uses {@link NOOP_EVENT_STORE_METRICS}.
 *
 * Hooks are called on the hot path (every append, every batch): implementations must be
 * synchronous, cheap and must not throw.
 */
import type { IntegrationConsumer, IntegrationConsumerOptions, IntegrationEvent, IntegrationTransport } from './integration.ts';

/**
 * How one append statement ended: `ok` (stored), `duplicate` (an idempotent retry, nothing new
 * stored), `conflict` (`WrongExpectedVersionError`, `WRONG_EXPECTED_VERSION`), `error` (any
 * other failure: validation, a lost connection...).
 */
export type AppendOutcome = 'ok' | 'duplicate' | 'conflict' | 'error';

/** What a subscription of the store reports when it starts, so that its lag can be measured. */
export interface SubscriptionRegistration {
  /** The subscription's (checkpoint's) name, e.g. `relay:content` or a projection's name. */
  name: string;
  /** The event types it reads; undefined = every type. */
  types: readonly string[] | undefined;
}

/** How far a consumer is behind, as a transport can tell it cheaply (NATS: the consumer info). */
export interface ConsumerPending {
  /** Messages the broker holds for the consumer that it has not delivered yet (JetStream `num_pending`). */
  messages: number;
  /** Messages delivered and not acknowledged yet (JetStream `num_ack_pending`). */
  unacknowledged: number;
}

/** An integration consumer, as it starts. */
export interface ConsumerRegistration {
  /** The durable consumer name, e.g. `knowledge-from-content`. */
  consumer: string;
  /** The source service it reads. */
  source: string;
  /** Reads its backlog at the broker now (one round trip), when the transport keeps one (NATS: `IntegrationConsumer.pending`). */
  pending?(): Promise<ConsumerPending>;
}

/** Hooks of the event store and its consumers. Every method must be cheap, synchronous and never throw. */
export interface EventStoreMetrics {
  /**
   * One append statement (`appendToStream`, or one inside a transaction: counted when the
   * statement ends, even if the surrounding transaction is rolled back later).
   * @param events the batch's size in events
   * @param seconds how long the statement took (inline projections excluded)
   */
  appended(outcome: AppendOutcome, events: number, seconds: number): void;
  /** A subscription (projection, relay, saga) started on this store: its lag is measured from now on, also while it is stopped. */
  subscriptionStarted(registration: SubscriptionRegistration): void;
  /** A subscription committed a batch of `events` events with its checkpoint. */
  subscriptionHandled(name: string, events: number): void;
  /** A subscription's handler (or its checkpoint write) failed; the batch is retried. */
  subscriptionRetried(name: string): void;
  /** An integration consumer's own handler resolved for `events` events (its effects committed). */
  consumerHandled(consumer: string, events: number): void;
  /** An integration consumer's own handler failed for a delivery of `events` events (redelivered, or parked later). */
  consumerFailed(consumer: string, events: number): void;
  /** An integration consumer started (its parked events and, over NATS, its backlog are measured from now on). */
  consumerStarted(registration: ConsumerRegistration): void;
}

const noop = () => {};

/** Hooks that do nothing: the store's default, and what `FLOWGRAPH_METRICS=off` gives. */
export const NOOP_EVENT_STORE_METRICS: EventStoreMetrics = Object.freeze({
  appended: noop,
  subscriptionStarted: noop,
  subscriptionHandled: noop,
  subscriptionRetried: noop,
  consumerHandled: noop,
  consumerFailed: noop,
  consumerStarted: noop,
});

/**
 * `transport` whose consumers report to `metrics`: each call of the consumer's own `handler` /
 * `handleBatch` that resolves counts its events as handled, each that throws counts a failed
 * attempt; each consumer is registered (`consumerStarted`) with its transport's `pending()` (NATS).
 * Wrap it inside any parking lot (`lot.wrap(instrumentTransport(…))` would count parking's
 * outcome instead: `instrumentTransport(lot.wrap(transport), metrics)` counts the handler's).
 * Publish, ping and close pass through; `close` of the wrapper does not close `transport`.
 */
export function instrumentTransport(transport: IntegrationTransport, metrics: EventStoreMetrics | undefined): IntegrationTransport {
  if (!metrics || metrics === NOOP_EVENT_STORE_METRICS) return transport;
  const counted = async <T>(consumer: string, events: number, work: () => Promise<T>): Promise<T> => {
    try {
      const value = await work();
      metrics.consumerHandled(consumer, events);
      return value;
    } catch (error) {
      metrics.consumerFailed(consumer, events);
      throw error;
    }
  };
  return {
    ...transport,
    async consume(options: IntegrationConsumerOptions): Promise<IntegrationConsumer> {
      const handleBatch = options.handleBatch;
      const consumer = await transport.consume({
        ...options,
        handler: (event: IntegrationEvent) => counted(options.consumer, 1, () => options.handler(event)),
        ...(handleBatch ? { handleBatch: (events: IntegrationEvent[]) => counted(options.consumer, events.length, () => handleBatch(events)) } : {}),
      });
      const pending = consumer.pending?.bind(consumer);
      metrics.consumerStarted({ consumer: options.consumer, source: options.source, ...(pending ? { pending } : {}) });
      return consumer;
    },
    async close() {},
  };
}
