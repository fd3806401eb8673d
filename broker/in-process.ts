/**
 * The embedded transport (DESIGN.md, "Broker"): integration events go from a service's log
 * straight to the consumers registered in the same process, each consumer at its own position.
 *
 * - **Lanes.** A relay started on this transport (`startRelay` hands itself over to
 *   {@link InProcessTransport.startRelay}) runs one subscription over the source's log per
 *   consumer of that source, named `<relay name>/<consumer>` (e.g. `relay:workflows/monitoring-from-workflows`),
 *   each with its own checkpoint. A lane hands its consumer the next batch as soon as that
 *   consumer committed the last one, so no consumer waits for the slowest (as NATS durable
 *   consumers behave). A lane's checkpoint commits only after its consumer's handler resolved
 *   (the consumer's inbox transaction committed): a crash anywhere makes that lane deliver again
 *   and the inbox absorbs the redelivery. Same at-least-once + inbox semantics as NATS.
 * - **Where a lane starts.** At its stored checkpoint; a lane that has none yet starts where the
 *   relay's own checkpoint (`relay:<source>`, the single position of earlier versions) stands, so
 *   an upgrade neither replays nor skips; without either, at the start of the log. The log is the
 *   lane's buffer: a consumer that registers late, or restarts, resumes where it stopped.
 * - **When.** Lanes start once the transport is open (a process creates it `paused` and
 *   `open()`s it after every service registered its relay and consumers), and for relays and
 *   consumers registered after that. One active lane per name across processes (the
 *   subscription's advisory lock), like one relay per service.
 * - `publish` (no lanes: to every registered consumer, resolving after each one's handler
 *   resolved) stays for callers that publish themselves.
 */
import type { IntegrationConsumer, IntegrationConsumerOptions, IntegrationEvent, IntegrationTransport } from '../eventstore/integration.ts';
import { toIntegrationEvent } from '../eventstore/integration.ts';
import { compareLogPositions } from '../eventstore/cursor.ts';
import { briefError } from '../eventstore/logger.ts';
import type { RelayOptions } from '../eventstore/relay.ts';
import type { EventStore } from '../eventstore/store.ts';
import type { Subscription, SubscriptionState } from '../eventstore/subscribe.ts';
import type { LogPosition } from '../eventstore/types.ts';
import { startProducerSpan, traceDelivery } from '../observability/messagingSpans.ts';
import { tracingOn } from '../observability/tracer.ts';

/** The in-process transport. */
export interface InProcessTransport extends IntegrationTransport {
  /** Lets publishes and lanes through (publishes wait while paused; lanes start). Idempotent. */
  open(): void;
  /**
   * Starts `options.source`'s relay as one lane per consumer of that source (see the module
   * comment). Called by `startRelay`; `options.name` (default `relay:<source>`) prefixes the
   * lanes' checkpoint names and is the checkpoint a new lane starts from.
   * @returns a subscription standing for every lane: `close()` stops them all (waiting for
   *   batches in flight); `checkpoint` is the lowest lane checkpoint (`null` until every lane has
   *   one); `state` is `active` while any lane is
   * @throws Error when the transport is closed
   */
  startRelay(store: EventStore, options: RelayOptions): Subscription;
}

/** Options of `createInProcessTransport`. */
export interface InProcessTransportOptions {
  /** Hold every publish, and start no lane, until `open()`. @default false */
  paused?: boolean;
}

interface Relay {
  store: EventStore;
  options: RelayOptions;
  name: string;
  lanes: Map<IntegrationConsumerOptions, Lane>;
}

interface Lane {
  /** Set once the seed is in and the subscription started. */
  subscription?: Subscription;
  stopped: boolean;
  started: Promise<void>;
}

/** Longest consumer name (its lane's checkpoint name must stay within 200 characters). */
const MAX_CONSUMER_NAME = 120;

