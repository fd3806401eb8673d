/**
 * Poison events parked (DESIGN.md, "Poison events"), over the in-process transport and over
 * real NATS JetStream: a handler that always throws parks its event after N attempts, the later
 * events of its stream wait behind it, other streams flow on; an event the consumer's schema
 * rejects is parked at once; transient failures never count; retry and skip release the stream;
 * bad ids change nothing.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createInProcessTransport } from '../broker/in-process.ts';
import { createNatsTransport, streamNameOf } from '../broker/nats.ts';
import { handleBatchOnce, handleOnce } from './inbox.ts';
import type { IntegrationConsumer, IntegrationEvent, IntegrationTransport } from './integration.ts';
import {
  countParkedEvents,
  createParkingLot,
  EventRejectedError,
  PARKED_EVENT_SKIPPED,
  ParkedEventInputError,
  ParkedEventNotFoundError,
  parkedEventsStreamId,
  type ParkingLot,
} from './parking.ts';
import { createStoreFixture, delay, eventually, type StoreFixture } from './testing/fixture.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const SOURCE = 'alpha';
const MAX_ATTEMPTS = 3;

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('parking');
});
afterAll(async () => {
  await fx.close();
});

let position = 0;
function event(streamId: string, data: Record<string, unknown> = {}): IntegrationEvent {
  position += 1;
  return {
    eventId: randomUUID(),
    source: SOURCE,
    type: 'Thing',
    schemaVersion: 1,
    streamId,
    streamPosition: position,
    data,
    metadata: { correlationId: `corr-${position}` },
    occurredAt: new Date().toISOString(),
    position: { transactionId: String(position), globalPosition: String(position) },
  };
}

interface Harness {
  transport: IntegrationTransport;
  /** Publishes like a relay: again and again until the transport acknowledges (the in-process one fails while a handler fails). */
  publish(events: IntegrationEvent[]): Promise<void>;
  close(): Promise<void>;
}

const transports: { name: string; open(): Promise<Harness> }[] = [
  {
    name: 'in-process',
    async open() {
      const transport = createInProcessTransport();
      return {
        transport,
        async publish(events) {
          for (;;) {
            try {
              return await transport.publish(events);
            } catch {
              await delay(10);
            }
          }
        },
        close: () => transport.close(),
      };
    },
  },
  {
    name: 'NATS',
    async open() {
      const namespace = `park${randomUUID().slice(0, 8)}`;
      const transport = await createNatsTransport({ url: NATS_URL, sources: [SOURCE], namespace });
      return {
        transport,
        publish: (events) => transport.publish(events),
        async close() {
          await transport.close();
          const nc = await connect({ servers: NATS_URL });
          const jsm = await jetstreamManager(nc);
          await jsm.streams.delete(streamNameOf(SOURCE, namespace)).catch(() => {});
          await nc.close();
        },
      };
    },
  },
];

const cases = transports.flatMap((t) => [
  { ...t, batch: false, form: 'one event per call' },
  { ...t, batch: true, form: 'batches (handleBatch)' },
]);

