/**
 * NATS JetStream transport (DESIGN.md, "Broker"): one JetStream stream per source service
 * (`FLOWGRAPH_<SOURCE>`, subjects `<source>.>`), subject `<source>.<EventType>`, message id =
 * `event_id` so the broker drops a republished event inside its duplicate window. Consumers are
 * durable pull consumers with explicit acks; a message is acknowledged only after its handler
 * (and so its inbox transaction) succeeded, and retried in order until it does.
 *
 * Handover (`IntegrationConsumer.close()`, the transport's `close()`): the consumer stops
 * pulling, lets the batch in hand finish and acknowledges it, drains its subscription, then NAKs
 * every message it received but did not acknowledge, in stream order, so that the next consumer
 * on the durable gets them first and at once (left unacknowledged they would wait out `ack_wait`
 * while later messages overtook them: per-stream order broken). Each wait is capped (`handOver`).
 */
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import type {
  IntegrationConsumer,
  IntegrationConsumerOptions,
  IntegrationEvent,
  IntegrationTransport,
} from '../eventstore/integration.ts';
import { briefError, silentLogger, type Logger } from '../eventstore/logger.ts';
import { isTransientConsumerError } from '../eventstore/parking.ts';
import { carrierFrom, traceDelivery, tracePublish, type TraceCarrier } from '../observability/messagingSpans.ts';
import { tracingOn } from '../observability/tracer.ts';

/** Options of `createNatsTransport`. */
export interface NatsTransportOptions {
  /** e.g. `nats://127.0.0.1:4222` (comma-separated for a cluster). */
  url: string;
  /** Source services this process publishes for: their JetStream streams are created if missing. */
  sources: readonly string[];
  /** Broker-side de-duplication window, in ms. @default 120000 (2 min) */
  duplicateWindowMs?: number;
  /** How long the broker waits for an ack before redelivering, in ms. @default 30000 */
  ackWaitMs?: number;
  /**
   * Isolates a deployment (or a test) on a shared NATS: stream names become
   * `<NAMESPACE>_<SOURCE>` and subjects `<namespace>.<source>.<Type>`.
   * @default none: streams `FLOWGRAPH_<SOURCE>`, subjects `<source>.<Type>` (DESIGN.md)
   */
  namespace?: string;
  logger?: Logger;
}

/** Name of the JetStream stream carrying `source`'s events. */
export function streamNameOf(source: string, namespace?: string): string {
  return `${(namespace ?? 'FLOWGRAPH').toUpperCase()}_${source.toUpperCase()}`.replace(/[^A-Z0-9_]/g, '_');
}

/** Subject of an event type: `<source>.<Type>`, or `<namespace>.<source>.<Type>`. */
export function subjectOf(source: string, type: string, namespace?: string): string {
  return namespace ? `${namespace}.${source}.${type}` : `${source}.${type}`;
}

/**
 * Connects to NATS and makes sure the streams of `sources` exist.
 * @throws when NATS does not answer or JetStream is not enabled
 */
