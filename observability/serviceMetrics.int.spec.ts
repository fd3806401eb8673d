/**
 * A service's metrics against a fresh PostgreSQL database and the machine's NATS, read from a
 * real `/metrics` endpoint: appends by outcome, a subscription's handled events, retries and
 * checkpoint lag (rising while it is stopped, back to 0 after it resumes), a NATS consumer's
 * handled events, failed attempts and backlog (rising while it is stopped), parked events.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../broker/in-process.ts';
import { createNatsTransport, streamNameOf } from '../broker/nats.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { WrongExpectedVersionError } from '../eventstore/errors.ts';
import type { IntegrationEvent, IntegrationTransport } from '../eventstore/integration.ts';
import { instrumentTransport } from '../eventstore/metrics.ts';
import { createParkingLot } from '../eventstore/parking.ts';
import { migrateEventStore } from '../eventstore/schema.ts';
import { createEventStore, type EventStore } from '../eventstore/store.ts';
import type { Subscription } from '../eventstore/subscribe.ts';
import { delay, eventually } from '../eventstore/testing/fixture.ts';
import { LAG_CACHE_MS, createServiceMetrics, type ServiceMetrics } from './serviceMetrics.ts';
import { scrape, type Scrape } from './testing/scrape.ts';

const SHARED_NATS = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';

let db: TestDatabase;
let metrics: ServiceMetrics;
let store: EventStore;
let server: http.Server;
let url: string;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await createTestDatabase('metrics_service');
  await migrateEventStore(db.pool);
  metrics = createServiceMetrics({ service: 'lagtest', pool: db.pool });
  store = createEventStore({ pool: db.pool, metrics: metrics.store });
  server = http.createServer((req, res) => void metrics.handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});

afterAll(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => {});
  await store?.close();
  await new Promise((resolve) => server?.close(resolve));
  await db?.drop();
});

/** A scrape that reads the lag afresh (past the cache of the previous one). */
async function freshScrape(): Promise<Scrape> {
  await delay(LAG_CACHE_MS + 20);
  return scrape(url);
}

const ping = (n: number) => ({ type: 'Ping', data: { n } });

describe('appends', () => {
  it('counts batches by outcome, the events stored, and each statement\'s duration', async () => {
    const before = await scrape(url);
    const stream = `metrics-${randomUUID()}`;
    const batch = [ping(1), ping(2), ping(3)].map((e) => ({ ...e, eventId: randomUUID() }));
    await store.appendToStream(stream, batch, { expectedVersion: 'no_stream' });
    await expect(store.appendToStream(stream, [ping(4)], { expectedVersion: 'no_stream' })).rejects.toBeInstanceOf(WrongExpectedVersionError);
    // The same event ids again: an idempotent retry, nothing stored.
    expect((await store.appendToStream(stream, batch, { expectedVersion: 'no_stream' })).duplicate).toBe(true);
    const after = await scrape(url);
    const delta = (name: string, labels: Record<string, string> = {}) => after.value(name, labels) - before.value(name, labels);
    expect(delta('flowgraph_eventstore_append_batches_total', { outcome: 'ok' })).toBe(1);
    expect(delta('flowgraph_eventstore_append_batches_total', { outcome: 'conflict' })).toBe(1);
    expect(delta('flowgraph_eventstore_append_batches_total', { outcome: 'duplicate' })).toBe(1);
    expect(delta('flowgraph_eventstore_appended_events_total')).toBe(3);
    expect(delta('flowgraph_eventstore_append_duration_seconds_count', { outcome: 'ok' })).toBe(1);
    expect(after.value('flowgraph_eventstore_append_duration_seconds_sum', { outcome: 'ok' })).toBeGreaterThan(0);
    expect(after.types.get('flowgraph_eventstore_append_duration_seconds')).toBe('histogram');
    expect(after.value('flowgraph_db_pool_max_clients', { service: 'lagtest' })).toBe(db.pool.options.max ?? 10);
    expect(after.value('flowgraph_db_pool_clients')).toBeGreaterThanOrEqual(after.value('flowgraph_db_pool_idle_clients'));
  });
});

