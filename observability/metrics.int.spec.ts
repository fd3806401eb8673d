/**
 * `/metrics` of the gateway and of every subgraph after a run driven through the gateway, as
 * `npm start` with NATS runs them (the four services in-process, each on its own fresh database
 * and port, joined by the machine's NATS on a namespace of this file; the gateway in front):
 * the counters moved as they should (the mutation's request, the subgraph fetches, the query-plan
 * cache, the appends, the relay's handled events, each consumer's handled events), lag and NATS
 * backlogs are back at 0 once the run has gone through, the websocket and subscription gauges
 * follow two clients sharing one upstream, hostile operation names neither break the format nor
 * grow the label set past its bound, and with metrics off `/metrics` is 404 while GraphQL works.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import path from 'node:path';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../broker/in-process.ts';
import { createNatsTransport, streamNameOf } from '../broker/nats.ts';
import { requireCorpus } from '../config/corpus.ts';
import { migrateServiceDatabase, REPO_ROOT } from '../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { delay, eventually } from '../eventstore/testing/fixture.ts';
import type { SubgraphService } from '../federation/subgraphService.ts';
import { openRawSocket, type RawSocket } from '../gateway/testing/rawSocket.ts';
import { startGateway, type RunningGateway } from '../gateway/server.ts';
import { readSupergraph } from '../gateway/supergraph.ts';
import { startContentService } from '../subgraphs/content/service.ts';
import { startKnowledgeService } from '../subgraphs/knowledge/service.ts';
import { startMonitoringService } from '../subgraphs/monitoring/service.ts';
import { runIdFor } from '../subgraphs/workflows/run/runId.ts';
import { startWorkflowsService } from '../subgraphs/workflows/service.ts';
import { testToken } from '../test/support/auth.ts';
import { createGatewayClient, type GatewayClient } from '../test/support/client.ts';
import { DEFAULT_MAX_OPERATION_NAMES } from './operationName.ts';
import { LAG_CACHE_MS } from './serviceMetrics.ts';
import { scrape, type Scrape } from './testing/scrape.ts';

type Name = 'workflows' | 'content' | 'knowledge' | 'monitoring';
const NAMES: readonly Name[] = ['workflows', 'content', 'knowledge', 'monitoring'];
const SHARED_NATS = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const logger = pino({ level: 'error' });

const databases: TestDatabase[] = [];
const services = {} as Record<Name, SubgraphService>;
const closers: (() => Promise<unknown>)[] = [];
let gateway: RunningGateway;
let client: GatewayClient;
let workflowId: string;

const RUN_UPDATED = /* GraphQL */ `
  subscription RunUpdated($runId: ID!) {
    runUpdated(runId: $runId) { cursor eventType run { id status } }
  }
`;
const START_RUN = /* GraphQL */ `
  mutation StartRun($workflowId: ID!, $input: JSON, $key: String) {
    startRun(workflowId: $workflowId, input: $input, idempotencyKey: $key) { id }
  }
`;
const RUN_STATE = /* GraphQL */ `
  query RunState($id: ID!) { run(id: $id) { id status currentStep } }
`;