export async function createNatsTransport(options: NatsTransportOptions): Promise<IntegrationTransport> {
  const logger = options.logger ?? silentLogger;
  const namespace = options.namespace;
  const nc: NatsConnection = await connect({
    servers: options.url.split(','),
    name: 'flowgraph',
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
  });
  const jsm: JetStreamManager = await jetstreamManager(nc);
  const js: JetStreamClient = jetstream(nc);
  const ensured = new Set<string>();
  async function ensureStream(source: string): Promise<string> {
    const name = streamNameOf(source, namespace);
    if (ensured.has(name)) return name;
    const config = {
      name,
      subjects: [subjectOf(source, '>', namespace)],
      duplicate_window: (options.duplicateWindowMs ?? 120_000) * 1_000_000,
    };
    try {
      await jsm.streams.info(name);
    } catch {
      await jsm.streams.add(config).catch(async (error: unknown) => {
        // Another process created it meanwhile.
        await jsm.streams.info(name).catch(() => {
          throw error;
        });
      });
    }
    ensured.add(name);
    return name;
  }
  for (const source of options.sources) await ensureStream(source);

  /**
   * Hands what a consume delivered but did not acknowledge back to the broker at once, so the
   * next consumer on the durable starts exactly where this one stopped (instead of those messages
   * waiting out `ack_wait` while later ones overtake them). In order:
   * 1. drain the subscription (no more pulls; what is on the wire lands in the buffer);
   * 2. one consumer-info request: nats-server 2.9 (Debian 12's 2.9.10) keeps the drained pull
   *    requests as waiting requests and, meeting one without interest while redelivering a NAKed
   *    message, steps its next-message pointer back: one message then waits out `ack_wait` and
   *    the last one is delivered twice. Consumer info makes the server drop requests without
   *    interest first;
   * 3. NAK the batch in hand (if unacknowledged) then the buffer, in stream order: the server
   *    queues them for redelivery in that order, ahead of anything new;
   * 4. flush, so the NAKs reached the server before `close()` resolves; close the consume.
   * Every broker wait is capped at STOP_BROKER_WAIT_MS; a failed step only loses promptness
   * (what is not NAKed comes back after `ack_wait`, the inbox absorbs duplicates).
   */
  async function handOver(session: Session, stream: string, durable: string): Promise<void> {
    await drainOf(session);
    const unacked = [...(session.inHand ?? []), ...session.buffer.splice(0)];
    session.inHand = undefined;
    if (unacked.length > 0 && !nc.isClosed()) {
      await settledWithin(jsm.consumers.info(stream, durable), STOP_BROKER_WAIT_MS);
      for (const m of unacked) m.nak();
      await settledWithin(nc.flush(), STOP_BROKER_WAIT_MS);
      logger.info({ consumer: durable, handedBack: unacked.length }, 'nats: consumer stopped; unhandled messages handed back to the broker');
    }
    await settledWithin(session.messages.close(), STOP_BROKER_WAIT_MS);
  }

  const running = new Set<{ stop(): Promise<void> }>();
  let closed = false;

  return {
    kind: 'nats',
    async publish(events) {
      for (const source of new Set(events.map((e) => e.source))) await ensureStream(source);
      // Per event stream, one at a time: event k+1 is sent only after the broker stored event
      // k, so a failure can never leave k+1 stored before k (the relay republishes from k, and
      // the broker drops what it already has by msgID). Different streams go in parallel.
      const byStream = new Map<string, IntegrationEvent[]>();
      for (const event of events) byStream.set(event.streamId, [...(byStream.get(event.streamId) ?? []), event]);
      await Promise.all(
        [...byStream.values()].map(async (streamEvents) => {
          for (const event of streamEvents) {
            const subject = subjectOf(event.source, event.type, namespace);
            if (!tracingOn()) await js.publish(subject, JSON.stringify(event), { msgID: event.eventId, timeout: 10_000 });
            // Tracing on: a PRODUCER span until the broker's ack, its context in the message's headers (observability/messagingSpans.ts).
            else await tracePublish('nats', subject, event, (carrier) => js.publish(subject, JSON.stringify(event), { msgID: event.eventId, timeout: 10_000, headers: natsHeadersOf(carrier) }));
          }
        }),
      );
    },
    async consume(consumer: IntegrationConsumerOptions): Promise<IntegrationConsumer> {
      const stream = await ensureStream(consumer.source);
      const durable = consumer.consumer.replace(/[^A-Za-z0-9_-]/g, '_');
      // One filter subject only: `filter_subjects` needs nats-server 2.10 (Debian 12 ships 2.9).
      // With several types the consumer reads the source's subjects and skips the others.
      const types = consumer.types && consumer.types.length > 0 ? new Set(consumer.types) : undefined;
      const filter = types?.size === 1 ? subjectOf(consumer.source, [...types][0]!, namespace) : subjectOf(consumer.source, '>', namespace);
      const config = {
        durable_name: durable,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: (options.ackWaitMs ?? 30_000) * 1_000_000,
        max_ack_pending: 1000,
        filter_subject: filter,
      };
      try {
        await jsm.consumers.info(stream, durable);
        await jsm.consumers.update(stream, durable, config);
      } catch {
        await jsm.consumers.add(stream, config);
      }
      let stopping = false;
      /** Set when `stop()` gave up waiting for the batch in hand: its handler must not ack it any more. */
      let abandoned = false;
      /** The current `consume()`: what it delivered that is not acknowledged yet is in `buffer` or `inHand`. */
      let session: Session | undefined;
      /** Wakes the loop when a message arrives, the consume ends or `stop()` is called. */
      let wake: (() => void) | undefined;
      const signal = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      /** Cuts the loop's pauses (retry back-off, resume) short once `stop()` is called. */
      let cutPause: (() => void) | undefined;
      const pause = (ms: number) =>
        new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, ms);
          cutPause = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      const release = (s: Session) => (s.released ??= handOver(s, stream, durable));
      const maxBatch = consumer.handleBatch ? Math.max(1, consumer.maxBatch ?? 200) : 1;
      // Messages arrive in order through the callback into our own buffer; each round takes
      // what has arrived, up to `maxBatch`, and handles it (one transaction when the consumer
      // has a batch handler, else one by one). The batch is never held back waiting for more:
      // nats.js's `getPending()` over-counts after its internal re-pull (the pull request is
      // queued with the messages and counted in flight), so waiting on it stalled a batch
      // until the broker redelivered it after `ack_wait`.
      const loop = (async () => {
        while (!stopping) {
          let current: Session | undefined;
          try {
            const c = await js.consumers.get(stream, durable);
            const buffer: JsMsg[] = [];
            let ended = false;
            let endError: unknown;
            const messages = await c.consume({
              max_messages: 100,
              callback: (m) => {
                buffer.push(m);
                signal();
              },
            });
            current = { messages, buffer };
            session = current;
            void messages.closed().then(
              (err) => {
                ended = true;
                endError = err;
                signal();
              },
              (err: unknown) => {
                ended = true;
                endError = err;
                signal();
              },
            );
            // `stop()` may have run while `consume()` was being set up.
            if (stopping) break;
            // `stop()` drains the subscription at once: no more pulls, what is on the wire lands in `buffer`.
            for (;;) {
              while (buffer.length === 0 && !ended && !stopping) await new Promise<void>((r) => (wake = r));
              if (stopping) break;
              // After the consume ended (an error: it is restarted below), what was delivered
              // is still handled and acknowledged first, so that nothing overtakes it.
              if (buffer.length === 0) break;
              // One turn of the event loop lets the messages already read from the socket join.
              if (buffer.length < maxBatch && !ended) await new Promise<void>((r) => setImmediate(r));
              if (stopping) break;
              const batch = buffer.splice(0, maxBatch);
              current.inHand = batch;
              const relevant: IntegrationEvent[] = [];
              // Tracing on: each message's trace context headers, for the CONSUMER span's links.
              const carriers: Array<TraceCarrier | undefined> | undefined = tracingOn() ? [] : undefined;
              for (const m of batch) {
                const event = m.json<IntegrationEvent>();
                if (types && !types.has(event.type)) continue;
                relevant.push(event);
                carriers?.push(carrierFrom((key) => m.headers?.get(key) || undefined));
              }
              let delay = 100;
              // Retry in place so that later messages never overtake a failing one.
              for (;;) {
                try {
                  if (relevant.length > 0) {
                    const handle = () => (consumer.handleBatch ? consumer.handleBatch(relevant) : consumer.handler(relevant[0]!));
                    if (carriers) {
                      const destination = relevant.length === 1 ? subjectOf(relevant[0]!.source, relevant[0]!.type, namespace) : consumer.source;
                      await traceDelivery('nats', consumer, destination, relevant, carriers, handle);
                    } else await handle();
                  }
                  break;
                } catch (error) {
                  // Stopping: the batch stays in hand, unacknowledged; the handover NAKs it first.
                  if (stopping) return;
                  const eventIds = relevant.map((e) => e.eventId).slice(0, 5);
                  // A transient failure (a concurrent writer, a database or broker reconnect) heals
                  // on retry: info without a stack; anything else is an error.
                  if (isTransientConsumerError(error)) logger.info({ reason: briefError(error), consumer: durable, eventIds, retryInMs: delay }, 'nats: handler met a transient failure; retrying');
                  else logger.error({ err: error, consumer: durable, eventIds }, 'nats: handler failed; retrying');
                  // The batch and the messages waiting behind it stay ours meanwhile: the
                  // broker redelivering them would only bring duplicates, out of order.
                  for (const m of batch) m.working();
                  for (const m of buffer) m.working();
                  await pause(delay);
                  if (stopping) return;
                  delay = Math.min(delay * 2, 5000);
                }
              }
              // `stop()` gave up on this batch and handed it back (NAKed): the next consumer has it.
              if (abandoned) return;
              // If an ack is lost the broker redelivers; the inbox absorbs it.
              for (const m of batch) m.ack();
              current.inHand = undefined;
              if (stopping) break;
            }
            if (stopping) break;
            if (endError) throw endError;
          } catch (error) {
            if (stopping) return;
            logger.warn({ err: error, consumer: durable }, 'nats: consumer interrupted; resuming');
            await pause(500);
          } finally {
            // Whatever ended this consume, what it delivered and was not acknowledged goes back
            // to the broker at once, in order (a consume that failed has nothing left by now).
            // Once per consume: after an abandoning `stop()` this only waits for its handover.
            if (current) await release(current);
          }
        }
      })();
      let stopped: Promise<void> | undefined;
      const handle = {
        stop() {
          return (stopped ??= (async () => {
            stopping = true;
            signal();
            cutPause?.();
            // Stop pulling at once: the subscription drains while the batch in hand finishes.
            if (session) void drainOf(session);
            // The loop acks the batch in hand, then hands the rest over (`release`). A handler that
            // does not finish in time is abandoned: its batch is handed back with the rest.
            if (await settledWithin(loop, STOP_HANDLER_WAIT_MS)) return;
            abandoned = true;
            logger.warn({ consumer: durable, waitedMs: STOP_HANDLER_WAIT_MS }, 'nats: handler still running at stop; its batch goes back to the broker unacknowledged');
            if (session) await release(session);
          })());
        },
      };
      running.add(handle);
      return {
        async close() {
          running.delete(handle);
          await handle.stop();
        },
        // One consumer-info request: what the broker holds for this durable consumer.
        async pending() {
          const info = await jsm.consumers.info(stream, durable);
          return { messages: info.num_pending, unacknowledged: info.num_ack_pending };
        },
      };
    },
    async ping(signal?: AbortSignal) {
      if (closed || nc.isClosed()) throw new Error('NATS connection is closed');
      // flush() is a PING answered by a PONG; while reconnecting it waits for the server.
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(new Error(`NATS at ${nc.getServer()} did not answer`));
        if (signal?.aborted) return onAbort();
        signal?.addEventListener('abort', onAbort, { once: true });
        nc.flush().then(resolve, reject).finally(() => signal?.removeEventListener('abort', onAbort));
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...running].map((r) => r.stop()));
      running.clear();
      // Capped too: draining waits for the server, which may be unreachable at shutdown.
      if (!(await settledWithin(nc.drain().catch(() => nc.close()), STOP_BROKER_WAIT_MS))) await nc.close().catch(() => {});
    },
  };
}

