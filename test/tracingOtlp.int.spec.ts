/**
 * Issue 9, traces exported for real: `startTracing` configured by the standard variables
 * (`OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`) sends the
 * spans of one run, through its BatchSpanProcessor and the OTLP/HTTP exporter, to a real OTLP
 * receiver this test starts (node:http, `POST /v1/traces`, JSON: what exporter-trace-otlp-http
 * 0.223 sends); `shutdown()` flushes them. Checked on the received JSON: the resource's service
 * name and attributes, the parent ids from the client's traceparent to the subgraph's append.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTracing, type Tracing } from '../observability/tracing.ts';
import { tracingOn } from '../observability/tracer.ts';
import { attribute, SPAN_KIND, startOtlpReceiver, type OtlpReceiver, type OtlpSpan } from './support/otlpReceiver.ts';
import { defineWorkflow, startRunWith, startStack, type Stack } from './support/tracedStack.ts';

describe('spans exported over OTLP/HTTP to a real receiver', () => {
  let receiver: OtlpReceiver;
  let tracing: Tracing;
  let stack: Stack;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    tracing = startTracing(
      {
        OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/`,
        OTEL_SERVICE_NAME: 'flowgraph-otlp-test',
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=ci,team=flow%20graph',
      },
      { defaultServiceName: 'flowgraph' },
    );
    stack = await startStack('in-process', 'tracing_otlp');
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
    await tracing?.shutdown();
    await receiver?.close();
  });

  it('registers the provider with the OTLP endpoint of the variables', () => {
    expect(tracing.enabled).toBe(true);
    expect(tracingOn()).toBe(true);
    expect(tracing.config).toMatchObject({ enabled: true, url: `${receiver.url}/v1/traces`, serviceName: 'flowgraph-otlp-test' });
  });

  it("delivers one run's spans with the service name and the parent ids from the client to the append", async () => {
    const clientTraceId = randomUUID().replaceAll('-', '');
    const clientSpanId = randomUUID().replaceAll('-', '').slice(0, 16);
    const workflowId = await defineWorkflow(stack.client);
    const run = await startRunWith(stack.client, workflowId, { traceparent: `00-${clientTraceId}-${clientSpanId}-01` });
    await stack.close();
    // shutdown() flushes the BatchSpanProcessor's queue to the receiver.
    await tracing.shutdown();
    expect(tracingOn()).toBe(false);

    expect(receiver.received.length).toBeGreaterThan(0);
    for (const request of receiver.received) expect(request.contentType).toBe('application/json');
    const resources = receiver.received.flatMap((r) => r.body.resourceSpans);
    for (const resource of resources) {
      expect(attribute(resource.resource.attributes, 'service.name')).toBe('flowgraph-otlp-test');
      expect(attribute(resource.resource.attributes, 'deployment.environment.name')).toBe('ci');
      expect(attribute(resource.resource.attributes, 'team')).toBe('flow graph');
      expect(attribute(resource.resource.attributes, 'telemetry.sdk.language')).toBe('nodejs');
    }
    const spans = resources.flatMap((r) => r.scopeSpans.flatMap((s) => s.spans)).filter((s) => s.traceId === clientTraceId);
    const only = (what: string, predicate: (span: OtlpSpan) => boolean) => {
      const found = spans.filter(predicate);
      expect(found.length, `${what} among ${spans.map((s) => s.name).join(', ')}`).toBe(1);
      return found[0]!;
    };
    const gatewayServer = only('gateway SERVER', (s) => s.kind === SPAN_KIND.SERVER && attribute(s.attributes, 'flowgraph.service') === 'gateway');
    expect(gatewayServer.parentSpanId).toBe(clientSpanId);
    const fetch = only('CLIENT fetch', (s) => s.kind === SPAN_KIND.CLIENT && attribute(s.attributes, 'flowgraph.subgraph') === 'workflows');
    const subgraphServer = only('workflows SERVER', (s) => s.kind === SPAN_KIND.SERVER && attribute(s.attributes, 'flowgraph.service') === 'workflows');
    expect(subgraphServer.parentSpanId).toBe(fetch.spanId);
    const resolver = only('resolver', (s) => s.name === 'resolve Mutation.startRun');
    expect(resolver.parentSpanId).toBe(subgraphServer.spanId);
    const append = only('append', (s) => s.name === 'eventstore.append' && attribute(s.attributes, 'eventstore.stream_id') === `run-${run.id}`);
    expect(append.parentSpanId).toBe(resolver.spanId);
    const producers = spans.filter((s) => s.kind === SPAN_KIND.PRODUCER);
    expect(producers.length).toBe(2);
    for (const producer of producers) expect(producer.parentSpanId).toBe(append.spanId);
  });
});