beforeAll(async () => {
  const corpusDir = requireCorpus();
  const namespace = `metrics${randomBytes(4).toString('hex')}`;
  const transport = await createNatsTransport({ url: SHARED_NATS, sources: [...NAMES], namespace, logger });
  closers.push(async () => {
    const nc = await connect({ servers: SHARED_NATS });
    try {
      const jsm = await jetstreamManager(nc);
      for (const name of NAMES) await jsm.streams.delete(streamNameOf(name, namespace)).catch(() => {});
    } finally {
      await nc.close();
    }
  });
  closers.push(() => transport.close());
  const pools = Object.fromEntries(
    await Promise.all(
      NAMES.map(async (name) => {
        const db = await createTestDatabase(`metrics_${name}`);
        databases.push(db);
        await migrateServiceDatabase(db.pool, { service: name });
        return [name, db.pool] as const;
      }),
    ),
  );
  const relaySubscription = { pollIntervalMs: 50, retryDelayMs: 50, standbyRetryMs: 100 };
  const common = (name: Name) => ({ pool: pools[name]!, port: 0, logger, transport, relaySubscription });
  services.workflows = await startWorkflowsService(common('workflows'));
  services.content = await startContentService({ ...common('content'), corpusDir });
  services.knowledge = await startKnowledgeService(common('knowledge'));
  services.monitoring = await startMonitoringService(common('monitoring'));
  for (const name of NAMES) closers.push(() => services[name].close());

  const { supergraphSdl } = await readSupergraph(path.join(REPO_ROOT, 'supergraph.graphql'));
  gateway = await startGateway({
    supergraphSdl,
    subgraphUrlOverrides: Object.fromEntries(NAMES.map((name) => [name, services[name].url])),
    port: 0,
    logger,
  });
  closers.push(() => gateway.close());
  client = createGatewayClient(gateway.url);
  const { defineWorkflow } = await client.mustQuery<{ defineWorkflow: { id: string } }>(
    `mutation DefineWorkflow { defineWorkflow(input: { name: "ingest, extract, review", steps: [
      { name: "ingest", kind: INGEST, timeoutMs: 600000 },
      { name: "extract", kind: EXTRACT, timeoutMs: 600000 },
      { name: "review", kind: EXTERNAL, timeoutMs: 600000 }] }) { id } }`,
  );
  workflowId = defineWorkflow.id;
}, 180_000);

afterAll(async () => {
  while (closers.length > 0) await closers.pop()!().catch(() => {});
  await Promise.all(databases.map((db) => db.drop()));
});

/** Opens a gateway websocket initialised with an operator's token. */
async function openSocket(): Promise<RawSocket> {
  const socket = await openRawSocket(gateway.url);
  socket.send({ type: 'connection_init', payload: { authorization: `Bearer ${await testToken()}` } });
  await socket.waitFor((f) => f.type === 'connection_ack', 'connection_ack');
  return socket;
}

/** Every service's and the gateway's scrape now. */
async function scrapeAll(): Promise<Record<Name | 'gateway', Scrape>> {
  const entries = await Promise.all([...NAMES, 'gateway' as const].map(async (name) => [name, await scrape(name === 'gateway' ? gateway.url : services[name].url)] as const));
  return Object.fromEntries(entries) as Record<Name | 'gateway', Scrape>;
}