/** Longest `stop()` waits for the batch in hand to be handled and acknowledged. */
const STOP_HANDLER_WAIT_MS = 5_000;
/** Longest each broker round trip of a handover (drain, consumer info, flush, close) is waited for. */
const STOP_BROKER_WAIT_MS = 2_000;

/** One `consume()` of a consumer and what it delivered that is not acknowledged yet. */
interface Session {
  messages: ConsumerMessages;
  /** Received, not handled yet, in delivery (stream) order. */
  buffer: JsMsg[];
  /** The batch being handled, until acknowledged. */
  inHand?: JsMsg[];
  /** The handover, once started (it runs once). */
  released?: Promise<void>;
}

/** Resolves true once `promise` settled (either way), false after `ms` (the promise runs on, unobserved). */
async function settledWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true, () => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The core subscription under a `consume()`. nats.js 3.x has no public way to drain a
 * ConsumerMessages (its `close()` unsubscribes at once, dropping what is still on the wire), so
 * this reads the `sub` field of its implementation (PullConsumerMessagesImpl), which the
 * library itself expects to be drained (it stops the iterator when that drain completes).
 * Guarded: undefined if a later nats.js renames it (the handover then only closes).
 */
function subscriptionOf(messages: ConsumerMessages): Subscription | undefined {
  const sub = (messages as { sub?: Partial<Subscription> }).sub;
  return sub && typeof sub.drain === 'function' && typeof sub.isClosed === 'function' ? (sub as Subscription) : undefined;
}

/**
 * Drains the session's subscription (UNSUB, then a PING/PONG round trip: every message the
 * server sent before the UNSUB reaches the callback, so `buffer`), capped at STOP_BROKER_WAIT_MS.
 */
async function drainOf(session: Session): Promise<void> {
  const sub = subscriptionOf(session.messages);
  if (!sub || sub.isClosed()) return;
  await settledWithin(sub.drain(), STOP_BROKER_WAIT_MS);
}

/** NATS message headers carrying `carrier` (W3C `traceparent`, `tracestate`). */
function natsHeadersOf(carrier: TraceCarrier): MsgHdrs {
  const h = natsHeaders();
  for (const [key, value] of Object.entries(carrier)) h.set(key, value);
  return h;
}
