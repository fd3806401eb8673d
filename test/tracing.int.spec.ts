/**
 * Issue 9, traces: one client operation is one trace, from the gateway through the subgraph, the
 * event store append, the relay and the broker to the consumer in another service — over the
 * in-process transport and over NATS JetStream. The gateway, the workflows and the monitoring
 * services run in this process on fresh databases, with the SDK's InMemorySpanExporter
 * (observability/testing/tracing.ts).
 *
 * Checked: the gateway's SERVER span continues the client's traceparent; Apollo Gateway's spans
 * are its children; the CLIENT span of the subgraph fetch is the parent of the subgraph's SERVER
 * span; the root field's resolver span is the parent of the append; the appended events carry
 * the append span's context in their metadata; the relay's PRODUCER span is the append's child;
 * the monitoring consumer's CONSUMER span links to the producer (and continues its trace); the
 * monitoring append of the observation is the consumer's child; `trace(correlationId).traceId`
 * is the trace's id. Hostile traceparent headers start a new trace and are never stored.
 */
import { randomUUID } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../eventstore/testing/fixture.ts';
import { startTestTracing, type TestTracing } from '../observability/testing/tracing.ts';
import { SERVICE_ATTRIBUTE, traceparentOf } from '../observability/tracer.ts';
import { startRunWith, startStack, defineWorkflow, type Stack } from './support/tracedStack.ts';

let tracing: TestTracing;
beforeAll(() => {
  tracing = startTestTracing('flowgraph-trace-test');
});
afterAll(async () => {
  await tracing?.shutdown();
});

const idOf = (span: ReadableSpan) => span.spanContext().spanId;
const traceOf = (span: ReadableSpan) => span.spanContext().traceId;
const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

/** The one span of `spans` matching `predicate` (a failure lists the names seen). */
function one(spans: ReadableSpan[], what: string, predicate: (span: ReadableSpan) => boolean): ReadableSpan {
  const found = spans.filter(predicate);
  expect(found.length, `${what}: spans were ${spans.map((s) => `${s.name}[${s.attributes[SERVICE_ATTRIBUTE] ?? '-'}]`).join(', ')}`).toBe(1);
  return found[0]!;
}

/** Whether `ancestor` is `span` or one of its ancestors within `spans`. */
function descendsFrom(spans: ReadableSpan[], span: ReadableSpan, ancestor: ReadableSpan): boolean {
  const byId = new Map(spans.map((s) => [idOf(s), s]));
  for (let current: ReadableSpan | undefined = span; current; current = byId.get(parentOf(current) ?? '')) {
    if (idOf(current) === idOf(ancestor)) return true;
  }
  return false;
}

