/**
 * How the NATS transport forms batches out of bursts (the machine's NATS, one namespace per
 * test). Regression: a batch consumer used to keep waiting for "pending" messages that nats.js
 * over-counted after its internal re-pull, so the end of a burst (60 or 120 messages) sat
 * until the broker's 30 s ack timeout redelivered it. Every burst must now be handled within a
 * few seconds, each event committed once, per source stream in order, and the broker must not
 * have redelivered anything (in-place retries after a failure are not redeliveries).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterEach, describe, expect, it } from 'vitest';
import type { IntegrationConsumerOptions, IntegrationEvent, IntegrationTransport } from '../eventstore/integration.ts';
import { delay, eventually, gate } from '../eventstore/testing/fixture.ts';
import { createNatsTransport, streamNameOf } from './nats.ts';

const SHARED_NATS = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const BURSTS = [1, 7, 33, 60, 120];
const HANDLER_MS = 15;
/** Longest a burst may take from its publish to its last event committed. */
const BURST_DEADLINE_MS = 5_000;
const STREAMS = ['s-0', 's-1', 's-2'];

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

async function withJsm<T>(fn: (jsm: Awaited<ReturnType<typeof jetstreamManager>>) => Promise<T>): Promise<T> {
  const nc = await connect({ servers: SHARED_NATS });
  try {
    return await fn(await jetstreamManager(nc));
  } finally {
    await nc.close();
  }
}

/** A NATS transport on its own namespace; its stream is deleted after the test. */
async function transportFor(ackWaitMs?: number): Promise<{ transport: IntegrationTransport; namespace: string }> {
  const namespace = `t${randomBytes(4).toString('hex')}`;
  const transport = await createNatsTransport({ url: SHARED_NATS, sources: ['alpha'], namespace, ackWaitMs });
  cleanups.push(() => withJsm((jsm) => jsm.streams.delete(streamNameOf('alpha', namespace))));
  cleanups.push(() => transport.close());
  return { transport, namespace };
}

/** `count` Pinged events n = from..from+count-1, cycling over STREAMS; `positions` tracks each stream's next position. */
function events(from: number, count: number, positions: Map<string, number>): IntegrationEvent[] {
  return Array.from({ length: count }, (_, k) => {
    const n = from + k;
    const streamId = STREAMS[n % STREAMS.length]!;
    const streamPosition = positions.get(streamId) ?? 0;
    positions.set(streamId, streamPosition + 1);
    return {
      eventId: randomUUID(),
      source: 'alpha',
      type: 'Pinged',
      schemaVersion: 1,
      streamId,
      streamPosition,
      data: { n },
      metadata: { correlationId: `c-${n}` },
      occurredAt: new Date().toISOString(),
      position: { transactionId: String(n), globalPosition: String(n) },
    } as IntegrationEvent;
  });
}

/** What the consumer committed: each successful call's events, in order; `calls` counts every call. */
interface Recorder {
  committed: IntegrationEvent[];
  calls: number;
  failures: number;
}

/**
 * Starts a consumer whose every call takes HANDLER_MS; `fail(events, call)` makes a call throw
 * after that time (as a failed inbox transaction would).
 */
async function startConsumer(
  transport: IntegrationTransport,
  mode: 'batch' | 'single',
  options: { maxBatch?: number; fail?: (events: readonly IntegrationEvent[]) => boolean; hold?: Promise<void> } = {},
): Promise<{ recorder: Recorder; close: () => Promise<void> }> {
  const recorder: Recorder = { committed: [], calls: 0, failures: 0 };
  const handle = async (batch: IntegrationEvent[]) => {
    recorder.calls++;
    await delay(HANDLER_MS);
    await options.hold;
    if (options.fail?.(batch)) {
      recorder.failures++;
      throw new Error('inbox transaction failed');
    }
    recorder.committed.push(...batch);
  };
  const consumer: IntegrationConsumerOptions = {
    consumer: 'beta-from-alpha',
    source: 'alpha',
    types: ['Pinged'],
    handler: (event) => handle([event]),
    ...(mode === 'batch' ? { handleBatch: handle, maxBatch: options.maxBatch } : {}),
  };
  const c = await transport.consume(consumer);
  cleanups.push(() => c.close());
  return { recorder, close: () => c.close() };
}

/** The durable consumer's broker-side counters. */
async function consumerState(namespace: string): Promise<{ redelivered: number; ackPending: number }> {
  const info = await withJsm((jsm) => jsm.consumers.info(streamNameOf('alpha', namespace), 'beta-from-alpha'));
  return { redelivered: info.num_redelivered, ackPending: info.num_ack_pending };
}