describe('a run through the gateway', () => {
  it('moves the gateway\'s, the appends\', the relays\' and the consumers\' counters; lag and backlogs end at 0; the websocket gauges follow the clients', async () => {
    const before = await scrapeAll();
    const key = randomUUID();
    const runId = runIdFor(workflowId, key);
    // Two clients subscribe to the same run before it exists: one shared upstream.
    const [a, b] = await Promise.all([openSocket(), openSocket()]);
    a.subscribe('a', RUN_UPDATED, { runId });
    b.subscribe('b', RUN_UPDATED, { runId });
    await eventually(async () => (await scrape(gateway.url)).value('flowgraph_gateway_subscriptions') === 2, 20_000, 'two client subscriptions');
    const subscribed = await scrape(gateway.url);
    expect(subscribed.value('flowgraph_gateway_websocket_connections')).toBe(2);
    expect(subscribed.value('flowgraph_gateway_shared_subscriptions')).toBe(1);
    expect(subscribed.value('flowgraph_gateway_upstream_sockets')).toBeGreaterThanOrEqual(1);

    const { startRun } = await client.mustQuery<{ startRun: { id: string } }>(START_RUN, {
      workflowId,
      input: { text: 'Sherlock Holmes met Doctor Watson in London. Holmes and Watson shared rooms at Baker Street.', title: 'A note' },
      key,
    });
    expect(startRun.id).toBe(runId);
    // INGEST (content's consumer), EXTRACT (knowledge's), then the EXTERNAL step waits: every consumer had its turn.
    await eventually(async () => (await client.mustQuery<{ run: { currentStep: string } }>(RUN_STATE, { id: runId })).run.currentStep === 'review', 60_000, 'the run at its review step');
    await Promise.all([a.waitForNexts('a', 6), b.waitForNexts('b', 6)]);

    // The relays and consumers have caught up: lag and backlogs back at 0.
    await eventually(
      async () => {
        await delay(LAG_CACHE_MS);
        const now = await scrapeAll();
        return NAMES.every(
          (name) =>
            now[name].all('flowgraph_subscription_lag_events').every((s) => s.value === 0) &&
            now[name].all('flowgraph_nats_consumer_pending_messages').every((s) => s.value === 0) &&
            now[name].all('flowgraph_nats_consumer_ack_pending_messages').every((s) => s.value === 0),
        );
      },
      30_000,
      'every lag and backlog at 0',
    );
    const after = await scrapeAll();
    const delta = (name: Name | 'gateway', metric: string, labels: Record<string, string> = {}) => after[name].value(metric, labels) - before[name].value(metric, labels);

    // The gateway: the mutation once, the polling query at least once, fetches to workflows, plans cached.
    expect(delta('gateway', 'flowgraph_gateway_requests_total', { operation_type: 'mutation', operation_name: 'StartRun', outcome: 'success' })).toBe(1);
    expect(delta('gateway', 'flowgraph_gateway_requests_total', { operation_type: 'query', operation_name: 'RunState', outcome: 'success' })).toBeGreaterThanOrEqual(1);
    expect(delta('gateway', 'flowgraph_gateway_request_duration_seconds_count', { operation_type: 'mutation', outcome: 'success' })).toBe(1);
    expect(delta('gateway', 'flowgraph_gateway_subgraph_fetches_total', { subgraph: 'workflows', outcome: 'ok' })).toBeGreaterThanOrEqual(2);
    expect(delta('gateway', 'flowgraph_gateway_subgraph_fetch_duration_seconds_count', { subgraph: 'workflows' })).toBeGreaterThanOrEqual(2);
    expect(after.gateway.value('flowgraph_gateway_subgraph_fetch_errors_total', { subgraph: 'workflows' })).toBe(0);
    expect(delta('gateway', 'flowgraph_gateway_query_plan_cache_lookups_total', { result: 'miss' })).toBeGreaterThanOrEqual(2);
    // RunState is planned once, then every poll is a hit.
    expect(delta('gateway', 'flowgraph_gateway_query_plan_cache_lookups_total', { result: 'hit' })).toBe(
      delta('gateway', 'flowgraph_gateway_requests_total', { operation_type: 'query', operation_name: 'RunState', outcome: 'success' }) - 1,
    );
    expect(delta('gateway', 'flowgraph_gateway_subscription_events_delivered_total')).toBeGreaterThanOrEqual(12);
    expect(after.gateway.value('flowgraph_gateway_slow_consumer_closes_total')).toBe(0);

    // The services: appends, relays, consumers; each series labelled with its service.
    for (const name of ['workflows', 'content', 'knowledge'] as const) {
      expect(delta(name, 'flowgraph_eventstore_append_batches_total', { outcome: 'ok', service: name }), `${name} appends`).toBeGreaterThanOrEqual(1);
      expect(delta(name, 'flowgraph_eventstore_appended_events_total'), `${name} appended events`).toBeGreaterThanOrEqual(1);
      expect(delta(name, 'flowgraph_subscription_handled_events_total', { subscription: `relay:${name}` }), `${name} relay`).toBeGreaterThanOrEqual(1);
      expect(after[name].value('flowgraph_subscription_lag_seconds', { subscription: `relay:${name}` })).toBe(0);
    }
    expect(delta('content', 'flowgraph_consumer_handled_events_total', { consumer: 'content-from-workflows' })).toBeGreaterThanOrEqual(1);
    expect(delta('workflows', 'flowgraph_consumer_handled_events_total', { consumer: 'workflows-from-content' })).toBeGreaterThanOrEqual(1);
    expect(delta('workflows', 'flowgraph_consumer_handled_events_total', { consumer: 'workflows-from-knowledge' })).toBeGreaterThanOrEqual(1);
    expect(delta('knowledge', 'flowgraph_consumer_handled_events_total', { consumer: 'knowledge-from-workflows' })).toBeGreaterThanOrEqual(1);
    expect(after.monitoring.all('flowgraph_consumer_handled_events_total').reduce((sum, s) => sum + s.value, 0)).toBeGreaterThan(
      before.monitoring.all('flowgraph_consumer_handled_events_total').reduce((sum, s) => sum + s.value, 0),
    );
    for (const name of NAMES) {
      expect(after[name].all('flowgraph_nats_consumer_pending_messages').length, `${name} NATS consumers`).toBeGreaterThanOrEqual(1);
      expect(after[name].value('flowgraph_consumer_parked_events', { consumer: after[name].all('flowgraph_consumer_parked_events')[0]?.labels.consumer ?? '' })).toBe(0);
      expect(after[name].value('flowgraph_db_pool_max_clients')).toBeGreaterThan(0);
      expect(after[name].samples.every((s) => s.labels.service === name)).toBe(true);
    }

    a.close();
    b.close();
    await eventually(async () => (await scrape(gateway.url)).value('flowgraph_gateway_websocket_connections') === 0, 20_000, 'sockets closed');
    const closed = await scrape(gateway.url);
    expect(closed.value('flowgraph_gateway_subscriptions')).toBe(0);
    expect(closed.value('flowgraph_gateway_shared_subscriptions')).toBe(0);
  });
});