/** Delay between tries to seed a lane's checkpoint while the database does not answer, in ms. */
const SEED_RETRY_MS = 1000;

/** Hands `events` to `consumer`: `handleBatch` in chunks of `maxBatch`, else one by one, in order; a PRODUCER span per event and a CONSUMER span per delivery when tracing. */
async function deliver(consumer: IntegrationConsumerOptions, events: readonly IntegrationEvent[]): Promise<void> {
  const producers = tracingOn() ? new Map(events.map((e) => [e, startProducerSpan('in_process', `${e.source}.${e.type}`, e)])) : undefined;
  const traced = (batch: IntegrationEvent[], handle: () => Promise<void>) =>
    producers
      ? traceDelivery(
          'in_process',
          consumer,
          batch.length === 1 ? `${batch[0]!.source}.${batch[0]!.type}` : consumer.source,
          batch,
          batch.map((e) => producers.get(e)?.carrier),
          handle,
        )
      : handle();
  let failure: unknown;
  try {
    if (consumer.handleBatch) {
      const size = consumer.maxBatch ?? 200;
      for (let i = 0; i < events.length; i += size) {
        const batch = events.slice(i, i + size);
        await traced(batch, () => consumer.handleBatch!(structuredClone(batch)));
      }
    } else {
      for (const event of events) await traced([event], () => consumer.handler(structuredClone(event)));
    }
  } catch (error) {
    failure = error;
    throw error;
  } finally {
    for (const producer of producers?.values() ?? []) producer.end(failure);
  }
}

const matches = (consumer: IntegrationConsumerOptions, event: IntegrationEvent) =>
  event.source === consumer.source && (!consumer.types || consumer.types.includes(event.type));