/** Each of `published` committed exactly once, nothing else, and per stream in publish order. */
function expectCommittedOnceInOrder(recorder: Recorder, published: readonly IntegrationEvent[]) {
  const counts = new Map<string, number>();
  for (const e of recorder.committed) counts.set(e.eventId, (counts.get(e.eventId) ?? 0) + 1);
  const twice = [...counts].filter(([, k]) => k > 1);
  expect(twice, 'events committed more than once').toEqual([]);
  expect(recorder.committed).toHaveLength(published.length);
  expect(new Set(recorder.committed.map((e) => e.eventId))).toEqual(new Set(published.map((e) => e.eventId)));
  for (const stream of STREAMS) {
    const order = recorder.committed.filter((e) => e.streamId === stream).map((e) => e.streamPosition);
    expect(order, `commit order of ${stream}`).toEqual([...order].sort((a, b) => a - b));
  }
}

/** Publishes the bursts one after the other, each once the previous one is committed; returns each burst's duration. */
async function runBursts(transport: IntegrationTransport, recorder: Recorder, extraPerBurst = 0): Promise<{ published: IntegrationEvent[]; timings: Record<number, number> }> {
  const published: IntegrationEvent[] = [];
  const positions = new Map<string, number>();
  const timings: Record<number, number> = {};
  for (const size of BURSTS) {
    const burst = events(published.length, size, positions);
    const started = Date.now();
    await transport.publish(burst);
    published.push(...burst);
    const ids = new Set(burst.map((e) => e.eventId));
    await eventually(
      () => recorder.committed.filter((e) => ids.has(e.eventId)).length >= size,
      BURST_DEADLINE_MS + extraPerBurst,
      `burst of ${size} committed (${recorder.committed.filter((e) => ids.has(e.eventId)).length} so far)`,
    );
    timings[size] = Date.now() - started;
    // Idle between bursts: the consumer goes back to waiting, where the stall used to happen.
    await delay(200);
  }
  return { published, timings };
}

