/**
 * What instrumented code needs of tracing, on `@opentelemetry/api` only (no SDK import): whether
 * a tracer provider is registered, the flowgraph tracer, the service a piece of work belongs to,
 * and W3C `traceparent` validation.
 *
 * Off (no provider registered by `observability/tracing.ts`, the default): {@link tracingOn} is
 * `false` and instrumented code skips span creation and `context.with` altogether, so the hot
 * paths pay one boolean test. On: spans go through the global provider.
 */
import { context, createContextKey, SpanStatusCode, trace, type Context, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';

/** Instrumentation scope name of every span flowgraph itself starts. */
export const TRACER_NAME = 'flowgraph';

/**
 * Span attribute naming the flowgraph service a span's work belongs to (`gateway`, `workflows`,
 * `content`, `knowledge`, `monitoring`). `npm start` hosts them all in one process, so one
 * resource `service.name` cannot tell them apart: every span started in a context carrying
 * {@link SERVICE_CONTEXT_KEY} gets this attribute (Apollo Gateway's own spans too), set by the
 * span processor of `observability/tracing.ts`.
 */
export const SERVICE_ATTRIBUTE = 'flowgraph.service';

/** Context key carrying the flowgraph service name (see {@link SERVICE_ATTRIBUTE}). */
export const SERVICE_CONTEXT_KEY = createContextKey('flowgraph.service');

let on = false;
let cachedTracer: Tracer | undefined;

/** Whether a tracer provider was registered by `startTracing` / `startTestTracing` (and not shut down). */
export function tracingOn(): boolean {
  return on;
}

/** Set by `observability/tracing.ts` when it registers or unregisters its provider. Internal. */
export function setTracingOn(value: boolean): void {
  on = value;
  cachedTracer = undefined;
}

/** The flowgraph tracer of the global provider (a no-op tracer when none is registered). */
export function tracer(): Tracer {
  return (cachedTracer ??= trace.getTracer(TRACER_NAME));
}

/** `parent` (default: the active context) naming `service` as the owner of the work run in it. */
export function withService(service: string, parent: Context = context.active()): Context {
  return parent.setValue(SERVICE_CONTEXT_KEY, service);
}

/** The service name carried by `ctx`, if any. */
export function serviceOf(ctx: Context): string | undefined {
  const value = ctx.getValue(SERVICE_CONTEXT_KEY);
  return typeof value === 'string' ? value : undefined;
}

/**
 * W3C Trace Context, section 3.2 (`traceparent`): version `00` exactly 55 characters
 * `00-<32 hex trace-id>-<16 hex parent-id>-<2 hex flags>`; a later version (not `ff`) may append
 * `-<more>`. Lower-case hex only; all-zero trace-id or parent-id is invalid.
 */
const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_SPAN_ID = '0'.repeat(16);
/** Longest `traceparent` accepted, in characters: far above version 00's 55. */
export const MAX_TRACEPARENT_LENGTH = 512;

/**
 * Whether `value` is a valid W3C `traceparent` (see above): anything else — garbage, oversized
 * (> {@link MAX_TRACEPARENT_LENGTH} characters), version `ff`, a version-00 value with extra
 * fields, all-zero ids — is `false`, and must be ignored rather than propagated or stored.
 */
export function isValidTraceparent(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > MAX_TRACEPARENT_LENGTH) return false;
  const match = TRACEPARENT.exec(value);
  if (!match) return false;
  const [, version, traceId, spanId, , rest] = match;
  if (version === 'ff' || (version === '00' && rest !== undefined)) return false;
  return traceId !== ZERO_TRACE_ID && spanId !== ZERO_SPAN_ID;
}

/** The `traceparent` (version 00) of `spanContext`, or undefined when it is not valid. */
export function traceparentOf(spanContext: SpanContext): string | undefined {
  const flags = (spanContext.traceFlags & 0xff).toString(16).padStart(2, '0');
  const value = `00-${spanContext.traceId}-${spanContext.spanId}-${flags}`;
  return isValidTraceparent(value) ? value : undefined;
}

/** The trace id of a valid `traceparent`, else null. */
export function traceIdOf(traceparent: unknown): string | null {
  return isValidTraceparent(traceparent) ? traceparent.slice(3, 35) : null;
}

/**
 * Runs `work` with `span` active in `ctx` and ends `span` when `work` settles (a throw or
 * rejection is recorded on the span, status ERROR, then rethrown). Only call when {@link tracingOn}.
 */
export async function inSpan<T>(span: Span, ctx: Context, work: () => Promise<T>): Promise<T> {
  try {
    return await context.with(trace.setSpan(ctx, span), work);
  } catch (error) {
    recordError(span, error);
    throw error;
  } finally {
    span.end();
  }
}

/** Records `error` on `span` (exception event, status ERROR with its message). */
export function recordError(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : String(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
}
