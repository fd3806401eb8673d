/**
 * Client aliases through the real gateway (issue 11; apollographql/federation #3036 in the stock
 * gateway): the workflows and monitoring services on fresh PostgreSQL databases, joined by the
 * in-process transport of `npm start`, and `WorkflowRun.timeline` (monitoring's) selected beside
 * workflows' fields, so that the query planner adds the key `id` and `__typename` to the fetches.
 * An alias named like a key field, an alias of a key field or of `__typename`, and aliases in
 * inline and named fragments all answer the client's fields, over HTTP, in mutations, and in
 * subscriptions over the websocket; errors' paths name the client's aliases.
 */
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../broker/in-process.ts';
import { migrateServiceDatabase, REPO_ROOT } from '../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { startMonitoringService } from '../subgraphs/monitoring/service.ts';
import { startWorkflowsService } from '../subgraphs/workflows/service.ts';
import { createGatewayClient, type GatewayClient } from '../test/support/client.ts';
import { freePort } from '../test/support/ports.ts';
import { recordSubscription } from '../test/support/recordedSubscription.ts';
import { startGateway, type RunningGateway } from './server.ts';
import { readSupergraph } from './supergraph.ts';

const logger = pino({ level: 'silent' });
const closers: (() => Promise<unknown>)[] = [];
const databases: TestDatabase[] = [];
let gateway: RunningGateway;
let client: GatewayClient;
let workflowId: string;
let runId: string;

beforeAll(async () => {
  for (const name of ['workflows', 'monitoring'] as const) {
    const db = await createTestDatabase(`aliases_${name}`);
    databases.push(db);
    await migrateServiceDatabase(db.pool, { service: name });
  }
  const [workflowsDb, monitoringDb] = databases as [TestDatabase, TestDatabase];
  const transport = createInProcessTransport();
  closers.push(() => transport.close());
  const workflows = await startWorkflowsService({ pool: workflowsDb.pool, port: 0, logger, transport });
  closers.push(() => workflows.close());
  const monitoring = await startMonitoringService({ pool: monitoringDb.pool, port: 0, logger, transport });
  closers.push(() => monitoring.close());
  transport.open();

  const { supergraphSdl } = await readSupergraph(path.join(REPO_ROOT, 'supergraph.graphql'));
  const nowhere = `http://127.0.0.1:${await freePort()}/graphql`;
  gateway = await startGateway({
    supergraphSdl,
    subgraphUrlOverrides: { workflows: workflows.url, monitoring: monitoring.url, content: nowhere, knowledge: nowhere },
    port: 0,
    logger,
  });
  closers.push(() => gateway.close());
  client = createGatewayClient(gateway.url);

  ({ defineWorkflow: { id: workflowId } } = await client.mustQuery<{ defineWorkflow: { id: string } }>(
    `mutation { defineWorkflow(input: { name: "one manual step", steps: [{ name: "approve", kind: EXTERNAL, timeoutMs: 600000 }] }) { id } }`,
  ));
  ({ startRun: { id: runId } } = await client.mustQuery<{ startRun: { id: string } }>(`mutation($w: ID!) { startRun(workflowId: $w) { id } }`, { w: workflowId }));
}, 120_000);

afterAll(async () => {
  while (closers.length > 0) await closers.pop()!().catch(() => {});
  await Promise.all(databases.map((db) => db.drop()));
});