describe('NATS transport: batches out of bursts', () => {
  it.each([
    { mode: 'batch' as const, maxBatch: undefined },
    { mode: 'batch' as const, maxBatch: 25 },
    { mode: 'single' as const, maxBatch: undefined },
  ])('bursts of 1, 7, 33, 60, 120 with a 15 ms $mode handler (maxBatch $maxBatch): each handled within seconds, once, in order, nothing redelivered', async ({ mode, maxBatch }) => {
    const { transport, namespace } = await transportFor();
    const { recorder } = await startConsumer(transport, mode, { maxBatch });
    const { published, timings } = await runBursts(transport, recorder);
    for (const size of BURSTS) expect(timings[size], `burst of ${size} (ms)`).toBeLessThan(BURST_DEADLINE_MS);
    await delay(300);
    expectCommittedOnceInOrder(recorder, published);
    if (mode === 'batch') {
      expect(recorder.calls, 'bursts are batched').toBeLessThan(published.length);
      if (maxBatch) expect(recorder.calls).toBeGreaterThanOrEqual(Math.ceil(published.length / maxBatch));
    }
    expect(await consumerState(namespace)).toEqual({ redelivered: 0, ackPending: 0 });
  });

  it('a failing batch is retried in place, whole and before later events; no redelivery, no stall', async () => {
    const { transport, namespace } = await transportFor();
    const failedOnce = new Set<number>();
    const { recorder } = await startConsumer(transport, 'batch', {
      fail: (batch) => {
        const victim = batch.map((e) => (e.data as { n: number }).n).find((n) => n % 40 === 3 && !failedOnce.has(n));
        if (victim === undefined) return false;
        failedOnce.add(victim);
        return true;
      },
    });
    const { published } = await runBursts(transport, recorder, 1_000);
    await delay(300);
    expect(recorder.failures).toBeGreaterThan(0);
    expectCommittedOnceInOrder(recorder, published);
    expect(await consumerState(namespace)).toEqual({ redelivered: 0, ackPending: 0 });
  });

  it('close() waits for the batch being handled and acknowledges it; what was not handled comes back to the next consumer', async () => {
    const { transport, namespace } = await transportFor(2_000);
    const held = gate();
    const first = await startConsumer(transport, 'batch', { hold: held.promise });
    const positions = new Map<string, number>();
    const published = events(0, 60, positions);
    await transport.publish(published);
    await eventually(() => first.recorder.calls > 0, 5_000, 'first batch in the handler');
    let closed = false;
    const closing = first.close().then(() => (closed = true));
    await delay(200);
    expect(closed, 'close() waits for the batch in the handler').toBe(false);
    held.open();
    await closing;
    const callsAtClose = first.recorder.calls;
    await delay(200);
    expect(first.recorder.calls, 'nothing handled after close()').toBe(callsAtClose);
    expect(first.recorder.committed.length).toBeGreaterThan(0);

    const second = await startConsumer(transport, 'batch');
    await eventually(() => first.recorder.committed.length + second.recorder.committed.length >= published.length, 15_000, 'the rest handled by the next consumer');
    await delay(300);
    // What the first consumer committed was acknowledged: the next one never sees it again.
    const firstIds = new Set(first.recorder.committed.map((e) => e.eventId));
    expect(second.recorder.committed.filter((e) => firstIds.has(e.eventId))).toEqual([]);
    expectCommittedOnceInOrder({ committed: [...first.recorder.committed, ...second.recorder.committed], calls: 0, failures: 0 }, published);
    expect((await consumerState(namespace)).ackPending).toBe(0);
  });

  /**
   * Handover regression: close() used to drop the messages the consumer had received but not
   * handled; they stayed unacknowledged until `ack_wait` while the next consumer on the durable
   * got LATER messages first (commit order of s-0 `[0, 20, 21, …, 29, 1, 2, …]`). With a 30 s
   * `ack_wait`, everything must now reach the next consumer within seconds, per stream in order.
   */
  it.each(['batch' as const, 'single' as const])('handover (%s): close() hands the unhandled messages back at once; the next consumer handles every stream in order, promptly, once', async (mode) => {
    const { transport, namespace } = await transportFor(30_000);
    const held = gate();
    const first = await startConsumer(transport, mode, { hold: held.promise });
    const positions = new Map<string, number>();
    const published = events(0, 60, positions);
    await transport.publish(published);
    await eventually(() => first.recorder.calls > 0, 5_000, 'first batch in the handler');
    // The rest of the 60 reaches the first consumer's buffer while its first batch is held.
    await delay(300);
    const closing = first.close();
    await delay(100);
    held.open();
    await closing;
    expect(first.recorder.committed.length, 'the batch in hand was committed').toBeGreaterThan(0);
    expect(first.recorder.committed.length, 'the first consumer held back some of the 60').toBeLessThan(published.length);

    const more = events(published.length, 30, positions);
    await transport.publish(more);
    published.push(...more);
    const started = Date.now();
    const second = await startConsumer(transport, mode);
    const all = () => [...first.recorder.committed, ...second.recorder.committed];
    const deadline = await eventually(() => all().length >= published.length, 8_000, 'every event handled').then(
      () => undefined,
      (error: unknown) => error,
    );
    await delay(300);
    // Per stream, what was handled is a gap-free prefix 0, 1, 2, …: nothing overtook a held-back event.
    for (const stream of STREAMS) {
      const order = all().filter((e) => e.streamId === stream).map((e) => e.streamPosition);
      expect(order, `commit order of ${stream}`).toEqual(order.map((_, k) => k));
    }
    expect(deadline, `all ${published.length} handled within 8 s of the second consumer's start (ack_wait 30 s)`).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(10_000);
    expectCommittedOnceInOrder({ committed: all(), calls: 0, failures: 0 }, published);
    expect((await consumerState(namespace)).ackPending).toBe(0);
  });

  it('close() under a handler that never returns gives up within its caps and hands everything back, in order', async () => {
    const { transport } = await transportFor(30_000);
    const never = new Promise<void>(() => {});
    const first = await startConsumer(transport, 'batch', { hold: never });
    const positions = new Map<string, number>();
    const published = events(0, 30, positions);
    await transport.publish(published);
    await eventually(() => first.recorder.calls > 0, 5_000, 'first batch in the handler');
    await delay(200);
    const started = Date.now();
    await first.close();
    const closeMs = Date.now() - started;
    expect(closeMs, 'close() within its caps (ms)').toBeLessThan(12_000);
    expect(first.recorder.committed).toEqual([]);

    const second = await startConsumer(transport, 'batch');
    await eventually(() => second.recorder.committed.length >= published.length, 8_000, 'every event handled by the next consumer');
    await delay(300);
    expectCommittedOnceInOrder(second.recorder, published);
  });
});
