/**
 * Integration events across two service databases, over the in-process transport, the
 * machine's NATS and a private NATS that is restarted while events flow. After each
 * disruption, every event has been handled exactly once.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import {
  createEventStore,
  handleOnce,
  migrateEventStore,
  startRelay,
  type EventStore,
  type IntegrationEvent,
  type IntegrationTransport,
  type PublicEvents,
  type Subscription,
} from '../eventstore/index.ts';
import { delay, eventually } from '../eventstore/testing/fixture.ts';
import { createInProcessTransport } from './in-process.ts';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createNatsTransport, streamNameOf } from './nats.ts';
import { startPrivateNats, type PrivateNats } from './testing/private-nats.ts';

const SHARED_NATS = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const publicEvents: PublicEvents = { Pinged: { version: 1, schema: z.object({ n: z.number().int() }) } };

interface World {
  alphaDb: TestDatabase;
  betaDb: TestDatabase;
  alpha: EventStore;
  beta: EventStore;
}
let world: World;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  const alphaDb = await createTestDatabase('prop_alpha');
  const betaDb = await createTestDatabase('prop_beta');
  await migrateEventStore(alphaDb.pool);
  await migrateEventStore(betaDb.pool);
  world = { alphaDb, betaDb, alpha: createEventStore({ pool: alphaDb.pool }), beta: createEventStore({ pool: betaDb.pool }) };
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
  await world.alpha.close();
  await world.beta.close();
  await world.alphaDb.drop();
  await world.betaDb.drop();
});

const fastSubscription = { pollIntervalMs: 50, standbyRetryMs: 100, retryDelayMs: 50 };

/** Deletes the test's JetStream stream from the shared NATS after the test. */
function removeStreamAfterwards(namespace: string) {
  cleanups.unshift(async () => {
    const nc = await connect({ servers: SHARED_NATS });
    try {
      await (await jetstreamManager(nc)).streams.delete(streamNameOf('alpha', namespace));
    } finally {
      await nc.close();
    }
  });
}

function relay(transport: IntegrationTransport): Subscription {
  const r = startRelay(world.alpha, { source: 'alpha', publicEvents, transport, batchSize: 50, subscription: fastSubscription });
  cleanups.push(() => r.close());
  return r;
}

/** beta's effect: one Ponged event per Pinged, with the inbox row in the same transaction. */
async function consume(transport: IntegrationTransport, consumer = 'beta-from-alpha', beforeAck?: (e: IntegrationEvent) => void) {
  const c = await transport.consume({
    consumer,
    source: 'alpha',
    types: ['Pinged'],
    handler: async (event) => {
      await handleOnce(world.beta, event, (tx) =>
        tx.appendToStream('pongs', [{ type: 'Ponged', data: event.data, metadata: { causationId: event.eventId, correlationId: event.metadata.correlationId } }]),
      );
      beforeAck?.(event);
    },
  });
  cleanups.push(() => c.close());
  return c;
}

async function ping(from: number, count: number) {
  for (let i = from; i < from + count; i += 10) {
    await world.alpha.appendToStream(
      `pinger-${i % 3}`,
      Array.from({ length: Math.min(10, from + count - i) }, (_, k) => ({ type: 'Pinged', data: { n: i + k }, metadata: { correlationId: `c-${i + k}` } })),
    );
  }
}

async function expectEachHandledOnce(total: number) {
  await eventually(async () => (await world.beta.readStream('pongs')).length >= total, 60_000, `${total} pongs`);
  await delay(300);
  const pongs = await world.beta.readStream('pongs');
  expect(pongs).toHaveLength(total);
  expect(new Set(pongs.map((p) => (p.data as { n: number }).n)).size).toBe(total);
  expect(new Set(pongs.map((p) => p.metadata.causationId)).size).toBe(total);
  const { rows } = await world.betaDb.pool.query(`SELECT count(*)::int AS n FROM eventstore.inbox WHERE source = 'alpha'`);
  expect(rows[0].n).toBe(total);
}

describe('in-process transport', () => {
  it('delivers every public event once, with its correlation id, and keeps the relay checkpoint behind the consumer', async () => {
    const transport = createInProcessTransport();
    cleanups.push(() => transport.close());
    let failOnce = true;
    await consume(transport, 'beta-from-alpha', () => {
      // Crash after the inbox commit, before the relay's checkpoint moves: redelivered, absorbed.
      if (failOnce) {
        failOnce = false;
        throw new Error('consumer crashed before ack');
      }
    });
    await world.alpha.appendToStream('private', [{ type: 'SecretKept', data: {} }]);
    relay(transport);
    await ping(0, 200);
    await expectEachHandledOnce(200);
    const pongs = await world.beta.readStream('pongs');
    expect(pongs[0]?.metadata.correlationId).toBe('c-0');
  });
});

describe('NATS JetStream transport', () => {
  it('relay restarted mid-batch and a consumer that crashes before ack: every event handled exactly once', async () => {
    const namespace = `t${randomBytes(4).toString('hex')}`;
    const transport = await createNatsTransport({ url: SHARED_NATS, sources: ['alpha'], namespace });
    removeStreamAfterwards(namespace);
    cleanups.push(() => transport.close());
    let crashes = 0;
    await consume(transport, 'beta-from-alpha', (e) => {
      if ((e.data as { n: number }).n % 97 === 5 && crashes < 5) {
        crashes++;
        throw new Error('consumer crashed before ack');
      }
    });
    let r = relay(transport);
    const writing = ping(0, 1000);
    await delay(150);
    await r.close(); // mid-batch: the next relay resumes from the checkpoint, NATS drops duplicates
    r = relay(transport);
    await writing;
    await expectEachHandledOnce(1000);
    expect(crashes).toBeGreaterThan(0);
  });

  it('a restarted consumer resumes from its durable position', async () => {
    const namespace = `t${randomBytes(4).toString('hex')}`;
    const transport = await createNatsTransport({ url: SHARED_NATS, sources: ['alpha'], namespace });
    removeStreamAfterwards(namespace);
    cleanups.push(() => transport.close());
    relay(transport);
    const first = await consume(transport);
    await ping(0, 100);
    await eventually(async () => (await world.beta.readStream('pongs')).length >= 100);
    await first.close();
    await ping(100, 100);
    await consume(transport);
    await expectEachHandledOnce(200);
  });

  it('NATS restarted while events flow: nothing lost, nothing handled twice', async () => {
    const nats: PrivateNats = await startPrivateNats();
    cleanups.push(() => nats.dispose());
    const transport = await createNatsTransport({ url: nats.url, sources: ['alpha'] });
    cleanups.push(() => transport.close());
    relay(transport);
    await consume(transport);
    const writing = ping(0, 1500);
    await delay(300);
    await nats.stop();
    const handledBeforeRestart = (await world.beta.readStream('pongs')).length;
    expect(handledBeforeRestart).toBeLessThan(1500);
    await delay(1000);
    await nats.start();
    await writing;
    await expectEachHandledOnce(1500);
  }, 120_000);
});
