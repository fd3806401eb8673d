/**
 * `startTracing`: the OpenTelemetry SDK for Node, registered only when an OTLP endpoint is
 * configured (DESIGN.md, "Observability"). Off by default: nothing is registered, the
 * `@opentelemetry/api` stays a no-op and flowgraph's instrumentation skips its spans
 * (`observability/tracer.ts` `tracingOn()`).
 *
 * On: a `NodeTracerProvider` (AsyncLocalStorage context manager, W3C Trace Context propagator)
 * with a `BatchSpanProcessor` exporting OTLP/HTTP JSON (`@opentelemetry/exporter-trace-otlp-http`,
 * `Content-Type: application/json`) to `<endpoint>`.
 *
 * Variables (OpenTelemetry SDK environment variable specification), read from `env`:
 * - `OTEL_SDK_DISABLED=true`: off, whatever else is set.
 * - `OTEL_TRACES_EXPORTER`: `otlp` (default) or `none` (off); anything else is a ConfigError.
 * - `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) or `OTEL_EXPORTER_OTLP_ENDPOINT` (base URL,
 *   `/v1/traces` appended): tracing is on only when one is set; an invalid URL is a ConfigError.
 * - `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL` / `OTEL_EXPORTER_OTLP_PROTOCOL`: only `http/json`
 *   (the default here) is supported; another value is a ConfigError.
 * - `OTEL_SERVICE_NAME`: the resource's `service.name` (else `service.name` of
 *   `OTEL_RESOURCE_ATTRIBUTES`, else the composition root's default).
 * - `OTEL_RESOURCE_ATTRIBUTES`: `key=value` pairs, comma-separated, values percent-decoded.
 * The SDK itself reads the rest from `process.env`: `OTEL_EXPORTER_OTLP_HEADERS`,
 * `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_TRACES_SAMPLER(_ARG)`, `OTEL_BSP_*`, span limits.
 */
import { context, diag, DiagLogLevel, propagation, trace, type Context, type DiagLogger } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { ConfigError } from '../config/env.ts';
import { SERVICE_ATTRIBUTE, serviceOf, setTracingOn } from './tracer.ts';

/** The parsed tracing configuration. */
export type TracingConfig =
  | { enabled: false; /** why it is off, for the start-up log */ reason: string }
  | {
      enabled: true;
      /** Full URL the spans are POSTed to, e.g. `http://collector:4318/v1/traces`. */
      url: string;
      /** Resource `service.name`. */
      serviceName: string;
      /** Resource attributes of `OTEL_RESOURCE_ATTRIBUTES` (without `service.name`). */
      resourceAttributes: Record<string, string>;
    };

/**
 * Parses the variables listed in this module's comment.
 * @param defaultServiceName `service.name` when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES name one
 * @throws ConfigError naming the variable: an unsupported exporter or protocol, an endpoint that
 *   is no http(s) URL, a malformed OTEL_RESOURCE_ATTRIBUTES
 */
