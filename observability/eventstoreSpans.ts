/**
 * The event store's append span, and the trace context it gives the events it stores.
 */
import { SpanKind } from '@opentelemetry/api';
import type { AppendOptions, NewEvent } from '../eventstore/types.ts';
import { recordError, traceparentOf, tracer, tracingOn } from './tracer.ts';

/**
 * Runs `append` (one batch to `streamId`) in an active INTERNAL span `eventstore.append`, child
 * of the active span (a resolver's, a consumer's), with `db.system.name` `postgresql`,
 * `db.operation.name` `append_to_stream`, `eventstore.stream_id`, `eventstore.event_count` and,
 * once stored, `eventstore.duplicate`. The batch's metadata gets `traceparent` = this span's
 * context (replacing the batch-level one, e.g. the request's raw header; an event's own
 * metadata still wins per key), so the stored events name the append that stored them. With
 * tracing off (or a batch the store will refuse anyway): `append(options)` unchanged.
 */
export async function traceAppend<R extends { result: { duplicate?: boolean } }>(
  streamId: string,
  events: readonly NewEvent[],
  options: AppendOptions | undefined,
  append: (options: AppendOptions | undefined) => Promise<R>,
): Promise<R> {
  if (!tracingOn()) return append(options);
  return tracer().startActiveSpan(
    'eventstore.append',
    {
      kind: SpanKind.INTERNAL,
      attributes: {
        'db.system.name': 'postgresql',
        'db.operation.name': 'append_to_stream',
        'eventstore.stream_id': streamId,
        'eventstore.event_count': Array.isArray(events) ? events.length : 0,
      },
    },
    async (span) => {
      try {
        const traceparent = traceparentOf(span.spanContext());
        const traced = traceparent === undefined ? options : { ...options, metadata: { ...options?.metadata, traceparent } };
        const value = await append(traced);
        span.setAttribute('eventstore.duplicate', value.result.duplicate === true);
        return value;
      } catch (error) {
        recordError(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  );
}