describe('a subscription', () => {
  it('reports handled events and a lag that rises while it is stopped and returns to 0 after it resumes', async () => {
    const name = `lagging-${randomUUID()}`;
    const stream = `lag-${randomUUID()}`;
    // A type of its own: the appends of the other tests are not its events.
    const lagged = (n: number) => ({ type: 'Lagged', data: { n } });
    const start = (): Subscription =>
      store.subscribe({ name, types: ['Lagged'], pollIntervalMs: 50, handler: async () => {} });
    let subscription = start();
    await store.appendToStream(stream, [lagged(1), lagged(2)]);
    await eventually(async () => (await freshScrape()).value('flowgraph_subscription_handled_events_total', { subscription: name }) === 2, 20_000, 'two handled');
    const caughtUp = await freshScrape();
    expect(caughtUp.value('flowgraph_subscription_lag_events', { subscription: name })).toBe(0);
    expect(caughtUp.value('flowgraph_subscription_lag_seconds', { subscription: name })).toBe(0);
    // The scrape's own lag query is not a client waiting for the (idle) pool.
    expect(caughtUp.value('flowgraph_db_pool_waiting_clients')).toBe(0);

    await subscription.close();
    await store.appendToStream(stream, [lagged(3), lagged(4), lagged(5)]);
    // Another type: not this subscription's, not its lag.
    await store.appendToStream(`other-${randomUUID()}`, [{ type: 'Other', data: {} }]);
    const stopped = await freshScrape();
    expect(stopped.value('flowgraph_subscription_lag_events', { subscription: name })).toBe(3);
    const seconds = stopped.value('flowgraph_subscription_lag_seconds', { subscription: name });
    expect(seconds).toBeGreaterThan(LAG_CACHE_MS / 1000);
    expect(seconds).toBeLessThan(60);
    // The lag in seconds keeps growing while nobody handles the oldest event.
    const later = await freshScrape();
    expect(later.value('flowgraph_subscription_lag_seconds', { subscription: name })).toBeGreaterThan(seconds);

    subscription = start();
    cleanups.push(() => subscription.close());
    await eventually(async () => (await freshScrape()).value('flowgraph_subscription_lag_events', { subscription: name }) === 0, 20_000, 'lag back to 0');
    const resumed = await scrape(url);
    expect(resumed.value('flowgraph_subscription_lag_seconds', { subscription: name })).toBe(0);
    expect(resumed.value('flowgraph_subscription_handled_events_total', { subscription: name })).toBe(5);
  });

  it('counts a batch whose handler failed as a retry', async () => {
    const name = `flaky-${randomUUID()}`;
    let calls = 0;
    const subscription = store.subscribe({
      name,
      types: ['Flaky'],
      pollIntervalMs: 50,
      retryDelayMs: 20,
      handler: async () => {
        calls++;
        if (calls === 1) throw new Error('the read model is briefly unavailable');
      },
    });
    cleanups.push(() => subscription.close());
    await store.appendToStream(`flaky-${randomUUID()}`, [{ type: 'Flaky', data: {} }]);
    await eventually(async () => (await scrape(url)).value('flowgraph_subscription_handled_events_total', { subscription: name }) === 1, 20_000, 'handled after a retry');
    expect((await scrape(url)).value('flowgraph_subscription_retries_total', { subscription: name })).toBe(1);
  });
});

describe('integration consumers', () => {
  /** A NATS transport on its own namespace; its stream is deleted afterwards. */
  async function natsTransport(): Promise<IntegrationTransport> {
    const namespace = `m${randomBytes(4).toString('hex')}`;
    const transport = await createNatsTransport({ url: SHARED_NATS, sources: ['alpha'], namespace });
    cleanups.push(async () => {
      const nc = await connect({ servers: SHARED_NATS });
      try {
        await (await jetstreamManager(nc)).streams.delete(streamNameOf('alpha', namespace));
      } finally {
        await nc.close();
      }
    });
    cleanups.push(() => transport.close());
    return transport;
  }
  const event = (n: number): IntegrationEvent => ({
    eventId: randomUUID(),
    source: 'alpha',
    type: 'Pinged',
    schemaVersion: 1,
    streamId: 'pings',
    streamPosition: n,
    data: { n },
    metadata: { correlationId: `c-${n}` },
    occurredAt: new Date().toISOString(),
    position: { transactionId: String(n + 1), globalPosition: String(n + 1) },
  });

  it('over NATS: handled events, a failed attempt, and a backlog that rises while the consumer is stopped and drains after', async () => {
    const transport = instrumentTransport(await natsTransport(), metrics.store);
    const consumer = `beta-from-alpha-${randomBytes(3).toString('hex')}`;
    let failOnce = true;
    const start = () =>
      transport.consume({
        consumer,
        source: 'alpha',
        types: ['Pinged'],
        handler: async () => {
          if (failOnce) {
            failOnce = false;
            throw new Error('inbox transaction failed');
          }
        },
      });
    let running = await start();
    await transport.publish([event(0), event(1)]);
    await eventually(async () => (await scrape(url)).value('flowgraph_consumer_handled_events_total', { consumer }) === 2, 20_000, 'two handled');
    const drained = await freshScrape();
    expect(drained.value('flowgraph_consumer_failed_attempts_total', { consumer })).toBe(1);
    expect(drained.value('flowgraph_nats_consumer_pending_messages', { consumer })).toBe(0);
    expect(drained.value('flowgraph_nats_consumer_ack_pending_messages', { consumer })).toBe(0);

    await running.close();
    await transport.publish([event(2), event(3), event(4)]);
    const stopped = await freshScrape();
    expect(stopped.value('flowgraph_nats_consumer_pending_messages', { consumer })).toBe(3);

    running = await start();
    cleanups.push(() => running.close());
    await eventually(async () => (await freshScrape()).value('flowgraph_nats_consumer_pending_messages', { consumer }) === 0, 20_000, 'backlog drained');
    await eventually(async () => (await scrape(url)).value('flowgraph_consumer_handled_events_total', { consumer }) === 5, 20_000, 'five handled');
  });

  it('reports the events a consumer parked, by consumer', async () => {
    const lot = createParkingLot({ store, maxAttempts: 1 });
    cleanups.push(() => lot.close());
    const inner = createInProcessTransport();
    cleanups.push(() => inner.close());
    const transport = instrumentTransport(lot.wrap(inner), metrics.store);
    const consumer = `poisoned-${randomBytes(3).toString('hex')}`;
    await transport.consume({
      consumer,
      source: 'alpha',
      handler: async () => {
        throw new Error('cannot handle this one');
      },
    });
    expect((await freshScrape()).value('flowgraph_consumer_parked_events', { consumer })).toBe(0);
    await inner.publish([event(0)]);
    const parked = await freshScrape();
    expect(parked.value('flowgraph_consumer_parked_events', { consumer })).toBe(1);
    expect(parked.value('flowgraph_consumer_failed_attempts_total', { consumer })).toBe(1);
    expect(parked.value('flowgraph_consumer_handled_events_total', { consumer })).toBe(0);
  });
});
