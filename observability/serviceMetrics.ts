/**
 * A subgraph service's metrics (`/metrics` on the service's own HTTP port): its event store's
 * appends, its subscriptions (projections, relay, sagas) and integration consumers, its pg pool.
 * Every series carries `service="<name>"`.
 *
 * How the lag is measured, cheaply: nothing is computed on the hot path. At scrape time one
 * statement (`eventstore/lag.ts`) compares each subscription's stored checkpoint with the log
 * (an index range scan after the checkpoint: a caught-up subscription costs one index probe), so
 * the lag of a stopped or crashed consumer keeps rising. Lag readings are shared by the gauges of
 * one scrape and reused for {@link LAG_CACHE_MS}. A NATS consumer's backlog is one consumer-info
 * request per consumer and scrape. Pool gauges read `pg.Pool`'s counters. A failed read (the
 * database or NATS down) leaves the gauges at their last values and counts
 * `flowgraph_metrics_collect_errors_total{source}`; `/metrics` still answers.
 */
import type pg from 'pg';
import { Counter, Gauge, Histogram } from 'prom-client';
import { countParkedEvents } from '../eventstore/parking.ts';
import { readSubscriptionLag, type SubscriptionLag } from '../eventstore/lag.ts';
import {
  NOOP_EVENT_STORE_METRICS,
  type ConsumerPending,
  type ConsumerRegistration,
  type EventStoreMetrics,
  type SubscriptionRegistration,
} from '../eventstore/metrics.ts';
import { createRegistry, metricsEndpoint, STATEMENT_DURATION_BUCKETS, type MetricsEndpoint, type MetricsOptions } from './metrics.ts';

/** How long one reading of the subscriptions' lag serves the gauges, in ms (one scrape reads it once). */
export const LAG_CACHE_MS = 1000;

/**
 * Longest a scrape waits for a NATS consumer's backlog (consumer info), in ms: 1000. Past it the
 * backlog gauges keep their last value and `flowgraph_metrics_collect_errors_total{source="nats"}`
 * counts the miss.
 */
export const PENDING_TIMEOUT_MS = 1000;

/** Options of {@link createServiceMetrics}. */
export interface ServiceMetricsOptions extends MetricsOptions {
  /** The service's name: the `service` label of every series. */
  service: string;
  /** The service's pool: its sizes are exported, and lag and parked events are read through it. */
  pool: pg.Pool;
}

/** A service's metrics: the hooks its event store and consumers report to, and its endpoint. */
export interface ServiceMetrics extends MetricsEndpoint {
  /** Give to `createEventStore({ metrics })`; no-op hooks when metrics are off. */
  readonly store: EventStoreMetrics;
}

/**
 * Creates the registry and instruments of one service instance.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `flowgraph_eventstore_append_batches_total` | counter | `outcome` (ok, duplicate, conflict, error) |
 * | `flowgraph_eventstore_appended_events_total` | counter | |
 * | `flowgraph_eventstore_append_duration_seconds` | histogram | `outcome` |
 * | `flowgraph_subscription_handled_events_total` | counter | `subscription` |
 * | `flowgraph_subscription_retries_total` | counter | `subscription` |
 * | `flowgraph_subscription_lag_events` | gauge | `subscription` |
 * | `flowgraph_subscription_lag_seconds` | gauge | `subscription` |
 * | `flowgraph_consumer_handled_events_total` | counter | `consumer` |
 * | `flowgraph_consumer_failed_attempts_total` | counter | `consumer` |
 * | `flowgraph_consumer_parked_events` | gauge | `consumer` |
 * | `flowgraph_nats_consumer_pending_messages` | gauge | `consumer` |
 * | `flowgraph_nats_consumer_ack_pending_messages` | gauge | `consumer` |
 * | `flowgraph_db_pool_clients` / `_idle_clients` / `_waiting_clients` / `_max_clients` | gauge | |
 * | `flowgraph_metrics_collect_errors_total` | counter | `source` (lag, parked, nats) |
 */
