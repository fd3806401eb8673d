/**
 * Integration events: the part of a service's event log that other services may depend on
 * (DESIGN.md, "Integration events"). A service declares which of its event types are public,
 * with a versioned payload schema and a mapping from the stored event; the relay publishes
 * them through an `IntegrationTransport` (NATS JetStream, or in-process when embedded).
 */
import type { z } from 'zod';
import type { EventMetadata, LogPosition, RecordedEvent } from './types.ts';
import type { ConsumerPending } from './metrics.ts';
import type { RelayOptions } from './relay.ts';
import type { EventStore } from './store.ts';
import type { Subscription } from './subscribe.ts';

/** An integration event as it travels between services. JSON-serialisable. */
export interface IntegrationEvent<TData = unknown> {
  /** The stored event's id: the broker's de-duplication id and the consumer's inbox key. */
  eventId: string;
  /** Service that appended it: `workflows`, `content`, `knowledge`, `monitoring`. */
  source: string;
  /** Event type, e.g. `RunStarted`. The broker subject is `<source>.<type>`. */
  type: string;
  /** Version of the public payload schema. */
  schemaVersion: number;
  streamId: string;
  streamPosition: number;
  /** Public payload, validated against the declared schema before publishing. */
  data: TData;
  /** correlationId, causationId, actor, traceparent of the stored event. */
  metadata: EventMetadata;
  /** When the source stored it, ISO 8601. */
  occurredAt: string;
  /** Where it sits in the source's log. */
  position: LogPosition;
}

/** Declaration of one public event type. */
export interface PublicEventDefinition<TData = unknown> {
  /** Public schema version (bump it on an incompatible change and keep the old one published). */
  version: number;
  /** zod schema of the public payload. */
  schema: z.ZodType<TData>;
  /** Maps the stored event to the public payload. @default the stored data */
  toPublic?(event: RecordedEvent): unknown;
}

/** A service's public events by type. */
export type PublicEvents = Record<string, PublicEventDefinition>;

/** Turns a stored event into the integration event a relay publishes. @throws z.ZodError when the payload breaks its declared schema */
export function toIntegrationEvent(source: string, definition: PublicEventDefinition, event: RecordedEvent): IntegrationEvent {
  const data = definition.schema.parse(definition.toPublic ? definition.toPublic(event) : event.data);
  return {
    eventId: event.eventId,
    source,
    type: event.type,
    schemaVersion: definition.version,
    streamId: event.streamId,
    streamPosition: event.streamPosition,
    data,
    metadata: event.metadata,
    occurredAt: event.recordedAt.toISOString(),
    position: { transactionId: event.transactionId, globalPosition: event.globalPosition },
  };
}

/** What a consumer subscribes to. */
export interface IntegrationConsumerOptions {
  /** Durable consumer name, unique per consuming service and purpose, e.g. `knowledge-from-content`. */
  consumer: string;
  /** Source service whose events are consumed. */
  source: string;
  /** Event types of interest. @default all the source publishes */
  types?: readonly string[];
  /**
   * Handles one event. Resolving acknowledges it (its effects must be committed by then, with
   * the inbox row: see `handleOnce`); throwing makes the transport redeliver it later. Behind a
   * parking lot (`eventstore/parking.ts`, every service's consumers are), an event that keeps
   * failing is parked after the configured attempts, and one rejected with `EventRejectedError`
   * (its payload breaks the consumer's schema) at once.
   */
  handler(event: IntegrationEvent): Promise<void>;
  /**
   * Optional batch form: when given, transports pass every event they have at hand (in order,
   * up to `maxBatch`) in one call, so that a consumer can commit them in one transaction (see
   * `handleBatchOnce`). Resolving acknowledges all; throwing redelivers all.
   */
  handleBatch?(events: IntegrationEvent[]): Promise<void>;
  /** Most events per `handleBatch` call. @default 200 */
  maxBatch?: number;
}

/** A running consumer. */
export interface IntegrationConsumer {
  /**
   * Stops the consumer and hands over to the next one on the same durable name: no new call of
   * the handler starts; the call in progress is waited for (capped: NATS 5 s) and, if it
   * resolved, acknowledged; whatever was delivered but not acknowledged goes back to the broker
   * at once (NATS: NAKed in stream order after draining the subscription), so the next consumer
   * resumes exactly there, per stream in order, without waiting out the broker's ack timeout.
   * A call still running at the cap is abandoned: its events are handed back too and may be
   * handled twice (the inbox absorbs it). Never hangs (NATS: each broker round trip capped at 2 s;
   * a step that fails only costs promptness, redelivery after `ack_wait`). A process killed
   * without `close()` hands nothing back: its unacknowledged events return after the ack timeout.
   */
  close(): Promise<void>;
  /**
   * The consumer's backlog at the broker now (NATS JetStream: one consumer-info request). Absent
   * where the transport keeps no backlog (in-process: the relay's checkpoint waits for the consumer).
   */
  pending?(): Promise<ConsumerPending>;
}

/**
 * Carries integration events between services with at-least-once delivery.
 * `publish` resolves only when the event is durable on the other side (the broker's ack, or
 * for the in-process transport, every consumer's committed transaction).
 */
export interface IntegrationTransport {
  readonly kind: 'nats' | 'in-process';
  /** Publishes events in order; resolves after every one is acknowledged. */
  publish(events: readonly IntegrationEvent[]): Promise<void>;
  /** Starts a durable consumer. */
  consume(options: IntegrationConsumerOptions): Promise<IntegrationConsumer>;
  /**
   * Resolves once the broker answered a round trip (NATS: a PING/PONG flush); rejects when it
   * does not, when the transport is closed, or when `signal` aborts first. The readiness probe's
   * broker check (`federation/readiness.ts`).
   */
  ping(signal?: AbortSignal): Promise<void>;
  /** Stops every consumer and the connection. Idempotent. */
  close(): Promise<void>;
  /**
   * Transports that keep no messages (in-process) relay a service's log themselves, one
   * checkpoint per consumer, instead of taking `publish` calls from one relay (see
   * `broker/in-process.ts`). Absent on brokers (NATS): `startRelay` then publishes.
   */
  startRelay?(store: EventStore, options: RelayOptions): Subscription;
}
