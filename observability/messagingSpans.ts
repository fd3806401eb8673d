/**
 * Spans of integration events crossing services (OpenTelemetry semantic conventions for
 * messaging spans, 1.26+: `messaging.operation.type` `send` / `process`):
 *
 * - PRODUCER `send <subject>`, one per event the relay publishes, child of the event's creation
 *   context (its metadata `traceparent`: the `eventstore.append` span that stored it); it lasts
 *   until the transport acknowledged the event (NATS: the JetStream ack; in-process: every
 *   consumer committed). Its context travels in the message's `traceparent` header (NATS
 *   headers; the in-process transport hands it over beside the event).
 * - CONSUMER `process <source>` per delivery to a consumer (one event, or a batch), with a span
 *   Link to each message's producer context (attribute `messaging.message.id`). Parent: when
 *   every message of the delivery belongs to one trace, the first message's producer span, so
 *   that one client operation stays one trace from the gateway to the consumer in another
 *   service; a delivery mixing traces (a batch of several operations' events) is a root span of
 *   its own trace, tied to each producer by its link only (the conventions' rule for batches).
 *   A message without header falls back to its metadata `traceparent`.
 *
 * Attributes: `messaging.system` (`nats` or `in_process`), `messaging.operation.type`,
 * `messaging.operation.name` (`publish` / `process`), `messaging.destination.name` (the NATS
 * subject, or the source service for a delivery of several types), `messaging.message.id`
 * (the event id), `messaging.consumer.group.name` (the durable consumer), `messaging.batch.message_count`,
 * `flowgraph.service` (the consuming service: `<service>` of the consumer name `<service>-from-<source>`).
 */
import { propagation, ROOT_CONTEXT, SpanKind, trace, type Context, type Link, type SpanContext } from '@opentelemetry/api';
import type { IntegrationEvent } from '../eventstore/integration.ts';
import { inSpan, isValidTraceparent, recordError, tracer, withService } from './tracer.ts';

/** The trace context headers of one message (`traceparent`, optionally `tracestate`). */
export type TraceCarrier = Record<string, string>;

/** `messaging.system` of the transports. */
export type MessagingSystem = 'nats' | 'in_process';

/** A started PRODUCER span: its context as message headers, and its end. */
export interface ProducerSpan {
  /** `traceparent` (and `tracestate`) of the PRODUCER span, for the message's headers. */
  carrier: TraceCarrier;
  /** Ends the span; with `error`, status ERROR. */
  end(error?: unknown): void;
}

/** The creation context of `event`: its metadata `traceparent` when valid. */
function creationContext(event: IntegrationEvent): Context {
  const traceparent = event.metadata?.traceparent;
  return isValidTraceparent(traceparent) ? propagation.extract(ROOT_CONTEXT, { traceparent }) : ROOT_CONTEXT;
}

/**
 * Starts the PRODUCER span of publishing `event` to `destination` (see the module comment).
 * Only call when `tracingOn()`.
 */
export function startProducerSpan(system: MessagingSystem, destination: string, event: IntegrationEvent): ProducerSpan {
  const parent = withService(event.source, creationContext(event));
  const span = tracer().startSpan(
    `send ${destination}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': system,
        'messaging.operation.type': 'send',
        'messaging.operation.name': 'publish',
        'messaging.destination.name': destination,
        'messaging.message.id': event.eventId,
      },
    },
    parent,
  );
  const carrier: TraceCarrier = {};
  propagation.inject(trace.setSpan(parent, span), carrier);
  return {
    carrier,
    end(error?: unknown) {
      if (error !== undefined) recordError(span, error);
      span.end();
    },
  };
}

/** Publishes `event` with `send(carrier)` inside its PRODUCER span (see {@link startProducerSpan}). */
export async function tracePublish<T>(system: MessagingSystem, destination: string, event: IntegrationEvent, send: (carrier: TraceCarrier) => Promise<T>): Promise<T> {
  const producer = startProducerSpan(system, destination, event);
  try {
    const value = await send(producer.carrier);
    producer.end();
    return value;
  } catch (error) {
    producer.end(error);
    throw error;
  }
}

/** Who consumes: the durable consumer's name (`<service>-from-<source>`) and its source. */
export interface ConsumerIdentity {
  consumer: string;
  source: string;
}

/**
 * The consuming service of a durable consumer named by the repository's convention
 * `<service>-from-<source>` (`knowledge-from-content`); undefined for another name.
 */
export function consumingServiceOf(consumer: string): string | undefined {
  return /^([a-z][a-z0-9_]*)-from-/.exec(consumer)?.[1];
}

/**
 * Runs `work` (a consumer's handling of `events`, one delivery) in an active CONSUMER span
 * `process <destination>` linked to each message's producer context (see the module comment).
 * `carriers[i]` are the headers of `events[i]` (missing: its metadata `traceparent`). Only call
 * when `tracingOn()`.
 */
export function traceDelivery<T>(
  system: MessagingSystem,
  consumer: ConsumerIdentity,
  destination: string,
  events: readonly IntegrationEvent[],
  carriers: readonly (TraceCarrier | undefined)[],
  work: () => Promise<T>,
): Promise<T> {
  const links: Link[] = [];
  let parentSpanContext: SpanContext | undefined;
  let oneTrace = true;
  events.forEach((event, i) => {
    const carrier = carriers[i];
    const ctx = carrier && isValidTraceparent(carrier.traceparent) ? propagation.extract(ROOT_CONTEXT, carrier) : creationContext(event);
    const spanContext = trace.getSpanContext(ctx);
    if (!spanContext) return;
    links.push({ context: spanContext, attributes: { 'messaging.message.id': event.eventId } });
    if (parentSpanContext === undefined) parentSpanContext = spanContext;
    else if (parentSpanContext.traceId !== spanContext.traceId) oneTrace = false;
  });
  const base = parentSpanContext !== undefined && oneTrace ? trace.setSpanContext(ROOT_CONTEXT, parentSpanContext) : ROOT_CONTEXT;
  const service = consumingServiceOf(consumer.consumer);
  const parent = service !== undefined ? withService(service, base) : base;
  const span = tracer().startSpan(
    `process ${destination}`,
    {
      kind: SpanKind.CONSUMER,
      links,
      attributes: {
        'messaging.system': system,
        'messaging.operation.type': 'process',
        'messaging.operation.name': 'process',
        'messaging.destination.name': destination,
        'messaging.consumer.group.name': consumer.consumer,
        'messaging.batch.message_count': events.length,
        ...(events.length === 1 ? { 'messaging.message.id': events[0]!.eventId } : {}),
      },
    },
    parent,
  );
  return inSpan(span, parent, work);
}

/** The `traceparent`/`tracestate` of a message's headers read with `get`; undefined without a valid traceparent. */
export function carrierFrom(get: (key: string) => string | undefined): TraceCarrier | undefined {
  const traceparent = get('traceparent');
  if (!isValidTraceparent(traceparent)) return undefined;
  const tracestate = get('tracestate');
  return tracestate ? { traceparent, tracestate } : { traceparent };
}