describe.each(cases)('poison events over the $name transport, $form', ({ open, batch }) => {
  let harness: Harness;
  let lot: ParkingLot;
  let consumer: IntegrationConsumer;
  /** Event ids the consumer's handler committed, in order. */
  let handled: string[];
  /** Calls of `handler` per event id. */
  let attempts: Map<string, number>;
  /** Calls of `handleBatch` per event id (batch form). */
  let batchAttempts: Map<string, number>;
  /** How the handler fails for an event id (until removed). */
  let failures: Map<string, () => Error>;
  let consumerName: string;

  async function start(): Promise<void> {
    harness = await open();
    lot = createParkingLot({ store: fx.store, maxAttempts: MAX_ATTEMPTS, releaseBackoffMs: 20 });
    handled = [];
    attempts = new Map();
    batchAttempts = new Map();
    failures = new Map();
    consumerName = `test-${randomUUID().slice(0, 8)}`;
    consumer = await lot.wrap(harness.transport).consume({
      consumer: consumerName,
      source: SOURCE,
      async handler(e) {
        attempts.set(e.eventId, (attempts.get(e.eventId) ?? 0) + 1);
        const fail = failures.get(e.eventId);
        if (fail) throw fail();
        const outcome = await handleOnce(fx.store, e, async () => undefined);
        if (outcome.handled) handled.push(e.eventId);
      },
      // The batch form fails as a whole when one of its events does (parking then handles them one by one).
      ...(batch
        ? {
            async handleBatch(events: IntegrationEvent[]) {
              for (const e of events) batchAttempts.set(e.eventId, (batchAttempts.get(e.eventId) ?? 0) + 1);
              const failing = events.find((e) => failures.has(e.eventId));
              if (failing) throw failures.get(failing.eventId)!();
              const outcome = await handleBatchOnce(fx.store, events, async () => undefined);
              handled.push(...outcome.handled.map((e) => e.eventId));
            },
          }
        : {}),
    });
  }
  afterEach(async () => {
    await consumer?.close();
    await lot?.close();
    await harness?.close();
  });

  it('parks an event whose handler always throws after N attempts; later events of its stream wait, other streams flow on', async () => {
    await start();
    const stream = `s-${randomUUID()}`;
    const other = `o-${randomUUID()}`;
    const poison = event(stream);
    const behind = event(stream);
    const elsewhere = event(other);
    failures.set(poison.eventId, () => new Error('handler bug'));
    await harness.publish([poison, behind, elsewhere]);

    // (Over NATS the streams are published side by side: `elsewhere` may come first.)
    await eventually(async () => (await lot.list({ consumer: consumerName }))[0]?.waiting === 1 && handled.includes(elsewhere.eventId), 30_000, 'the park');
    const [parked] = await lot.list({ consumer: consumerName });
    expect(parked).toMatchObject({ eventId: poison.eventId, status: 'PARKED', attempts: MAX_ATTEMPTS, streamId: stream, error: 'Error: handler bug', waiting: 1 });
    expect(parked!.parkedAt).toBeInstanceOf(Date);
    expect(attempts.get(poison.eventId)).toBe(MAX_ATTEMPTS);
    expect(handled).not.toContain(behind.eventId);
    expect((await countParkedEvents(fx.db.pool))[consumerName]).toBe(1);

    // A later event of another stream still flows; one of the parked stream still waits.
    const later = event(other);
    const laterBehind = event(stream);
    await harness.publish([later, laterBehind]);
    await eventually(async () => handled.includes(later.eventId) && (await lot.get(parked!.id)).waiting === 2, 30_000, 'the other stream');
    expect(handled).not.toContain(laterBehind.eventId);

    // Healed and retried: the parked event, then the waiting ones, in stream order.
    failures.delete(poison.eventId);
    const retried = await lot.retry(parked!.id, 'operator-1');
    expect(retried).toMatchObject({ status: 'RETRIED', resolvedBy: 'operator-1', attempts: MAX_ATTEMPTS + 1 });
    await eventually(() => handled.includes(laterBehind.eventId), 30_000, 'the held events');
    await lot.idle();
    const order = handled.filter((id) => [poison.eventId, behind.eventId, laterBehind.eventId].includes(id));
    expect(order).toEqual([poison.eventId, behind.eventId, laterBehind.eventId]);
    expect(await lot.list({ consumer: consumerName })).toEqual([]);

    // The stream is free again: a new event of it is handled directly.
    const after = event(stream);
    await harness.publish([after]);
    await eventually(() => handled.includes(after.eventId), 30_000, 'the freed stream');
  });

  it('parks an event its schema rejects at the first attempt', async () => {
    await start();
    const rejected = event(`s-${randomUUID()}`, { bad: true });
    failures.set(rejected.eventId, () => new EventRejectedError('Thing', 'documentId: Required'));
    await harness.publish([rejected]);
    await eventually(async () => (await lot.list({ consumer: consumerName })).length === 1, 30_000, 'the park');
    const [parked] = await lot.list({ consumer: consumerName });
    expect(parked).toMatchObject({ eventId: rejected.eventId, status: 'PARKED', attempts: 1 });
    expect(parked!.error).toMatch(/rejected by the consumer's schema: documentId: Required/);
    expect(attempts.get(rejected.eventId)).toBe(1);
  });

  it('does not count transient failures (database unavailable) towards parking', async () => {
    await start();
    const flaky = event(`s-${randomUUID()}`);
    let left = MAX_ATTEMPTS * 2;
    failures.set(flaky.eventId, () => {
      if (--left === 0) failures.delete(flaky.eventId);
      return Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' });
    });
    await harness.publish([flaky]);
    await eventually(() => handled.includes(flaky.eventId), 60_000, 'the flaky event');
    expect((attempts.get(flaky.eventId) ?? 0) + (batchAttempts.get(flaky.eventId) ?? 0)).toBe(MAX_ATTEMPTS * 2 + 1);
    expect(await lot.list({ consumer: consumerName, includeResolved: true })).toEqual([]);
  });

  it('skip records ParkedEventSkipped and the inbox row, and lets the stream go on; a redelivery has no effect', async () => {
    await start();
    const stream = `s-${randomUUID()}`;
    const poison = event(stream, { n: 1 });
    const behind = event(stream);
    failures.set(poison.eventId, () => new Error('always'));
    await harness.publish([poison, behind]);
    await eventually(async () => (await lot.list({ consumer: consumerName })).length === 1, 30_000, 'the park');
    const [parked] = await lot.list({ consumer: consumerName });

    const skipped = await lot.skip(parked!.id, 'operator-2');
    expect(skipped).toMatchObject({ status: 'SKIPPED', resolvedBy: 'operator-2' });
    await eventually(() => handled.includes(behind.eventId), 30_000, 'the held event');
    const recorded = await fx.store.readStream(parkedEventsStreamId(consumerName));
    expect(recorded.map((e) => e.type)).toEqual([PARKED_EVENT_SKIPPED]);
    expect(recorded[0]!.data).toMatchObject({ eventId: poison.eventId, consumer: consumerName, source: SOURCE, attempts: MAX_ATTEMPTS, error: 'Error: always' });
    expect(recorded[0]!.metadata).toMatchObject({ actor: 'operator-2', causationId: poison.eventId });
    const inbox = await fx.db.pool.query('SELECT 1 FROM eventstore.inbox WHERE source = $1 AND event_id = $2', [SOURCE, poison.eventId]);
    expect(inbox.rowCount).toBe(1);

    // Redelivered (a relay restarting from an older checkpoint): the handler is not called again.
    failures.delete(poison.eventId);
    const before = attempts.get(poison.eventId);
    const marker = event(stream);
    await harness.publish([poison, marker]);
    await eventually(() => handled.includes(marker.eventId), 30_000, 'the marker');
    expect(attempts.get(poison.eventId)).toBe(before);
    expect(handled).not.toContain(poison.eventId);
  });

  it('a retry and a skip of one parked event at once run one after the other: never skipped with its effect applied; of two retries one is NOT_PARKED', async () => {
    await start();
    for (let trial = 0; trial < 3; trial++) {
      const poison = event(`s-${randomUUID()}`);
      failures.set(poison.eventId, () => new Error('until healed'));
      await harness.publish([poison]);
      await eventually(async () => (await lot.list({ consumer: consumerName })).some((p) => p.eventId === poison.eventId), 30_000, 'the park');
      const parked = (await lot.list({ consumer: consumerName })).find((p) => p.eventId === poison.eventId)!;
      failures.delete(poison.eventId);
      const [retry, skip] = await Promise.allSettled([lot.retry(parked.id, 'op-retry'), lot.skip(parked.id, 'op-skip')]);
      const outcomes = [retry, skip].filter((o) => o.status === 'fulfilled');
      expect(outcomes).toHaveLength(1);
      const loser = [retry, skip].find((o) => o.status === 'rejected') as PromiseRejectedResult;
      expect(loser.reason).toMatchObject({ name: 'ParkedEventInputError', reason: 'NOT_PARKED' });
      const skippedRecorded = (await fx.store.readStream(parkedEventsStreamId(consumerName))).some((e) => (e.data as { parkedEventId?: string }).parkedEventId === parked.id);
      const applied = handled.includes(poison.eventId);
      expect({ applied, skippedRecorded }).toEqual(retry.status === 'fulfilled' ? { applied: true, skippedRecorded: false } : { applied: false, skippedRecorded: true });
    }
    const poison = event(`s-${randomUUID()}`);
    failures.set(poison.eventId, () => new Error('until healed'));
    await harness.publish([poison]);
    await eventually(async () => (await lot.list({ consumer: consumerName })).some((p) => p.eventId === poison.eventId), 30_000, 'the park');
    const parked = (await lot.list({ consumer: consumerName })).find((p) => p.eventId === poison.eventId)!;
    failures.delete(poison.eventId);
    const both = await Promise.allSettled([lot.retry(parked.id, 'a'), lot.retry(parked.id, 'b')]);
    expect(both.filter((o) => o.status === 'fulfilled')).toHaveLength(1);
    expect((both.find((o) => o.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ reason: 'NOT_PARKED' });
    expect(handled.filter((id) => id === poison.eventId)).toHaveLength(1);
  });

  it('refuses bad ids with typed errors and changes nothing', async () => {
    await start();
    const poison = event(`s-${randomUUID()}`);
    failures.set(poison.eventId, () => new EventRejectedError('Thing', 'bad'));
    await harness.publish([poison]);
    await eventually(async () => (await lot.list({ consumer: consumerName })).length === 1, 30_000, 'the park');
    const snapshot = async () => (await fx.db.pool.query('SELECT * FROM eventstore.parked_events ORDER BY id')).rows;
    const eventsBefore = (await fx.db.pool.query('SELECT count(*)::int AS n FROM eventstore.events')).rows[0].n;
    const rowsBefore = await snapshot();

    for (const bad of ['abc', '0', '-1', '1.5', '', '99999999999999999999']) {
      await expect(lot.retry(bad)).rejects.toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_ID' });
      await expect(lot.skip(bad)).rejects.toBeInstanceOf(ParkedEventInputError);
    }
    await expect(lot.retry('999999999')).rejects.toBeInstanceOf(ParkedEventNotFoundError);
    await expect(lot.skip('999999999')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    expect(await snapshot()).toEqual(rowsBefore);
    expect((await fx.db.pool.query('SELECT count(*)::int AS n FROM eventstore.events')).rows[0].n).toBe(eventsBefore);

    // Resolved once, it cannot be resolved again.
    const [parked] = await lot.list({ consumer: consumerName });
    await lot.skip(parked!.id);
    await expect(lot.retry(parked!.id)).rejects.toMatchObject({ code: 'BAD_USER_INPUT', reason: 'NOT_PARKED' });
    await expect(lot.skip(parked!.id)).rejects.toMatchObject({ reason: 'NOT_PARKED' });
    expect((await fx.store.readStream(parkedEventsStreamId(consumerName))).length).toBe(1);
  });
});
