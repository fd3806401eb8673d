/**
 * `/metrics` of the real `npm start` process (bin/start.ts: the four subgraphs and the gateway in
 * one process, in-process transport): each subgraph's registry on its own port, the gateway's on
 * the gateway port, the process metrics (`process_*`, `nodejs_*`) once, on the gateway's; a
 * mutation through the gateway shows in the gateway's and the workflows service's counters.
 * `FLOWGRAPH_METRICS=off` turns every `/metrics` into a 404 (GraphQL still answers), and a value
 * that is neither on nor off stops the start with exit code 2 and a message naming the variable.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCorpus } from '../config/corpus.ts';
import { SERVICES } from '../config/services.ts';
import { scrape } from '../observability/testing/scrape.ts';
import { createGatewayClient } from './support/client.ts';
import { freeServicePorts, freshServiceDatabases, spawnStart, waitForHealth, type FlowgraphProcess } from './support/process.ts';

const CORPUS_DIR = requireCorpus();

describe('npm start serves /metrics on every port', () => {
  let databases: { env: Record<string, string>; drop(): Promise<void> };
  let dataDir: string;
  let ports: Awaited<ReturnType<typeof freeServicePorts>>;
  const started: FlowgraphProcess[] = [];

  const start = async (extra: Record<string, string>) => {
    const proc = spawnStart({ dataDir, databaseEnv: databases.env, portsEnv: ports.env, corpusDir: CORPUS_DIR, env: extra });
    started.push(proc);
    return proc;
  };
  const serviceBase = (name: string) => `http://127.0.0.1:${ports.env[`${SERVICES.find((s) => s.name === name)!.envPrefix}_PORT`]}`;

  beforeAll(async () => {
    databases = await freshServiceDatabases('e2e_metrics');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-metrics-'));
    ports = await freeServicePorts();
  });

  afterAll(async () => {
    for (const proc of started) await proc.kill();
    await databases?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('each subgraph on its own port, the gateway (with the process metrics) on the gateway port; a mutation moves both', async () => {
    const proc = await start({});
    await waitForHealth(ports.gatewayBase, proc, 120_000);
    const client = createGatewayClient(`${ports.gatewayBase}/graphql`);
    await client.mustQuery(`mutation Define { defineWorkflow(input: { name: "metrics", steps: [{ name: "one", kind: EXTERNAL, timeoutMs: 60000 }] }) { id } }`);

    const gateway = await scrape(ports.gatewayBase);
    expect(gateway.value('flowgraph_gateway_requests_total', { operation_type: 'mutation', operation_name: 'Define', outcome: 'success', service: 'gateway' })).toBe(1);
    expect(gateway.value('flowgraph_gateway_subgraph_fetches_total', { subgraph: 'workflows', outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    expect(gateway.all('process_cpu_user_seconds_total')).toHaveLength(1);
    expect(gateway.all('nodejs_eventloop_lag_seconds')).toHaveLength(1);

    for (const service of SERVICES) {
      const scraped = await scrape(serviceBase(service.name));
      expect(scraped.samples.every((sample) => sample.labels.service === service.name), service.name).toBe(true);
      expect(scraped.value('flowgraph_db_pool_max_clients'), service.name).toBeGreaterThan(0);
      expect(scraped.all('process_cpu_user_seconds_total'), `${service.name}: the process metrics are the gateway's`).toEqual([]);
    }
    const workflows = await scrape(serviceBase('workflows'));
    expect(workflows.value('flowgraph_eventstore_append_batches_total', { outcome: 'ok' })).toBeGreaterThanOrEqual(1);
    // The in-process transport relays per consumer: one lane (and lag series) per consumer of workflows' events.
    expect(workflows.all('flowgraph_subscription_lag_events', { subscription: 'relay:workflows/monitoring-from-workflows' })).toHaveLength(1);
    await proc.stop();
  }, 180_000);

  it('FLOWGRAPH_METRICS=off: /metrics is 404 on every port and GraphQL still answers', async () => {
    const proc = await start({ FLOWGRAPH_METRICS: 'off' });
    await waitForHealth(ports.gatewayBase, proc, 120_000);
    await createGatewayClient(`${ports.gatewayBase}/graphql`).mustQuery('{ workflows { id } }');
    for (const base of [ports.gatewayBase, ...SERVICES.map((service) => serviceBase(service.name))]) {
      expect((await fetch(`${base}/metrics`)).status, base).toBe(404);
    }
    await proc.stop();
  }, 180_000);

  it('FLOWGRAPH_METRICS=maybe: exit 2 naming the variable, before anything starts', async () => {
    const proc = await start({ FLOWGRAPH_METRICS: 'maybe' });
    expect(await proc.exited).toEqual({ code: 2, signal: null });
    expect(proc.output()).toContain('FLOWGRAPH_METRICS: expected on or off (or true/false, 1/0) (got "maybe")');
  }, 60_000);
});