export function parseTracingConfig(env: NodeJS.ProcessEnv, defaultServiceName: string): TracingConfig {
  const value = (name: string) => {
    const v = env[name]?.trim();
    return v === '' ? undefined : v;
  };
  if (value('OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return { enabled: false, reason: 'OTEL_SDK_DISABLED=true' };
  const exporters = (value('OTEL_TRACES_EXPORTER') ?? 'otlp').split(',').map((e) => e.trim().toLowerCase()).filter((e) => e !== '');
  const unsupported = exporters.filter((e) => e !== 'otlp' && e !== 'none');
  if (unsupported.length > 0) throw new ConfigError(`OTEL_TRACES_EXPORTER: only "otlp" or "none" are supported, got ${JSON.stringify(value('OTEL_TRACES_EXPORTER'))}`);
  if (!exporters.includes('otlp')) return { enabled: false, reason: 'OTEL_TRACES_EXPORTER=none' };
  const tracesEndpoint = value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const endpoint = value('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (tracesEndpoint === undefined && endpoint === undefined) return { enabled: false, reason: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' };
  const variable = tracesEndpoint !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  // The signal-specific endpoint is used as is; the base one gets the signal's path (OTLP exporter spec).
  const url = tracesEndpoint ?? `${endpoint!.replace(/\/+$/, '')}/v1/traces`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(`${variable}: expected an http(s) URL such as http://127.0.0.1:4318, got ${JSON.stringify(tracesEndpoint ?? endpoint)}`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new ConfigError(`${variable}: expected an http(s) URL such as http://127.0.0.1:4318, got ${JSON.stringify(tracesEndpoint ?? endpoint)}`);
  }
  const protocolVariable = value('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL' : 'OTEL_EXPORTER_OTLP_PROTOCOL';
  const protocol = value(protocolVariable);
  if (protocol !== undefined && protocol !== 'http/json') {
    throw new ConfigError(`${protocolVariable}: flowgraph exports traces as OTLP/HTTP JSON only ("http/json"), got ${JSON.stringify(protocol)}`);
  }
  const resourceAttributes = parseResourceAttributes(value('OTEL_RESOURCE_ATTRIBUTES'));
  const serviceName = value('OTEL_SERVICE_NAME') ?? resourceAttributes['service.name'] ?? defaultServiceName;
  delete resourceAttributes['service.name'];
  return { enabled: true, url, serviceName, resourceAttributes };
}

/**
 * `OTEL_RESOURCE_ATTRIBUTES` (OpenTelemetry Resource SDK spec): `key1=value1,key2=value2`, each
 * value percent-encoded (W3C Baggage octet rules), surrounding spaces trimmed.
 * @throws ConfigError for an entry without `=`, an empty key or a bad percent-encoding
 */
export function parseResourceAttributes(raw: string | undefined): Record<string, string> {
  const attributes: Record<string, string> = {};
  if (raw === undefined) return attributes;
  for (const entry of raw.split(',')) {
    if (entry.trim() === '') continue;
    const eq = entry.indexOf('=');
    const key = eq < 0 ? '' : entry.slice(0, eq).trim();
    if (key === '') throw new ConfigError(`OTEL_RESOURCE_ATTRIBUTES: expected key=value pairs separated by commas, got ${JSON.stringify(entry)}`);
    try {
      attributes[key] = decodeURIComponent(entry.slice(eq + 1).trim());
    } catch {
      throw new ConfigError(`OTEL_RESOURCE_ATTRIBUTES: the value of ${key} is not valid percent-encoding`);
    }
  }
  return attributes;
}

/** Options of {@link startTracing}. */
export interface StartTracingOptions {
  /** `service.name` when the variables name none: `flowgraph` for `npm start`, the service's name for `start:service`. */
  defaultServiceName: string;
  /**
   * Told once whether tracing is on and where spans go; with `warn`, also told of the SDK's own
   * warnings and errors (a failed export: spans lost), at most one line per {@link DIAG_LOG_INTERVAL_MS}.
   */
  logger?: { info(object: object, message: string): void; warn?(object: object, message: string): void };
  /**
   * Exporter to use instead of OTLP/HTTP (tests). The configuration still decides whether
   * tracing is on. @default `new OTLPTraceExporter({ url })`
   */
  exporter?: SpanExporter;
}

/** Running tracing. */
export interface Tracing {
  /** Whether a provider was registered. */
  readonly enabled: boolean;
  /** The configuration in force. */
  readonly config: TracingConfig;
  /**
   * Flushes every span still queued to the exporter, shuts the provider down and unregisters it
   * (the api is a no-op again). Call last on shutdown, after the servers and consumers closed.
   * Idempotent; never rejects (an export failure is swallowed: spans are best effort).
   */
  shutdown(): Promise<void>;
}

/**
 * Starts tracing per `env` (see the module comment): registers the global provider when an OTLP
 * endpoint is configured, else registers nothing.
 * @throws ConfigError for invalid variables (see {@link parseTracingConfig}); Error when another
 *   provider is already registered by flowgraph in this process
 */
export function startTracing(env: NodeJS.ProcessEnv, options: StartTracingOptions): Tracing {
  const config = parseTracingConfig(env, options.defaultServiceName);
  if (!config.enabled) {
    options.logger?.info({ tracing: 'off', reason: config.reason }, 'tracing off');
    return { enabled: false, config, shutdown: async () => {} };
  }
  const exporter = options.exporter ?? new OTLPTraceExporter({ url: config.url });
  const provider = registerProvider(config.serviceName, config.resourceAttributes, [new BatchSpanProcessor(exporter)]);
  options.logger?.info({ tracing: 'on', url: withoutCredentials(config.url), serviceName: config.serviceName }, 'tracing on: OTLP/HTTP export');
  const warn = options.logger?.warn?.bind(options.logger);
  if (warn) diag.setLogger(rateLimitedDiagLogger(warn, DIAG_LOG_INTERVAL_MS), DiagLogLevel.WARN);
  return {
    enabled: true,
    config,
    async shutdown() {
      await provider.shutdown();
      if (warn) diag.disable();
    },
  };
}

/**
 * Registers a global `NodeTracerProvider` with `processors` after the {@link ServiceAttributeProcessor},
 * the W3C Trace Context propagator and the AsyncLocalStorage context manager. Internal: used by
 * {@link startTracing} and `observability/testing/tracing.ts`.
 */
export function registerProvider(
  serviceName: string,
  resourceAttributes: Record<string, string>,
  processors: SpanProcessor[],
): { provider: NodeTracerProvider; shutdown(): Promise<void> } {
  if (registered) throw new Error('startTracing: a tracer provider is already registered in this process (shut it down first)');
  const resource = defaultResource().merge(resourceFromAttributes({ ...resourceAttributes, 'service.name': serviceName }));
  const provider = new NodeTracerProvider({ resource, spanProcessors: [new ServiceAttributeProcessor(), ...processors] });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  registered = true;
  setTracingOn(true);
  let closing: Promise<void> | undefined;
  return {
    provider,
    shutdown: () =>
      (closing ??= (async () => {
        setTracingOn(false);
        // A failed last export is the SDK's to report (diag: a warn line with startTracing's logger).
        await provider.forceFlush().catch((error: unknown) => diag.error('export of the last spans failed (they are lost)', error));
        await provider.shutdown().catch(() => {});
        trace.disable();
        propagation.disable();
        context.disable();
        registered = false;
      })()),
  };
}

let registered = false;

/**
 * Sets {@link SERVICE_ATTRIBUTE} on every span started in a context that names a service
 * (`observability/tracer.ts` `withService`): how the spans of the services `npm start` hosts in
 * one process (one resource) tell which service did the work.
 */
export class ServiceAttributeProcessor implements SpanProcessor {
  onStart(span: Span, parentContext: Context): void {
    const service = serviceOf(parentContext);
    if (service !== undefined && span.attributes[SERVICE_ATTRIBUTE] === undefined) span.setAttribute(SERVICE_ATTRIBUTE, service);
  }
  onEnd(_span: ReadableSpan): void {}
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

/** `url` without a user name and password (logged, never the credentials). */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.username === '' && parsed.password === '') return url;
    parsed.username = '***';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '(unparsable URL)';
  }
}

/** Shortest interval between two log lines of the SDK's warnings and errors (`startTracing`): 60 s. */
export const DIAG_LOG_INTERVAL_MS = 60_000;

/**
 * The OpenTelemetry SDK's diagnostic logger (where e.g. a failed export is reported) on top of
 * `warn`: warnings and errors become warn lines, at most one per `intervalMs` (an unreachable
 * collector fails every batch), each saying how many were suppressed since the last one.
 */
export function rateLimitedDiagLogger(warn: (object: object, message: string) => void, intervalMs: number): DiagLogger {
  let last = -Infinity;
  let suppressed = 0;
  const report = (message: string, ...args: unknown[]) => {
    const now = Date.now();
    if (now - last < intervalMs) {
      suppressed++;
      return;
    }
    last = now;
    const detail = args.map(briefOf).join(' ').slice(0, 500);
    warn({ suppressedSinceLast: suppressed, ...(detail ? { detail } : {}) }, `tracing: ${briefOf(message).slice(0, 300)}`);
    suppressed = 0;
  };
  const ignore = () => {};
  return { error: report, warn: report, info: ignore, debug: ignore, verbose: ignore };
}

/** A diagnostic argument in one line without a stack: the SDK's error handler passes errors as JSON text. */
function briefOf(value: unknown): string {
  if (value instanceof Error) return value.message;
  if (typeof value === 'string') {
    if (value.startsWith('{')) {
      try {
        const parsed = JSON.parse(value) as { message?: unknown };
        if (typeof parsed.message === 'string') return parsed.message;
      } catch {
        // plain text that starts with a brace
      }
    }
    return value;
  }
  return JSON.stringify(value) ?? String(value);
}
