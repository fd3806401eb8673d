/**
 * Integration events across two service databases, over the in-process transport, the
 * machine's NATS and a private NATS that is restarted while events flow. After each
 * disruption, every event has been handled exactly once and, per source stream, in order
 * (stream positions strictly increasing without gaps).
 */
import { randomBytes } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import {
  compareLogPositions,
  createEventStore,
  handleOnce,
  migrateEventStore,
  startRelay,
  type EventStore,
  type IntegrationEvent,
  type IntegrationTransport,
  type LogPosition,
  type PublicEvents,
  type Subscription,
} from '../eventstore/index.ts';
import { ADVISORY_LOCK } from '../eventstore/schema.ts';
import { delay, eventually, gate } from '../eventstore/testing/fixture.ts';
import { createInProcessTransport } from './in-process.ts';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createNatsTransport, streamNameOf } from './nats.ts';
import { interceptPublish } from './testing/intercepted-transport.ts';
import { startPrivateNats, type PrivateNats } from './testing/private-nats.ts';

const SHARED_NATS = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const publicEvents: PublicEvents = { Pinged: { version: 1, schema: z.object({ n: z.number().int() }) } };
const RELAY = 'relay:alpha';
/** The in-process transport's lane of alpha's relay for the consumer `beta-from-alpha`. */
const LANE = 'relay:alpha/beta-from-alpha';
const STREAMS = ['pinger-0', 'pinger-1', 'pinger-2'];

interface World {
  alphaDb: TestDatabase;
  betaDb: TestDatabase;
  alpha: EventStore;
  beta: EventStore;
  /** Per source stream, the stream positions of the events beta handled (inbox committed), in handling order. */
  handled: Map<string, number[]>;
}
let world: World;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  const alphaDb = await createTestDatabase('prop_alpha');
  const betaDb = await createTestDatabase('prop_beta');
  await migrateEventStore(alphaDb.pool);
  await migrateEventStore(betaDb.pool);
  world = { alphaDb, betaDb, alpha: createEventStore({ pool: alphaDb.pool }), beta: createEventStore({ pool: betaDb.pool }), handled: new Map() };
});
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
  await world.alpha.close();
  await world.beta.close();
  await world.alphaDb.drop();
  await world.betaDb.drop();
});

const fastSubscription = { pollIntervalMs: 50, standbyRetryMs: 100, retryDelayMs: 50 };

/** Messages stored in alpha's JetStream stream: one per event when the broker dropped every duplicate. */
async function storedMessages(url: string, namespace?: string): Promise<number> {
  const nc = await connect({ servers: url });
  try {
    return (await (await jetstreamManager(nc)).streams.info(streamNameOf('alpha', namespace))).state.messages;
  } finally {
    await nc.close();
  }
}

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

/** Starts alpha's relay; `store` defaults to alpha's (another store on the same database acts as a second process). */
function relay(transport: IntegrationTransport, store = world.alpha): Subscription {
  const r = startRelay(store, { source: 'alpha', publicEvents, transport, batchSize: 50, subscription: fastSubscription });
  cleanups.push(() => r.close());
  return r;
}

/** The relay's committed checkpoint, read from alpha's database (null before its first commit). */
async function relayCheckpoint(name = RELAY): Promise<LogPosition | null> {
  const { rows } = await world.alphaDb.pool.query<{ transaction_id: string; global_position: string }>(
    `SELECT transaction_id::text AS transaction_id, global_position::text AS global_position FROM eventstore.checkpoints WHERE subscription_name = $1`,
    [name],
  );
  return rows[0] ? { transactionId: rows[0].transaction_id, globalPosition: rows[0].global_position } : null;
}

