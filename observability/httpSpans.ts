/**
 * HTTP spans (OpenTelemetry HTTP semantic conventions, stable since 1.23): a SERVER span per
 * GraphQL request of the gateway and of each subgraph, continuing the caller's W3C
 * `traceparent`, and a CLIENT span per subgraph fetch of the gateway, whose context travels to
 * the subgraph in `traceparent`. Every function here costs one boolean test when tracing is off.
 */
import type http from 'node:http';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Span, type TextMapGetter } from '@opentelemetry/api';
import { inSpan, isValidTraceparent, recordError, tracer, tracingOn, withService } from './tracer.ts';

/** W3C Trace Context header names. */
const TRACEPARENT = 'traceparent';
const TRACESTATE = 'tracestate';
/** Longest `tracestate` passed on (W3C: at most 32 list members of 256 characters, so 8 KiB suffices). */
const MAX_TRACESTATE_LENGTH = 8192;

/**
 * Reads Trace Context from Node's incoming headers, giving the propagator only a valid
 * `traceparent` (`isValidTraceparent`: garbage, oversized, all-zero ids are dropped, so the
 * request starts a new trace) and a bounded `tracestate`.
 */
const incomingGetter: TextMapGetter<http.IncomingHttpHeaders> = {
  keys: (headers) => Object.keys(headers),
  get(headers, key) {
    const raw = headers[key];
    const value = Array.isArray(raw) ? raw[0] : raw;
    if (value === undefined) return undefined;
    if (key === TRACEPARENT) return isValidTraceparent(value.trim()) ? value.trim() : undefined;
    if (key === TRACESTATE) return value.length <= MAX_TRACESTATE_LENGTH ? value : undefined;
    return value;
  },
};

/**
 * Runs `work` (the handling of one GraphQL request, resolving once the response is sent) in a
 * SERVER span `<METHOD> <route>` (e.g. `POST /graphql`) whose parent is the request's
 * `traceparent` when valid (else a new trace), with the context naming `service`
 * (`flowgraph.service`). Attributes: `http.request.method`, `url.path`, `url.scheme`,
 * `http.route`, `http.response.status_code`; status ERROR for a 5xx answer or a throw.
 * With tracing off: `work()`.
 */
export function withServerSpan(req: http.IncomingMessage, res: http.ServerResponse, service: string, route: string, work: () => Promise<void>): Promise<void> {
  if (!tracingOn()) return work();
  const method = (req.method ?? 'GET').toUpperCase();
  const parent = withService(service, propagation.extract(ROOT_CONTEXT, req.headers, incomingGetter));
  const span = tracer().startSpan(
    `${method} ${route}`,
    {
      kind: SpanKind.SERVER,
      attributes: { 'http.request.method': method, 'url.path': route, 'url.scheme': 'http', 'http.route': route },
    },
    parent,
  );
  return inSpan(span, parent, async () => {
    await work();
    span.setAttribute('http.response.status_code', res.statusCode);
    if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
  });
}

/** What `fetch` takes as its second argument, with Apollo's plain-object headers. */
type FetchInit = RequestInit & { headers?: Record<string, string> };

/**
 * `fetch(url, init)` in a CLIENT span `POST` (child of the active span: Apollo Gateway's
 * `gateway.fetch`) whose context is injected into the request's `traceparent` (replacing any
 * other), with `flowgraph.subgraph` = `subgraph`, `http.request.method`, `server.address`,
 * `server.port`, `url.full` and `http.response.status_code` (status ERROR for a 5xx answer or a
 * failed fetch). The span ends when the response's headers arrived. Only call when `tracingOn()`.
 */
export async function tracedSubgraphFetch(subgraph: string, url: string, init: FetchInit): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase();
  const target = new URL(url);
  const span: Span = tracer().startSpan(method, {
    kind: SpanKind.CLIENT,
    attributes: {
      'flowgraph.subgraph': subgraph,
      'http.request.method': method,
      'server.address': target.hostname,
      'server.port': Number(target.port || (target.protocol === 'https:' ? 443 : 80)),
      'url.full': `${target.origin}${target.pathname}`,
    },
  });
  const ctx = context.active();
  const headers: Record<string, string> = { ...init.headers };
  delete headers[TRACEPARENT];
  delete headers[TRACESTATE];
  propagation.inject(trace.setSpan(ctx, span), headers);
  try {
    const response = await globalThis.fetch(url, { ...init, headers });
    span.setAttribute('http.response.status_code', response.status);
    if (response.status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    return response;
  } catch (error) {
    recordError(span, error);
    throw error;
  } finally {
    span.end();
  }
}
