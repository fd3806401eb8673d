/**
 * NATS JetStream transport (DESIGN.md, "Broker"): one JetStream stream per source service
 * (`FLOWGRAPH_<SOURCE>`, subjects `<source>.>`), subject `<source>.<EventType>`, message id =
 * `event_id` so the broker drops a republished event inside its duplicate window. Consumers are
 * durable pull consumers with explicit acks; a message is acknowledged only after its handler
 * (and so its inbox transaction) succeeded, and retried in order until it does.
 */
import { connect, headers as natsHeaders, type MsgHdrs, type NatsConnection } from '@nats-io/transport-node';
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
      let messages: ConsumerMessages | undefined;
      /** Wakes the loop when a message arrives, the consume ends or `stop()` is called. */
      let wake: (() => void) | undefined;
      const signal = () => {
        const w = wake;
        wake = undefined;
        w?.();
      };
      const maxBatch = consumer.handleBatch ? Math.max(1, consumer.maxBatch ?? 200) : 1;
      // Messages arrive in order through the callback into our own buffer; each round takes
      // what has arrived, up to `maxBatch`, and handles it (one transaction when the consumer
      // has a batch handler, else one by one). The batch is never held back waiting for more:
      // nats.js's `getPending()` over-counts after its internal re-pull (the pull request is
      // queued with the messages and counted in flight), so waiting on it stalled a batch
      // until the broker redelivered it after `ack_wait`.
      const loop = (async () => {
        while (!stopping) {
          let current: ConsumerMessages | undefined;
          try {
            const c = await js.consumers.get(stream, durable);
            const buffer: JsMsg[] = [];
            let ended = false;
            let endError: unknown;
            current = await c.consume({
              max_messages: 100,
              callback: (m) => {
                buffer.push(m);
                signal();
              },
            });
            messages = current;
            void current.closed().then(
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
                  await new Promise((r) => setTimeout(r, delay));
                  delay = Math.min(delay * 2, 5000);
                }
              }
              // If an ack is lost the broker redelivers; the inbox absorbs it.
              for (const m of batch) m.ack();
              if (stopping) break;
            }
            if (stopping) break;
            if (endError) throw endError;
          } catch (error) {
            if (stopping) return;
            logger.warn({ err: error, consumer: durable }, 'nats: consumer interrupted; resuming');
            await new Promise((r) => setTimeout(r, 500));
          } finally {
            await current?.close().catch(() => {});
          }
        }
      })();
      const handle = {
        async stop() {
          stopping = true;
          signal();
          await messages?.close().catch(() => {});
          await loop;
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
      await nc.drain().catch(() => nc.close());
    },
  };
}

/** NATS message headers carrying `carrier` (W3C `traceparent`, `tracestate`). */
function natsHeadersOf(carrier: TraceCarrier): MsgHdrs {
  const h = natsHeaders();
  for (const [key, value] of Object.entries(carrier)) h.set(key, value);
  return h;
}