/** Kills the PostgreSQL session holding the relay's advisory lock (the active relay's connection) and waits until it is gone. */
async function killActiveRelayConnection(name = RELAY): Promise<void> {
  const { rows } = await world.alphaDb.pool.query<{ pid: number }>(
    `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = $1
        AND objid = (hashtext($2)::bigint & 4294967295)::text::oid AND objsubid = 2`,
    [ADVISORY_LOCK.subscriptionsNamespace, name],
  );
  expect(rows).toHaveLength(1);
  const pid = rows[0]!.pid;
  await world.alphaDb.pool.query('SELECT pg_terminate_backend($1)', [pid]);
  await eventually(
    async () => (await world.alphaDb.pool.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0,
    10_000,
    'relay backend gone',
  );
}

/**
 * beta's effect: one Ponged event per Pinged, with the inbox row in the same transaction;
 * records the stream position of each event actually handled. `beforeAck` runs after the
 * commit, before the transport is told the event was handled.
 */
async function consume(transport: IntegrationTransport, consumer = 'beta-from-alpha', beforeAck?: (e: IntegrationEvent) => void | Promise<void>) {
  const c = await transport.consume({
    consumer,
    source: 'alpha',
    types: ['Pinged'],
    handler: async (event) => {
      const outcome = await handleOnce(world.beta, event, (tx) =>
        tx.appendToStream('pongs', [{ type: 'Ponged', data: event.data, metadata: { causationId: event.eventId, correlationId: event.metadata.correlationId } }]),
      );
      if (outcome.handled) world.handled.set(event.streamId, [...(world.handled.get(event.streamId) ?? []), event.streamPosition]);
      await beforeAck?.(event);
    },
  });
  cleanups.push(() => c.close());
  return c;
}

/** Appends `count` Pinged events (n = from..from+count-1), 10 per append, cycling over pinger-0..2. */
async function ping(from: number, count: number) {
  for (let i = from; i < from + count; i += 10) {
    await world.alpha.appendToStream(
      `pinger-${i % 3}`,
      Array.from({ length: Math.min(10, from + count - i) }, (_, k) => ({ type: 'Pinged', data: { n: i + k }, metadata: { correlationId: `c-${i + k}` } })),
    );
  }
}

/** Every one of `total` events handled exactly once, and per source stream in order without gaps. */
async function expectEachHandledOnce(total: number) {
  await eventually(async () => (await world.beta.readStream('pongs')).length >= total, 60_000, `${total} pongs`);
  await delay(300);
  const pongs = await world.beta.readStream('pongs');
  expect(pongs).toHaveLength(total);
  expect(new Set(pongs.map((p) => (p.data as { n: number }).n)).size).toBe(total);
  expect(new Set(pongs.map((p) => p.metadata.causationId)).size).toBe(total);
  const { rows } = await world.betaDb.pool.query(`SELECT count(*)::int AS n FROM eventstore.inbox WHERE source = 'alpha'`);
  expect(rows[0].n).toBe(total);
  expect([...world.handled.keys()].sort()).toEqual(STREAMS);
  for (const stream of STREAMS) {
    const length = (await world.alpha.readStream(stream)).length;
    expect(length).toBeGreaterThan(0);
    expect(world.handled.get(stream), `handling order of ${stream}`).toEqual(Array.from({ length }, (_, i) => i));
  }
}

describe('in-process transport', () => {
  it('delivers every public event once, in stream order, with its correlation id, and keeps its lane checkpoint behind the consumer', async () => {
    const transport = createInProcessTransport();
    cleanups.push(() => transport.close());
    let failOnce = true;
    const held = gate();
    let blocked: IntegrationEvent | undefined;
    await consume(transport, 'beta-from-alpha', async (event) => {
      // Crash after the inbox commit, before its lane's checkpoint moves: redelivered, absorbed.
      if (failOnce) {
        failOnce = false;
        throw new Error('consumer crashed before ack');
      }
      // Committed but not yet acknowledged: the lane must not move past it.
      if ((event.data as { n: number }).n === 150) {
        blocked = event;
        await held.promise;
      }
    });
    await world.alpha.appendToStream('private', [{ type: 'SecretKept', data: {} }]);
    relay(transport);
    const writing = ping(0, 200);
    await eventually(() => blocked !== undefined, 20_000, 'consumer blocked on n=150');
    await delay(500); // give a checkpoint that wrongly moves the time to move
    const behind = await relayCheckpoint(LANE);
    expect(behind, 'earlier batches committed').not.toBeNull();
    expect(compareLogPositions(behind!, blocked!.position)).toBeLessThan(0);
    held.open();
    await writing;
    await eventually(async () => {
      const cp = await relayCheckpoint(LANE);
      return cp !== null && compareLogPositions(cp, blocked!.position) >= 0;
    }, 20_000, 'lane checkpoint past the released event');
    await expectEachHandledOnce(200);
    const pongs = await world.beta.readStream('pongs');
    expect(pongs[0]?.metadata.correlationId).toBe('c-0');
    const last = (await world.alpha.readStream('pinger-1')).at(-1)!; // n = 199 lands on pinger-1
    expect(last.data).toEqual({ n: 199 });
    expect(await relayCheckpoint(LANE)).toEqual({ transactionId: last.transactionId, globalPosition: last.globalPosition });
  });
  it('each consumer at its own position: one held on an event holds back neither the other consumer nor its lane; then it catches up, each event once, in order', async () => {
    const transport = createInProcessTransport({ paused: true });
    cleanups.push(() => transport.close());
    await consume(transport);
    const held = gate();
    const slowSeen: number[] = [];
    let slowBlocked = false;
    const slowBatch = async (events: IntegrationEvent[]) => {
      for (const event of events) {
        if ((event.data as { n: number }).n === 20 && !slowBlocked) {
          slowBlocked = true;
          await held.promise;
        }
      }
      slowSeen.push(...events.map((e) => (e.data as { n: number }).n));
    };
    const slow = await transport.consume({ consumer: 'slow-from-alpha', source: 'alpha', handler: (event) => slowBatch([event]), handleBatch: slowBatch });
    cleanups.push(() => slow.close());
    relay(transport);
    await ping(0, 200);
    // Nothing moves before open(): the lanes start then.
    await delay(300);
    expect(world.handled.size).toBe(0);
    transport.open();
    // beta handles all 200 while slow-from-alpha is held on n = 20.
    await expectEachHandledOnce(200);
    expect(slowBlocked).toBe(true);
    expect(slowSeen.length).toBeLessThan(200);
    const slowLane = await relayCheckpoint('relay:alpha/slow-from-alpha');
    const betaLane = await relayCheckpoint(LANE);
    expect(betaLane).not.toBeNull();
    expect(slowLane === null || compareLogPositions(slowLane, betaLane!) < 0, 'the held lane is behind').toBe(true);
    // The held lane's connection dies in its batch: that batch is delivered again after the release.
    await killActiveRelayConnection('relay:alpha/slow-from-alpha');
    held.open();
    await eventually(() => new Set(slowSeen).size === 200, 30_000, 'slow consumer caught up');
    const firstSeen = slowSeen.filter((n, i) => slowSeen.indexOf(n) === i);
    expect(firstSeen).toHaveLength(200);
    // Per stream, in order (ping appends ten at a time, cycling over pinger-0..2 by n).
    for (const stream of STREAMS) {
      const ns = firstSeen.filter((n) => `pinger-${(Math.floor(n / 10) * 10) % 3}` === stream);
      expect(ns, stream).toEqual([...ns].sort((a, b) => a - b));
    }
    await expectEachHandledOnce(200);
  });

  it("a new lane starts where the relay's single checkpoint stood; a consumer that stops and comes back resumes at its lane, not at the start, nor skipping what came meanwhile", async () => {
    await ping(0, 30);
    // An earlier version's relay had published up to n = 19 (the second append's last event).
    const published = (await world.alpha.readStream('pinger-1')).at(-1)!;
    expect(published.data).toEqual({ n: 19 });
    await world.alphaDb.pool.query(`INSERT INTO eventstore.checkpoints (subscription_name, transaction_id, global_position) VALUES ($1, $2::xid8, $3)`, [
      RELAY,
      published.transactionId,
      published.globalPosition,
    ]);
    const transport = createInProcessTransport();
    cleanups.push(() => transport.close());
    relay(transport);
    const first = await consume(transport);
    const pongs = async () => (await world.beta.readStream('pongs')).map((p) => (p.data as { n: number }).n);
    await eventually(async () => (await pongs()).length >= 10, 20_000, 'n = 20..29');
    await delay(300);
    expect(await pongs()).toEqual(Array.from({ length: 10 }, (_, i) => 20 + i));
    await first.close();
    await ping(30, 30);
    await delay(300);
    expect(await pongs()).toHaveLength(10);
    await consume(transport);
    await eventually(async () => (await pongs()).length >= 40, 20_000, 'n = 30..59 after the restart');
    await delay(300);
    expect(await pongs()).toEqual(Array.from({ length: 40 }, (_, i) => 20 + i));
  });

  it('refuses a consumer name its lane could not be named after (TypeError), registering nothing', async () => {
    const transport = createInProcessTransport();
    cleanups.push(() => transport.close());
    relay(transport);
    for (const consumer of ['', 'x'.repeat(121), 42 as unknown as string]) {
      await expect(transport.consume({ consumer, source: 'alpha', handler: async () => {} })).rejects.toThrow(TypeError);
    }
    await ping(0, 10);
    await delay(300);
    const { rows } = await world.alphaDb.pool.query(`SELECT subscription_name FROM eventstore.checkpoints`);
    expect(rows).toEqual([]);
  });
});

describe('NATS JetStream transport', () => {
  it('relay crashes after publishing (batch on the broker, checkpoint uncommitted) and a consumer crashes before ack: each event handled exactly once, in order, duplicates dropped by the broker', async () => {
    const namespace = `t${randomBytes(4).toString('hex')}`;
    const nats = await createNatsTransport({ url: SHARED_NATS, sources: ['alpha'], namespace });
    removeStreamAfterwards(namespace);
    cleanups.push(() => nats.close());
    let crashes = 0;
    await consume(nats, 'beta-from-alpha', (e) => {
      if ((e.data as { n: number }).n % 97 === 5 && crashes < 5) {
        crashes++;
        throw new Error('consumer crashed before ack');
      }
    });

    // The relay's faults, each once, while events flow and only after the broker acknowledged:
    //  1. the whole batch is published, then the relay's PostgreSQL session is killed: its COMMIT
    //     fails, a relay (the standby or the same one reconnecting) republishes from the checkpoint;
    //  2. the first half of a batch is published, then the transport fails: rolled back, retried.
    let killedBatch: readonly IntegrationEvent[] | undefined;
    let abortedBatch: readonly IntegrationEvent[] | undefined;
    const checkpointsAtFault: (LogPosition | null)[] = [];
    const transport = interceptPublish(nats, async (events, publish) => {
      if (!killedBatch && transport.publishedCount >= 200 && events.length >= 2) {
        await publish(events);
        killedBatch = events;
        checkpointsAtFault.push(await relayCheckpoint());
        await killActiveRelayConnection();
        return;
      }
      if (killedBatch && !abortedBatch && transport.publishedCount >= 500 && events.length >= 2) {
        await publish(events.slice(0, Math.ceil(events.length / 2)));
        abortedBatch = events;
        checkpointsAtFault.push(await relayCheckpoint());
        throw new Error('transport failed mid-batch');
      }
      await publish(events);
    });
    relay(transport);
    const secondProcess = createEventStore({ pool: world.alphaDb.pool });
    cleanups.push(() => secondProcess.close());
    relay(transport, secondProcess); // a standby relay, as a second process would run
    await ping(0, 1000);
    await expectEachHandledOnce(1000);

    expect(crashes).toBeGreaterThan(0);
    expect(killedBatch).toBeDefined();
    expect(abortedBatch).toBeDefined();
    // At each fault the checkpoint had not reached the published events...
    const faults = [killedBatch!, abortedBatch!];
    faults.forEach((batch, i) => {
      const cp = checkpointsAtFault[i];
      expect(cp, 'earlier batches committed').not.toBeNull();
      expect(compareLogPositions(cp!, batch[0]!.position)).toBeLessThan(0);
    });
    // ...so they were published again (the killed batch wholly, the aborted batch's first half)...
    for (const e of killedBatch!) expect(transport.published.get(e.eventId), `publishes of ${e.eventId}`).toBeGreaterThanOrEqual(2);
    for (const e of abortedBatch!.slice(0, Math.ceil(abortedBatch!.length / 2))) expect(transport.published.get(e.eventId)).toBeGreaterThanOrEqual(2);
    expect(transport.published.size).toBe(1000);
    expect(transport.publishedCount).toBeGreaterThan(1000);
    // ...and the broker stored each event once: it dropped the duplicates by message id.
    expect(await storedMessages(SHARED_NATS, namespace)).toBe(1000);
    expect(await relayCheckpoint()).not.toBeNull();
  });

  it('a restarted consumer resumes from its durable position, in order', async () => {
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
    expect(await storedMessages(SHARED_NATS, namespace)).toBe(200);
  });

  it('NATS restarted while events flow: nothing lost, nothing handled twice, stream order kept', async () => {
    const nats: PrivateNats = await startPrivateNats();
    cleanups.push(() => nats.dispose());
    const inner = await createNatsTransport({ url: nats.url, sources: ['alpha'] });
    const transport = interceptPublish(inner);
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
    expect(transport.published.size).toBe(1500);
    expect(await storedMessages(nats.url)).toBe(1500);
  }, 120_000);
});