describe.each(['in-process', 'nats'] as const)('one run traced end to end over the %s transport', (kind) => {
  let stack: Stack;
  let workflowId: string;
  beforeAll(async () => {
    stack = await startStack(kind, `tracing_${kind.replace('-', '_')}`);
    workflowId = await defineWorkflow(stack.client);
  }, 60_000);
  afterAll(async () => {
    await stack?.close();
  });

  it('gateway → subgraph fetch → subgraph → append → relay publish → consumer in monitoring, one trace', async () => {
    const clientTraceId = randomUUID().replaceAll('-', '');
    const clientSpanId = randomUUID().replaceAll('-', '').slice(0, 16);
    const correlationId = `trace-${randomUUID()}`;
    tracing.reset();
    const startRun = await startRunWith(stack.client, workflowId, { traceparent: `00-${clientTraceId}-${clientSpanId}-01`, 'x-correlation-id': correlationId });
    // The monitoring consumer's spans end last: wait until they cover both events of the run (RunStarted, StepStarted).
    await eventually(
      () =>
        new Set(
          tracing
            .spans()
            .filter((s) => s.kind === SpanKind.CONSUMER && s.attributes[SERVICE_ATTRIBUTE] === 'monitoring' && traceOf(s) === clientTraceId)
            .flatMap((s) => s.links.map((link) => link.attributes?.['messaging.message.id'])),
        ).size >= 2,
      20_000,
      'the monitoring consumer handled both events',
    );
    const spans = tracing.spans().filter((s) => traceOf(s) === clientTraceId);

    const server = one(spans, 'gateway SERVER span', (s) => s.kind === SpanKind.SERVER && s.attributes[SERVICE_ATTRIBUTE] === 'gateway');
    expect(server.name).toBe('POST /graphql');
    expect(parentOf(server)).toBe(clientSpanId);
    expect(server.attributes['http.response.status_code']).toBe(200);
    const request = one(spans, 'gateway.request', (s) => s.name === 'gateway.request');
    expect(parentOf(request)).toBe(idOf(server));
    const fetch = one(spans, 'gateway.fetch', (s) => s.name === 'gateway.fetch');
    expect(descendsFrom(spans, fetch, request)).toBe(true);

    const clientSpan = one(spans, 'CLIENT span of the workflows fetch', (s) => s.kind === SpanKind.CLIENT && s.attributes['flowgraph.subgraph'] === 'workflows');
    expect(parentOf(clientSpan)).toBe(idOf(fetch));
    expect(clientSpan.attributes['http.response.status_code']).toBe(200);
    const subgraph = one(spans, 'workflows SERVER span', (s) => s.kind === SpanKind.SERVER && s.attributes[SERVICE_ATTRIBUTE] === 'workflows');
    expect(parentOf(subgraph)).toBe(idOf(clientSpan));
    expect(subgraph.attributes).toMatchObject({ 'graphql.operation.type': 'mutation', 'http.route': '/graphql' });
    const resolver = one(spans, 'resolver span', (s) => s.name === 'resolve Mutation.startRun');
    expect(parentOf(resolver)).toBe(idOf(subgraph));
    expect(resolver.attributes[SERVICE_ATTRIBUTE]).toBe('workflows');
    const append = one(spans, 'workflows append', (s) => s.name === 'eventstore.append' && s.attributes[SERVICE_ATTRIBUTE] === 'workflows' && s.attributes['eventstore.stream_id'] === `run-${startRun.id}`);
    expect(descendsFrom(spans, append, resolver)).toBe(true);

    // The stored events carry the append's context.
    const { rows } = await stack.workflowsDb.pool.query<{ event_id: string; type: string; traceparent: string }>(
      `SELECT event_id::text, type, metadata->>'traceparent' AS traceparent FROM eventstore.events WHERE stream_id = $1 ORDER BY stream_position`,
      [`run-${startRun.id}`],
    );
    expect(rows.map((r) => r.type)).toEqual(['RunStarted', 'StepStarted']);
    for (const row of rows) expect(row.traceparent).toBe(traceparentOf(append.spanContext()));

    // The relay's PRODUCER span per event, child of the append; the consumer links to it.
    const producers = rows.map((row) =>
      one(spans, `PRODUCER span of ${row.type}`, (s) => s.kind === SpanKind.PRODUCER && s.attributes['messaging.message.id'] === row.event_id),
    );
    for (const producer of producers) {
      expect(parentOf(producer)).toBe(idOf(append));
      expect(producer.attributes).toMatchObject({ 'messaging.system': kind === 'nats' ? 'nats' : 'in_process', 'messaging.operation.type': 'send', [SERVICE_ATTRIBUTE]: 'workflows' });
      expect(producer.name).toMatch(/^send (\S+\.)?workflows\.(RunStarted|StepStarted)$/);
    }
    const consumers = spans.filter((s) => s.kind === SpanKind.CONSUMER && s.attributes['messaging.consumer.group.name'] === 'monitoring-from-workflows');
    expect(consumers.length).toBeGreaterThan(0);
    for (const producer of producers) {
      const linking = consumers.filter((c) => c.links.some((link) => link.context.spanId === idOf(producer) && link.attributes?.['messaging.message.id'] === producer.attributes['messaging.message.id']));
      expect(linking.length, `a CONSUMER span links to the producer of ${producer.name}`).toBeGreaterThan(0);
      for (const consumer of linking) {
        expect(consumer.attributes[SERVICE_ATTRIBUTE]).toBe('monitoring');
        // Every message of the delivery is of this one trace: the consumer continues it.
        expect(producers.map(idOf)).toContain(parentOf(consumer));
      }
    }
    const observation = spans.find((s) => s.name === 'eventstore.append' && s.attributes[SERVICE_ATTRIBUTE] === 'monitoring')!;
    expect(consumers.map(idOf)).toContain(parentOf(observation));

    // The monitoring subgraph answers the trace id of the correlation id.
    const { trace } = await stack.client.mustQuery<{ trace: { traceId: string | null; sources: string[] } }>(
      'query($c: ID!) { trace(correlationId: $c) { traceId sources } }',
      { c: correlationId },
    );
    expect(trace).toEqual({ traceId: clientTraceId, sources: ['workflows'] });
  });

  it.each([
    ['garbage', 'not-a-traceparent'],
    ['all-zero trace id', `00-${'0'.repeat(32)}-b7ad6b7169203331-01`],
    ['all-zero span id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
    ['version ff', '00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01'.replace(/^00/, 'ff')],
    ['oversized', `00-4bf92f3577b34da6a3ce929d0e0e4736-b7ad6b7169203331-01-${'a'.repeat(4000)}`],
  ])('a hostile traceparent (%s) starts a new trace and is never stored', async (_what, hostile) => {
    tracing.reset();
    const startRun = await startRunWith(stack.client, workflowId, { traceparent: hostile });
    const server = one(tracing.spans(), 'gateway SERVER span', (s) => s.kind === SpanKind.SERVER && s.attributes[SERVICE_ATTRIBUTE] === 'gateway');
    expect(server.parentSpanContext).toBeUndefined();
    expect(traceOf(server)).toMatch(/^(?!0{32})[0-9a-f]{32}$/);
    const { rows } = await stack.workflowsDb.pool.query<{ traceparent: string | null }>(
      `SELECT metadata->>'traceparent' AS traceparent FROM eventstore.events WHERE stream_id = $1`,
      [`run-${startRun.id}`],
    );
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.traceparent).not.toBe(hostile);
      expect(row.traceparent).toMatch(new RegExp(`^00-${traceOf(server)}-[0-9a-f]{16}-01$`));
    }
  });
});