describe('operation names from clients', () => {
  it('hostile names become other and keep the exposition well-formed; distinct names stop at the bound', async () => {
    // The last ones are valid GraphQL names that select no operation of the document: they never ran,
    // so they must not take slots of the bounded label either.
    const hostile = ['x"} 1\nflowgraph_gateway_requests_total{outcome="forged"} 999', 'a\\b', '\u0000', 'é', 'A'.repeat(10_000), 'NeverRan1', 'NeverRan2'];
    const authorization = `Bearer ${await testToken()}`;
    for (const operationName of hostile) {
      // Apollo answers "Unknown operation named …": an error, counted under `other`.
      const response = await fetch(gateway.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization },
        body: JSON.stringify({ query: 'query Known { __typename }', operationName }),
      });
      const body = (await response.json()) as { errors?: unknown[] };
      expect(body.errors?.length ?? 0, JSON.stringify(operationName.slice(0, 40))).toBeGreaterThan(0);
    }
    for (let i = 0; i < DEFAULT_MAX_OPERATION_NAMES + 20; i++) await client.mustQuery(`query Op${i} { __typename }`);
    const parsed = await scrape(gateway.url); // parses strictly: a forged line would fail here
    const requests = parsed.all('flowgraph_gateway_requests_total');
    expect(requests.filter((s) => s.labels.outcome === 'forged')).toEqual([]);
    expect(parsed.value('flowgraph_gateway_requests_total', { operation_type: 'unknown', operation_name: 'other', outcome: 'error' })).toBeGreaterThanOrEqual(hostile.length);
    const names = new Set(requests.map((s) => s.labels.operation_name));
    expect(names.size).toBeLessThanOrEqual(DEFAULT_MAX_OPERATION_NAMES + 2); // + anonymous, other
    expect(names.has('Op0')).toBe(true);
    expect(names.has('NeverRan1') || names.has('NeverRan2')).toBe(false);
    expect(names.has(`Op${DEFAULT_MAX_OPERATION_NAMES + 19}`)).toBe(false);
    for (const name of names) expect(name).toMatch(/^[_A-Za-z][_0-9A-Za-z]{0,63}$/);
  });
});

describe('FLOWGRAPH_METRICS=off', () => {
  it('a gateway and a service with metrics off answer GraphQL and 404 on /metrics', async () => {
    const { supergraphSdl } = await readSupergraph(path.join(REPO_ROOT, 'supergraph.graphql'));
    const db = await createTestDatabase('metrics_off');
    databases.push(db);
    await migrateServiceDatabase(db.pool, { service: 'knowledge' });
    const transport = createInProcessTransport();
    closers.push(() => transport.close());
    const knowledge = await startKnowledgeService({ pool: db.pool, port: 0, logger, transport, metrics: { enabled: false } });
    closers.push(() => knowledge.close());
    const quiet = await startGateway({
      supergraphSdl,
      subgraphUrlOverrides: { ...Object.fromEntries(NAMES.map((name) => [name, services[name].url])), knowledge: knowledge.url },
      port: 0,
      logger,
      metrics: { enabled: false },
    });
    closers.push(() => quiet.close());
    const { run } = await createGatewayClient(quiet.url).mustQuery<{ run: null }>(RUN_STATE, { id: 'run-nowhere' });
    expect(run).toBeNull();
    for (const url of [quiet.url, knowledge.url]) {
      const response = await fetch(new URL('/metrics', url));
      expect(response.status, url).toBe(404);
    }
  });
});
