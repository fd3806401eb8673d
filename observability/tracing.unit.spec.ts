/**
 * Tracing configuration (the OpenTelemetry SDK environment variables), W3C traceparent
 * validation, and "off": with no OTLP endpoint `startTracing` registers nothing, so the api hands
 * out non-recording spans and flowgraph's instrumentation passes straight through.
 */
import { context, INVALID_SPAN_CONTEXT, propagation, trace } from '@opentelemetry/api';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/env.ts';
import { contextFromIdentity } from '../federation/requestContext.ts';
import { traceRootResolvers } from './graphqlSpans.ts';
import { parseResourceAttributes, parseTracingConfig, rateLimitedDiagLogger, startTracing } from './tracing.ts';
import { isValidTraceparent, traceIdOf, traceparentOf, tracingOn } from './tracer.ts';

const ENDPOINT = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' };

describe('parseTracingConfig', () => {
  it('is off without an OTLP endpoint, with OTEL_SDK_DISABLED=true and with OTEL_TRACES_EXPORTER=none', () => {
    expect(parseTracingConfig({}, 'flowgraph')).toEqual({ enabled: false, reason: 'no OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' });
    expect(parseTracingConfig({ ...ENDPOINT, OTEL_SDK_DISABLED: 'TRUE' }, 'flowgraph')).toMatchObject({ enabled: false, reason: 'OTEL_SDK_DISABLED=true' });
    expect(parseTracingConfig({ ...ENDPOINT, OTEL_TRACES_EXPORTER: 'none' }, 'flowgraph')).toMatchObject({ enabled: false, reason: 'OTEL_TRACES_EXPORTER=none' });
    expect(parseTracingConfig({ ...ENDPOINT, OTEL_SDK_DISABLED: 'false' }, 'flowgraph').enabled).toBe(true);
  });

  it('appends /v1/traces to the base endpoint and uses the traces endpoint as it is', () => {
    expect(parseTracingConfig(ENDPOINT, 'flowgraph')).toEqual({ enabled: true, url: 'http://collector:4318/v1/traces', serviceName: 'flowgraph', resourceAttributes: {} });
    expect(parseTracingConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example/base/' }, 'x')).toMatchObject({ url: 'https://otel.example/base/v1/traces' });
    expect(parseTracingConfig({ ...ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://other:9999/custom' }, 'x')).toMatchObject({ url: 'http://other:9999/custom' });
  });

  it('names the service from OTEL_SERVICE_NAME, then OTEL_RESOURCE_ATTRIBUTES, then the default', () => {
    const attrs = 'service.name=from-attrs,deployment.environment.name=prod';
    expect(parseTracingConfig({ ...ENDPOINT, OTEL_RESOURCE_ATTRIBUTES: attrs, OTEL_SERVICE_NAME: 'named' }, 'flowgraph')).toMatchObject({
      serviceName: 'named',
      resourceAttributes: { 'deployment.environment.name': 'prod' },
    });
    expect(parseTracingConfig({ ...ENDPOINT, OTEL_RESOURCE_ATTRIBUTES: attrs }, 'flowgraph')).toMatchObject({ serviceName: 'from-attrs' });
    expect(parseTracingConfig(ENDPOINT, 'workflows')).toMatchObject({ serviceName: 'workflows' });
  });

  it.each([
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, /OTEL_EXPORTER_OTLP_ENDPOINT: expected an http\(s\) URL/],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://collector/v1/traces' }, /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: expected an http\(s\) URL/],
    [{ ...ENDPOINT, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /OTEL_EXPORTER_OTLP_PROTOCOL: .*"http\/json".*"grpc"/],
    [{ ...ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: 'http/protobuf' }, /OTEL_EXPORTER_OTLP_TRACES_PROTOCOL/],
    [{ ...ENDPOINT, OTEL_TRACES_EXPORTER: 'zipkin' }, /OTEL_TRACES_EXPORTER: only "otlp" or "none"/],
    [{ ...ENDPOINT, OTEL_RESOURCE_ATTRIBUTES: 'novalue' }, /OTEL_RESOURCE_ATTRIBUTES: expected key=value/],
  ])('refuses %o with a ConfigError naming the variable', (env, message) => {
    expect(() => parseTracingConfig(env, 'flowgraph')).toThrow(ConfigError);
    expect(() => parseTracingConfig(env, 'flowgraph')).toThrow(message);
  });

  it('decodes percent-encoded resource attribute values and trims spaces', () => {
    expect(parseResourceAttributes(' a = x%2Cy , b=%E2%9C%93,,')).toEqual({ a: 'x,y', b: '✓' });
    expect(() => parseResourceAttributes('a=%ZZ')).toThrow(/not valid percent-encoding/);
  });
});

describe('W3C traceparent validation', () => {
  const valid = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  it.each([
    [valid, true],
    ['01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future', true],
    [`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, false],
    [`00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`, false],
    ['ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', false],
    [`${valid}-extra`, false],
    [valid.toUpperCase(), false],
    ['garbage', false],
    [`01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-${'x'.repeat(600)}`, false],
    [undefined, false],
  ])('%s → %s', (value, expected) => {
    expect(isValidTraceparent(value)).toBe(expected);
  });

  it('reads the trace id of a valid one only', () => {
    expect(traceIdOf(valid)).toBe('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(traceIdOf(`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`)).toBeNull();
  });

  it('formats a span context as version 00', () => {
    expect(traceparentOf({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: 1 })).toBe(valid);
    expect(traceparentOf(INVALID_SPAN_CONTEXT)).toBeUndefined();
  });

  it('never records a hostile traceparent header as event metadata', () => {
    const identity = { subject: 'alice', role: 'operator' } as const;
    for (const hostile of [`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, 'x'.repeat(10_000), `${valid}-extra`]) {
      expect(contextFromIdentity(identity, (name) => (name === 'traceparent' ? hostile : undefined)).meta.traceparent).toBeUndefined();
    }
    expect(contextFromIdentity(identity, (name) => (name === 'traceparent' ? valid : undefined)).meta.traceparent).toBe(valid);
  });
});

describe('tracing off (no OTEL variables)', () => {
  it('registers nothing: the api hands out non-recording spans and propagates nothing of its own', async () => {
    const tracing = startTracing({}, { defaultServiceName: 'flowgraph' });
    expect(tracing.enabled).toBe(false);
    expect(tracingOn()).toBe(false);
    const span = trace.getTracer('test').startSpan('anything');
    expect(span.isRecording()).toBe(false);
    expect(trace.isSpanContextValid(span.spanContext())).toBe(false);
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    expect(carrier).toEqual({});
    await tracing.shutdown();
  });

  it('calls root field resolvers straight through', async () => {
    const resolvers = traceRootResolvers({
      Query: { hello: (_: unknown, args: { name: string }) => `hi ${args.name}`, later: { resolve: async () => 42 } },
      Thing: { id: () => 'kept' },
    });
    expect((resolvers.Query.hello as (p: unknown, a: { name: string }) => string)(null, { name: 'bob' })).toBe('hi bob');
    expect(await (resolvers.Query.later as { resolve: () => Promise<number> }).resolve()).toBe(42);
    expect(resolvers.Thing.id()).toBe('kept');
  });
});

describe("the SDK's own warnings (a failed export)", () => {
  it('become rate-limited warn lines naming how many were suppressed', () => {
    const lines: Array<{ object: Record<string, unknown>; message: string }> = [];
    const logger = rateLimitedDiagLogger((object, message) => lines.push({ object: object as Record<string, unknown>, message }), 60_000);
    logger.error('export failed', new Error('connect ECONNREFUSED 127.0.0.1:1'));
    logger.warn('again');
    logger.error('and again');
    logger.info('not logged');
    expect(lines).toEqual([{ object: { suppressedSinceLast: 0, detail: 'connect ECONNREFUSED 127.0.0.1:1' }, message: 'tracing: export failed' }]);
    const unlimited = rateLimitedDiagLogger((object, message) => lines.push({ object: object as Record<string, unknown>, message }), 0);
    unlimited.warn('first');
    unlimited.warn('second', { code: 14 });
    expect(lines.slice(1).map((l) => l.message)).toEqual(['tracing: first', 'tracing: second']);
    expect(lines[2]!.object).toEqual({ suppressedSinceLast: 0, detail: '{"code":14}' });
  });

  it('an unreachable collector is reported at warn level (spans lost), not silently', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => server.close(() => resolve())); // nothing listens there now
    const warnings: string[] = [];
    const tracing = startTracing(
      { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}`, OTEL_EXPORTER_OTLP_TIMEOUT: '2000' },
      { defaultServiceName: 'diag-test', logger: { info: () => {}, warn: (_object, message) => warnings.push(message) } },
    );
    try {
      trace.getTracer('test').startSpan('lost').end();
    } finally {
      await tracing.shutdown();
    }
    expect(warnings.length).toBeGreaterThan(0);
    expect(warnings[0]).toMatch(/^tracing: /);
  });
});
