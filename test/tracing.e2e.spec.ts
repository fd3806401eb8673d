/**
 * Issue 9, traces from the real `npm start` process (bin/start.ts: the gateway and the four
 * subgraphs in one process, in-process transport) to a real OTLP/HTTP receiver the test starts:
 * with `OTEL_EXPORTER_OTLP_ENDPOINT` set, one run is one trace from the client's traceparent to
 * the monitoring consumer, each span naming its service (`flowgraph.service`), the resource
 * naming the process (`service.name` `flowgraph`); `trace(correlationId).traceId` answers it.
 * The batch processor's delay is set to a minute, so the spans can only arrive through the
 * flush of the shutdown (SIGTERM: tracing is closed last).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCorpus } from '../config/corpus.ts';
import { eventually } from '../eventstore/testing/fixture.ts';
import { createGatewayClient, type GatewayClient } from './support/client.ts';
import { attribute, SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from './support/otlpReceiver.ts';
import { freeServicePorts, freshServiceDatabases, spawnStart, waitForHealth, type FlowgraphProcess } from './support/process.ts';
import { defineWorkflow, startRunWith } from './support/tracedStack.ts';

describe('npm start with OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  let databases: { env: Record<string, string>; drop(): Promise<void> };
  let dataDir: string;
  let receiver: OtlpReceiver;
  let started: FlowgraphProcess;
  let client: GatewayClient;

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    databases = await freshServiceDatabases('e2e_tracing');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-tracing-'));
    const ports = await freeServicePorts();
    started = spawnStart({
      dataDir,
      databaseEnv: databases.env,
      portsEnv: ports.env,
      corpusDir: requireCorpus(),
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '60000' },
    });
    await waitForHealth(ports.gatewayBase, started, 120_000);
    client = createGatewayClient(`${ports.gatewayBase}/graphql`, { identity: { subject: 'alice', role: 'operator' } });
  }, 130_000);

  afterAll(async () => {
    await started?.kill();
    await receiver?.close();
    await databases?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('exports one trace per run, from the gateway to the consumer in monitoring, flushed on SIGTERM', async () => {
    const clientTraceId = randomUUID().replaceAll('-', '');
    const clientSpanId = randomUUID().replaceAll('-', '').slice(0, 16);
    const correlationId = `e2e-trace-${randomUUID()}`;
    const workflowId = await defineWorkflow(client);
    await startRunWith(client, workflowId, { traceparent: `00-${clientTraceId}-${clientSpanId}-01`, 'x-correlation-id': correlationId });
    let traceId: string | null = null;
    await eventually(async () => {
      const result = await client.query<{ trace: { traceId: string | null } | null }>('query($c: ID!) { trace(correlationId: $c) { traceId } }', { c: correlationId });
      traceId = result.data?.trace?.traceId ?? null;
      return traceId !== null;
    }, 30_000, 'monitoring observed the run');
    expect(traceId).toBe(clientTraceId);
    expect(receiver.received).toEqual([]);

    const exit = await started.stop();
    expect(exit.code, started.output().slice(-2000)).toBe(0);
    const spans = receiver.spans().filter((s) => s.traceId === clientTraceId);
    for (const span of spans) expect(attribute(span.resource, 'service.name')).toBe('flowgraph');
    const server = spans.find((s) => s.kind === SPAN_KIND.SERVER && attribute(s.attributes, 'flowgraph.service') === 'gateway');
    expect(server?.parentSpanId).toBe(clientSpanId);
    const services = new Set(spans.map((s) => attribute(s.attributes, 'flowgraph.service')));
    expect([...services].sort()).toEqual(expect.arrayContaining(['gateway', 'monitoring', 'workflows']));
    const producers = spans.filter((s) => s.kind === SPAN_KIND.PRODUCER);
    expect(producers.length).toBeGreaterThanOrEqual(2);
    const consumer = spans.find((s) => s.kind === SPAN_KIND.CONSUMER && attribute(s.attributes, 'messaging.consumer.group.name') === 'monitoring-from-workflows');
    expect(consumer, spans.map((s) => s.name).join(', ')).toBeDefined();
    expect(producers.map((p) => p.spanId)).toContain(consumer!.parentSpanId);
  }, 120_000);
});