/** Creates an in-process transport shared by every service of one process. */
export function createInProcessTransport(options: InProcessTransportOptions = {}): InProcessTransport {
  const consumers = new Set<IntegrationConsumerOptions>();
  const relays = new Set<Relay>();
  let closed = false;
  let isOpen = false;
  let resolveOpened!: () => void;
  const opened = new Promise<void>((resolve) => (resolveOpened = resolve));
  if (!options.paused) {
    isOpen = true;
    resolveOpened();
  }

  const startLane = (relay: Relay, consumer: IntegrationConsumerOptions): void => {
    if (!isOpen || closed || consumer.source !== relay.options.source || relay.lanes.has(consumer)) return;
    const publicTypes = Object.keys(relay.options.publicEvents);
    const types = consumer.types ? publicTypes.filter((t) => consumer.types!.includes(t)) : publicTypes;
    if (types.length === 0) return;
    const name = `${relay.name}/${consumer.consumer}`;
    const { store, options: relayOptions } = relay;
    const lane: Lane = { stopped: false, started: Promise.resolve() };
    relay.lanes.set(consumer, lane);
    lane.started = (async () => {
      // A new lane starts where the relay's single checkpoint stands (if any).
      for (;;) {
        if (lane.stopped) return;
        try {
          await store.pool.query(
            `INSERT INTO eventstore.checkpoints (subscription_name, transaction_id, global_position)
             SELECT $1, transaction_id, global_position FROM eventstore.checkpoints WHERE subscription_name = $2
             ON CONFLICT (subscription_name) DO NOTHING`,
            [name, relay.name],
          );
          break;
        } catch (error) {
          store.logger.warn({ subscription: name, err: briefError(error) }, 'in-process relay lane: seeding its checkpoint failed, retrying');
          await new Promise((resolve) => setTimeout(resolve, SEED_RETRY_MS));
        }
      }
      if (lane.stopped) return;
      lane.subscription = store.subscribe({
        ...relayOptions.subscription,
        name,
        types,
        batchSize: relayOptions.batchSize ?? 200,
        handler: async (events) => {
          const messages = events.map((event) => toIntegrationEvent(relayOptions.source, relayOptions.publicEvents[event.type]!, event));
          // The lane's checkpoint commits after this resolves: only handled events are passed.
          await deliver(consumer, messages);
        },
      });
    })().catch((error: unknown) => {
      relay.lanes.delete(consumer);
      store.logger.error({ subscription: name, err: briefError(error) }, 'in-process relay lane could not start');
    });
  };

  const stopLane = async (relay: Relay, consumer: IntegrationConsumerOptions): Promise<void> => {
    const lane = relay.lanes.get(consumer);
    if (!lane) return;
    relay.lanes.delete(consumer);
    lane.stopped = true;
    await lane.started;
    await lane.subscription?.close();
  };

  const startEveryLane = () => {
    for (const relay of relays) for (const consumer of consumers) startLane(relay, consumer);
  };

  return {
    kind: 'in-process',
    open() {
      if (isOpen) return;
      isOpen = true;
      resolveOpened();
      startEveryLane();
    },
    startRelay(store: EventStore, relayOptions: RelayOptions): Subscription {
      if (closed) throw new Error('in-process transport is closed');
      const relay: Relay = {
        store,
        options: relayOptions,
        name: relayOptions.name ?? `relay:${relayOptions.source}`,
        lanes: new Map(),
      };
      relays.add(relay);
      for (const consumer of consumers) startLane(relay, consumer);
      let stopping: Promise<void> | undefined;
      let resolveClosed!: () => void;
      const closedPromise = new Promise<void>((resolve) => (resolveClosed = resolve));
      return {
        name: relay.name,
        get state(): SubscriptionState {
          if (stopping) return 'closed';
          const states = [...relay.lanes.values()].map((lane) => lane.subscription?.state ?? 'connecting');
          return states.includes('active') ? 'active' : states.includes('standby') ? 'standby' : 'connecting';
        },
        get checkpoint(): LogPosition | null {
          let lowest: LogPosition | null = null;
          for (const lane of relay.lanes.values()) {
            const checkpoint = lane.subscription?.checkpoint ?? null;
            if (!checkpoint) return null;
            if (!lowest || compareLogPositions(checkpoint, lowest) < 0) lowest = checkpoint;
          }
          return lowest;
        },
        closed: closedPromise,
        close() {
          stopping ??= (async () => {
            relays.delete(relay);
            await Promise.all([...relay.lanes.keys()].map((consumer) => stopLane(relay, consumer)));
            resolveClosed();
          })();
          return stopping;
        },
      };
    },
    async publish(events: readonly IntegrationEvent[]) {
      await opened;
      if (closed) throw new Error('in-process transport is closed');
      // Consumers run side by side, each one in order over its own events. Any failure fails
      // the publish (the caller publishes again; the inboxes absorb what was handled).
      const results = await Promise.allSettled(
        [...consumers].map((consumer) =>
          deliver(
            consumer,
            events.filter((e) => matches(consumer, e)),
          ),
        ),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
    async consume(consumerOptions: IntegrationConsumerOptions): Promise<IntegrationConsumer> {
      if (closed) throw new Error('in-process transport is closed');
      const { consumer } = consumerOptions;
      // The lane's checkpoint is named `relay:<source>/<consumer>` (at most 200 characters).
      if (typeof consumer !== 'string' || consumer.length === 0 || consumer.length > MAX_CONSUMER_NAME) {
        throw new TypeError(`consumer name must be a string of 1-${MAX_CONSUMER_NAME} characters`);
      }
      consumers.add(consumerOptions);
      for (const relay of relays) startLane(relay, consumerOptions);
      return {
        async close() {
          consumers.delete(consumerOptions);
          await Promise.all([...relays].map((relay) => stopLane(relay, consumerOptions)));
        },
      };
    },
    async ping() {
      if (closed) throw new Error('in-process transport is closed');
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...relays].flatMap((relay) => [...relay.lanes.keys()].map((consumer) => stopLane(relay, consumer))));
      consumers.clear();
      resolveOpened();
    },
  };
}