describe('aliases through the gateway', () => {
  it('an alias named like the key field answers the aliased field, beside another subgraph`s field', async () => {
    const result = await client.query(`query($id: ID!) { run(id: $id) { id: workflowId timeline { sinceRunStartMs } } }`, { id: runId });
    expect(result.errors).toBeUndefined();
    expect(result.data?.run.id).toBe(workflowId);
    expect(Array.isArray(result.data?.run.timeline)).toBe(true);
  });

  it('an alias named like the key field inside a connection answers data, not {"data": null}', async () => {
    const result = await client.query(`{ runs { edges { node { id: status timeline { sinceRunStartMs } } } } }`);
    expect(result.errors).toBeUndefined();
    expect(result.data?.runs.edges).toHaveLength(1);
    expect(result.data?.runs.edges[0].node.id).toBe('RUNNING');
    expect(Array.isArray(result.data?.runs.edges[0].node.timeline)).toBe(true);
  });

  it('aliases of the key field and of __typename, and an alias named __typename, answer their own fields in the client`s order', async () => {
    const result = await client.query(
      `query($id: ID!) { run(id: $id) { __typename: status runId: id timeline { sinceRunStartMs } kind: __typename id } }`,
      { id: runId },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data?.run).toEqual({ __typename: 'RUNNING', runId, timeline: expect.any(Array), kind: 'WorkflowRun', id: runId });
    expect(Object.keys(result.data?.run)).toEqual(['__typename', 'runId', 'timeline', 'kind', 'id']);
  });

  it('aliases inside inline and named fragments answer their own fields', async () => {
    const result = await client.query(
      `query($id: ID!) {
        r: run(id: $id) { ... on WorkflowRun { id: workflowId } ...Run }
        again: run(id: $id) { ...Run }
      }
      fragment Run on WorkflowRun { workflowId: id state: status timeline { sinceRunStartMs } }`,
      { id: runId },
    );
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      r: { id: workflowId, workflowId: runId, state: 'RUNNING', timeline: expect.any(Array) },
      again: { workflowId: runId, state: 'RUNNING', timeline: expect.any(Array) },
    });
  });

  it('a mutation`s selection with an alias named like the key field answers the aliased field', async () => {
    const result = await client.query(`mutation($w: ID!) { started: startRun(workflowId: $w) { id: workflowId runId: id timeline { sinceRunStartMs } } }`, { w: workflowId });
    expect(result.errors).toBeUndefined();
    expect(result.data?.started.id).toBe(workflowId);
    expect(result.data?.started.runId).not.toBe(workflowId);
  });

  it('an error under aliased fields carries the client`s aliases in its path', async () => {
    const result = await client.query(`query($id: ID!) { r: run(id: $id) { id: workflowId tl: timeline(first: 0) { sinceRunStartMs } } }`, { id: runId });
    expect(result.data?.r.id).toBe(workflowId);
    expect(result.errors).toHaveLength(1);
    expect(result.errors?.[0]).toMatchObject({ path: ['r', 'tl'], extensions: { code: 'BAD_USER_INPUT' } });
  });

  it('a repeated operation answers the same, from the cached rewrite and plan', async () => {
    const query = `query Repeated($id: ID!) { run(id: $id) { id: workflowId timeline { sinceRunStartMs } } }`;
    const first = await client.query(query, { id: runId });
    const second = await client.query(query, { id: runId });
    expect(first.data?.run.id).toBe(workflowId);
    expect(second.data).toEqual(first.data);
  });

  it('a subscription with aliases named like key fields answers the aliased fields, and its errors` paths name the aliases', async () => {
    const subscription = recordSubscription<{ u: { id: string; run: { id: string; state: string; timeline: unknown[] | null; tl: null } } }>(
      gateway.url.replace(/^http/, 'ws'),
      `subscription($r: ID!) {
        u: runUpdated(runId: $r) { id: eventType run { id: workflowId state: status timeline { sinceRunStartMs } tl: timeline(first: 0) { sinceRunStartMs } } }
      }`,
      { r: runId },
    );
    try {
      await subscription.waitFor((results) => results.length >= 1, 'the run`s first update');
      const [first] = subscription.results;
      expect(first?.errors).toHaveLength(1);
      expect(first?.errors?.[0]).toMatchObject({ path: ['u', 'run', 'tl'], extensions: { code: 'BAD_USER_INPUT' } });
      expect(first?.data?.u.id).toBe('RunStarted');
      expect(first?.data?.u.run.id).toBe(workflowId);
      expect(first?.data?.u.run.state).toBe('RUNNING');
      expect(Array.isArray(first?.data?.u.run.timeline)).toBe(true);
    } finally {
      await subscription.dispose();
    }
  });
});
