/**
 * Each part alone (DESIGN.md, "Processes"; how docker-compose runs them): the workflows subgraph
 * via `start:service -- workflows` on its own database, and the gateway via
 * `start:service -- gateway` on the checked-in supergraph with `WORKFLOWS_URL` pointing at it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { testAuthEnv } from './support/auth.ts';
import { createGatewayClient } from './support/client.ts';
import { freePort, spawnFlowgraph, waitForOutput, type FlowgraphProcess } from './support/process.ts';

describe('start:service', () => {
  let database: TestDatabase;
  let workflows: FlowgraphProcess;
  let gateway: FlowgraphProcess;
  let workflowsUrl: string;
  let gatewayBase: string;

  beforeAll(async () => {
    database = await createTestDatabase('e2e_standalone');
    const workflowsPort = await freePort();
    const gatewayPort = await freePort();
    workflowsUrl = `http://127.0.0.1:${workflowsPort}/graphql`;
    gatewayBase = `http://127.0.0.1:${gatewayPort}`;
    workflows = spawnFlowgraph('start-service.ts', ['workflows'], {
      NODE_ENV: 'development',
      WORKFLOWS_DATABASE_URL: database.url,
      WORKFLOWS_PORT: String(workflowsPort),
      NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
      NATS_NAMESPACE: `e2e${database.name.slice(-8)}`,
      FLOWGRAPH_CURSOR_SECRET: randomBytes(32).toString('base64'),
      ...testAuthEnv(),
    });
    gateway = spawnFlowgraph('start-service.ts', ['gateway'], {
      NODE_ENV: 'development',
      GATEWAY_PORT: String(gatewayPort),
      WORKFLOWS_URL: workflowsUrl,
      ...testAuthEnv(),
    });
    await waitForOutput(workflows, `flowgraph workflows subgraph ready at ${workflowsUrl}`);
    // Not ready (only workflows of its four subgraphs runs), and live as soon as it listens, before
    // its supergraph is loaded: its ready line says it serves.
    await waitForOutput(gateway, 'flowgraph gateway ready at', 90_000);
  }, 120_000);

  afterAll(async () => {
    await gateway?.kill();
    await workflows?.kill();
    await database?.drop();
  });

  it('serves the workflows subgraph through a gateway that runs alone, using the WORKFLOWS_URL override', async () => {
    const ready = await fetch(`${gatewayBase}/health/ready`);
    expect(ready.status).toBe(503);
    const health = (await ready.json()) as { status: string; subgraphs: string[]; checks: Record<string, { status: string; error?: string }> };
    expect(health.status).toBe('not_ready');
    expect(health.subgraphs).toEqual(['content', 'knowledge', 'monitoring', 'workflows']);
    expect(health.checks['subgraph:workflows']!.status).toBe('ok');
    for (const absent of ['content', 'knowledge', 'monitoring']) {
      expect(health.checks[`subgraph:${absent}`]).toMatchObject({ status: 'failed', error: expect.stringContaining('ECONNREFUSED') });
    }
    const client = createGatewayClient(`${gatewayBase}/graphql`);
    const defined = await client.mustQuery<{ defineWorkflow: { id: string; revision: number } }>(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id revision } }`,
      { input: { id: 'standalone-wf', name: 'Alone', steps: [{ name: 'one', kind: 'EXTERNAL', timeoutMs: 60_000 }] } },
    );
    expect(defined.defineWorkflow).toEqual({ id: 'standalone-wf', revision: 1 });
    const read = await client.mustQuery<{ workflows: Array<{ id: string; name: string }> }>('{ workflows { id name } }');
    expect(read.workflows).toEqual([{ id: 'standalone-wf', name: 'Alone' }]);
  });

  it('gives SUBGRAPH_UNAVAILABLE once the subgraph is gone; the gateway stays live, its readiness names the subgraph', async () => {
    expect(await workflows.stop()).toEqual({ code: 0, signal: null });
    const result = await createGatewayClient(`${gatewayBase}/graphql`).query('{ workflows { id } }');
    expect(result.errors?.[0]?.extensions).toEqual({ code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'workflows' });
    expect((await fetch(`${gatewayBase}/health/live`)).status).toBe(200);
    const ready = (await (await fetch(`${gatewayBase}/health`)).json()) as { checks: Record<string, { status: string }> };
    expect(ready.checks['subgraph:workflows']!.status).toBe('failed');
  });

  it('stops the gateway cleanly on SIGTERM', async () => {
    expect(await gateway.stop()).toEqual({ code: 0, signal: null });
  });

  it('refuses to run a service without its database URL, NATS or cursor keys, or an unknown service, with exit code 2', async () => {
    const noDb = spawnFlowgraph('start-service.ts', ['workflows'], {});
    expect(await noDb.exited).toEqual({ code: 2, signal: null });
    expect(noDb.output()).toContain('WORKFLOWS_DATABASE_URL: required to run workflows alone');

    const noNats = spawnFlowgraph('start-service.ts', ['workflows'], { WORKFLOWS_DATABASE_URL: database.url });
    expect(await noNats.exited).toEqual({ code: 2, signal: null });
    expect(noNats.output()).toContain('NATS_URL: required to run workflows alone');

    const nats = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
    const noKey = spawnFlowgraph('start-service.ts', ['workflows'], { WORKFLOWS_DATABASE_URL: database.url, NATS_URL: nats });
    expect(await noKey.exited).toEqual({ code: 2, signal: null });
    expect(noKey.output()).toContain('FLOWGRAPH_CURSOR_SECRET: required to run workflows alone');
    const shortKey = spawnFlowgraph('start-service.ts', ['workflows'], { WORKFLOWS_DATABASE_URL: database.url, NATS_URL: nats, FLOWGRAPH_CURSOR_SECRET: 'c2hvcnQ=' });
    expect(await shortKey.exited).toEqual({ code: 2, signal: null });
    expect(shortKey.output()).toContain('FLOWGRAPH_CURSOR_SECRET: cursor key #1 of 1 is 5 bytes');
    expect(shortKey.output()).not.toContain('c2hvcnQ=');

    const unknown = spawnFlowgraph('start-service.ts', ['billing'], {});
    expect(await unknown.exited).toEqual({ code: 2, signal: null });
    expect(unknown.output()).toContain('Unknown service "billing"');
  });
});