export function createServiceMetrics(options: ServiceMetricsOptions): ServiceMetrics {
  const enabled = options.enabled ?? true;
  const registry = createRegistry(options.service, options);
  if (!enabled) return { ...metricsEndpoint(registry, false), store: NOOP_EVENT_STORE_METRICS };
  const { pool } = options;
  const registers = [registry];

  // The pool gauges come first: a scrape runs every collect() at once, in registration order, and
  // the lag and parked gauges below query through this pool; read after them, the pool would
  // count the scrape's own queries as waiting clients.
  new Gauge({
    name: 'flowgraph_db_pool_clients',
    help: 'Connections the service\'s pg pool holds now, busy and idle',
    registers,
    collect() {
      this.set(pool.totalCount);
    },
  });
  new Gauge({
    name: 'flowgraph_db_pool_idle_clients',
    help: 'Idle connections in the service\'s pg pool',
    registers,
    collect() {
      this.set(pool.idleCount);
    },
  });
  new Gauge({
    name: 'flowgraph_db_pool_waiting_clients',
    help: 'Queries waiting for a connection of the service\'s pg pool (every connection busy)',
    registers,
    collect() {
      this.set(pool.waitingCount);
    },
  });
  new Gauge({
    name: 'flowgraph_db_pool_max_clients',
    help: 'Most connections the service\'s pg pool may open',
    registers,
    collect() {
      this.set(pool.options.max ?? 10);
    },
  });

  const collectErrors = new Counter({
    name: 'flowgraph_metrics_collect_errors_total',
    help: 'Failed readings of a source during scrapes (lag: the checkpoints, parked: the parked events, nats: one consumer\'s backlog, counted per consumer); the gauges kept their last values',
    labelNames: ['source'],
    registers,
  });
  // Every source's series exists from the start (0), so a rate() or an alert sees its first failure.
  for (const source of ['lag', 'parked', 'nats']) collectErrors.inc({ source }, 0);

  const appendBatches = new Counter({
    name: 'flowgraph_eventstore_append_batches_total',
    help: 'Append statements (one batch of events to one stream) by outcome: ok, duplicate (an idempotent retry), conflict (WRONG_EXPECTED_VERSION), error',
    labelNames: ['outcome'],
    registers,
  });
  const appendedEvents = new Counter({
    name: 'flowgraph_eventstore_appended_events_total',
    help: 'Events stored by append statements that succeeded (idempotent retries excluded)',
    registers,
  });
  const appendDuration = new Histogram({
    name: 'flowgraph_eventstore_append_duration_seconds',
    help: 'Duration of one append statement in seconds (inline projections and the commit of a surrounding transaction excluded), by outcome',
    labelNames: ['outcome'],
    buckets: STATEMENT_DURATION_BUCKETS,
    registers,
  });

  const subscriptionHandled = new Counter({
    name: 'flowgraph_subscription_handled_events_total',
    help: 'Events a subscription (projection, relay, saga) handled and committed with its checkpoint',
    labelNames: ['subscription'],
    registers,
  });
  const subscriptionRetries = new Counter({
    name: 'flowgraph_subscription_retries_total',
    help: 'Batches a subscription rolled back and retried because its handler failed',
    labelNames: ['subscription'],
    registers,
  });

  const subscriptions = new Map<string, SubscriptionRegistration>();
  let lagReading: { at: number; value: Promise<SubscriptionLag[] | undefined> } | undefined;
  const readLag = () => {
    if (lagReading && Date.now() - lagReading.at < LAG_CACHE_MS) return lagReading.value;
    const value = readSubscriptionLag(pool, [...subscriptions.values()]).catch(() => {
      collectErrors.inc({ source: 'lag' });
      return undefined;
    });
    lagReading = { at: Date.now(), value };
    return value;
  };
  new Gauge({
    name: 'flowgraph_subscription_lag_events',
    help: 'Committed events of its types after a subscription\'s stored checkpoint (0 when caught up); read from the database at scrape time, so it rises while the subscription is stopped',
    labelNames: ['subscription'],
    registers,
    async collect() {
      const lag = await readLag();
      for (const entry of lag ?? []) this.set({ subscription: entry.name }, entry.events);
    },
  });
  new Gauge({
    name: 'flowgraph_subscription_lag_seconds',
    help: 'Age in seconds of the oldest event a subscription has not handled yet (now minus its recorded_at; 0 when caught up)',
    labelNames: ['subscription'],
    registers,
    async collect() {
      const lag = await readLag();
      for (const entry of lag ?? []) this.set({ subscription: entry.name }, entry.seconds);
    },
  });

  const consumerHandled = new Counter({
    name: 'flowgraph_consumer_handled_events_total',
    help: 'Integration events an integration consumer\'s handler handled (its effects and inbox rows committed)',
    labelNames: ['consumer'],
    registers,
  });
  const consumerFailed = new Counter({
    name: 'flowgraph_consumer_failed_attempts_total',
    help: 'Integration events whose delivery to a consumer\'s handler failed (redelivered, or parked once the attempts are used up)',
    labelNames: ['consumer'],
    registers,
  });
  const consumers = new Map<string, ConsumerRegistration>();
  new Gauge({
    name: 'flowgraph_consumer_parked_events',
    help: 'Integration events parked now (status PARKED, waiting for an operator\'s retry or skip), by consumer',
    labelNames: ['consumer'],
    registers,
    async collect() {
      let parked: Record<string, number>;
      try {
        parked = await countParkedEvents(pool);
      } catch {
        collectErrors.inc({ source: 'parked' });
        return;
      }
      this.reset();
      for (const name of consumers.keys()) this.set({ consumer: name }, parked[name] ?? 0);
      for (const [name, count] of Object.entries(parked)) this.set({ consumer: name }, count);
    },
  });
  let pendingReading: { at: number; value: Promise<Map<string, ConsumerPending>> } | undefined;
  const readPending = () => {
    if (pendingReading && Date.now() - pendingReading.at < LAG_CACHE_MS) return pendingReading.value;
    const value = (async () => {
      const result = new Map<string, ConsumerPending>();
      await Promise.all(
        [...consumers.values()].map(async (registration) => {
          if (!registration.pending) return;
          // Bounded: while NATS is unreachable a consumer-info request would hold the scrape for its own 5 s timeout.
          let timer: NodeJS.Timeout | undefined;
          try {
            const pending = await Promise.race([
              registration.pending(),
              new Promise<never>((_, reject) => {
                timer = setTimeout(() => reject(new Error('consumer info timed out')), PENDING_TIMEOUT_MS);
              }),
            ]);
            result.set(registration.consumer, pending);
          } catch {
            collectErrors.inc({ source: 'nats' });
          } finally {
            clearTimeout(timer);
          }
        }),
      );
      return result;
    })();
    pendingReading = { at: Date.now(), value };
    return value;
  };
  new Gauge({
    name: 'flowgraph_nats_consumer_pending_messages',
    help: 'Messages JetStream holds for a durable consumer and has not delivered yet (consumer info num_pending)',
    labelNames: ['consumer'],
    registers,
    async collect() {
      for (const [consumer, pending] of await readPending()) this.set({ consumer }, pending.messages);
    },
  });
  new Gauge({
    name: 'flowgraph_nats_consumer_ack_pending_messages',
    help: 'Messages JetStream delivered to a durable consumer that it has not acknowledged yet (consumer info num_ack_pending)',
    labelNames: ['consumer'],
    registers,
    async collect() {
      for (const [consumer, pending] of await readPending()) this.set({ consumer }, pending.unacknowledged);
    },
  });

  const store: EventStoreMetrics = {
    appended(outcome, events, seconds) {
      appendBatches.inc({ outcome });
      if (outcome === 'ok') appendedEvents.inc(events);
      appendDuration.observe({ outcome }, seconds);
    },
    subscriptionStarted(registration) {
      subscriptions.set(registration.name, { name: registration.name, types: registration.types ? [...registration.types] : undefined });
      // Zero series from the start, so that rate() sees the first increment.
      subscriptionHandled.inc({ subscription: registration.name }, 0);
      subscriptionRetries.inc({ subscription: registration.name }, 0);
    },
    subscriptionHandled: (name, events) => subscriptionHandled.inc({ subscription: name }, events),
    subscriptionRetried: (name) => subscriptionRetries.inc({ subscription: name }),
    consumerHandled: (consumer, events) => consumerHandled.inc({ consumer }, events),
    consumerFailed: (consumer, events) => consumerFailed.inc({ consumer }, events),
    consumerStarted(registration) {
      consumers.set(registration.consumer, registration);
      consumerHandled.inc({ consumer: registration.consumer }, 0);
      consumerFailed.inc({ consumer: registration.consumer }, 0);
    },
  };
  return { ...metricsEndpoint(registry, true), store };
}
