/**
 * Issue 2, "Done means": the real `npm start` process (bin/start.ts, as a child process over
 * HTTP) on a fresh database; through the gateway a workflow with three steps is defined, run,
 * its steps completed, failed and retried, and `run` and `runHistory` read back. SIGTERM then
 * stops the process cleanly (exit code 0).
 *
 * Issue 3's rule: `completeStep`/`failStep` are legal for EXTERNAL steps only (INGEST and
 * EXTRACT steps complete from content's and knowledge's events), so the steps driven through
 * the API here are EXTERNAL, and completing an INGEST step through the gateway is refused.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayClient, type GatewayClient } from './support/client.ts';
import { testAuthEnv } from './support/auth.ts';
import { freeServicePorts, freshServiceDatabases, spawnFlowgraph, waitForHealth, type FlowgraphProcess } from './support/process.ts';

const START_TIMEOUT_MS = 90_000;

const RUN_FIELDS = /* GraphQL */ `
  id workflowId workflowRevision status input output error currentStep version
  workflow { id name }
  steps { name kind position status attempt output error }
`;

describe('npm start, driven over HTTP through the gateway', () => {
  let databases: { env: Record<string, string>; drop(): Promise<void> };
  let dataDir: string;
  let started: FlowgraphProcess;
  let client: GatewayClient;
  let gatewayBase: string;
  const correlationId = `e2e-${Date.now()}`;

  beforeAll(async () => {
    databases = await freshServiceDatabases('e2e_workflow');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-e2e-'));
    const ports = await freeServicePorts();
    gatewayBase = ports.gatewayBase;
    started = spawnFlowgraph('start.ts', [], {
      NODE_ENV: 'development',
      LOG_LEVEL: 'info',
      FLOWGRAPH_DATA_DIR: dataDir,
      FLOWGRAPH_ADMIN_DATABASE_URL: process.env.FLOWGRAPH_ADMIN_DATABASE_URL,
      // Databases of this test alone: start.ts migrates them instead of provisioning shared ones.
      ...databases.env,
      ...ports.env,
      ...testAuthEnv(),
    });
    await waitForHealth(gatewayBase, started, START_TIMEOUT_MS);
    client = createGatewayClient(`${gatewayBase}/graphql`, { headers: { 'x-correlation-id': correlationId } });
  }, START_TIMEOUT_MS + 10_000);

  afterAll(async () => {
    await started?.kill();
    await databases?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('prints the gateway URL and serves Apollo Sandbox there', async () => {
    expect(started.output()).toContain(`flowgraph gateway ready at ${gatewayBase}/graphql — open it in a browser for Apollo Sandbox`);
    const page = await fetch(`${gatewayBase}/graphql`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('EmbeddedSandbox');
  });

  it('defines a three-step workflow, runs it through completions, failures and retries, and reads run and runHistory', async () => {
    const workflowId = `wf-e2e-${Date.now()}`;
    const defined = await client.mustQuery<{ defineWorkflow: any }>(
      /* GraphQL */ `
        mutation Define($input: DefineWorkflowInput!) {
          defineWorkflow(input: $input) { id name revision steps { name kind position timeoutMs retryPolicy { maxAttempts backoffMs } } }
        }
      `,
      {
        input: {
          id: workflowId,
          name: 'Summarise a document',
          steps: [
            { name: 'fetch', kind: 'EXTERNAL', timeoutMs: 600_000 },
            // Two attempts with a long backoff: the automatic retry waits, `retryStep` starts it now.
            { name: 'analyse', kind: 'EXTERNAL', timeoutMs: 600_000, retryPolicy: { maxAttempts: 2, backoffMs: 600_000 } },
            { name: 'publish', kind: 'EXTERNAL', timeoutMs: 600_000 },
          ],
        },
      },
    );
    expect(defined.defineWorkflow).toEqual({
      id: workflowId,
      name: 'Summarise a document',
      revision: 1,
      steps: [
        { name: 'fetch', kind: 'EXTERNAL', position: 0, timeoutMs: 600_000, retryPolicy: { maxAttempts: 1, backoffMs: 0 } },
        { name: 'analyse', kind: 'EXTERNAL', position: 1, timeoutMs: 600_000, retryPolicy: { maxAttempts: 2, backoffMs: 600_000 } },
        { name: 'publish', kind: 'EXTERNAL', position: 2, timeoutMs: 600_000, retryPolicy: { maxAttempts: 1, backoffMs: 0 } },
      ],
    });

    const startRun = /* GraphQL */ `
      mutation Start($workflowId: ID!, $input: JSON, $key: String) {
        startRun(workflowId: $workflowId, input: $input, idempotencyKey: $key) { ${RUN_FIELDS} }
      }
    `;
    const { startRun: run } = await client.mustQuery<{ startRun: any }>(startRun, {
      workflowId,
      input: { documentUrl: 'https://example.org/report.txt' },
      key: `start-${workflowId}`,
    });
    expect(run).toMatchObject({
      workflowId,
      workflowRevision: 1,
      status: 'RUNNING',
      input: { documentUrl: 'https://example.org/report.txt' },
      currentStep: 'fetch',
      workflow: { id: workflowId, name: 'Summarise a document' },
    });
    expect(run.steps.map((s: any) => [s.name, s.status, s.attempt])).toEqual([
      ['fetch', 'RUNNING', 1],
      ['analyse', 'PENDING', 0],
      ['publish', 'PENDING', 0],
    ]);
    // The idempotency key returns the same run and records nothing new.
    const again = await client.mustQuery<{ startRun: any }>(startRun, {
      workflowId,
      input: { documentUrl: 'https://example.org/report.txt' },
      key: `start-${workflowId}`,
    });
    expect(again.startRun.id).toBe(run.id);

    const completeStep = /* GraphQL */ `
      mutation Complete($runId: ID!, $step: String!, $output: JSON) {
        completeStep(runId: $runId, stepName: $step, output: $output) { ${RUN_FIELDS} }
      }
    `;
    const failStep = /* GraphQL */ `
      mutation Fail($runId: ID!, $step: String!, $error: String!) {
        failStep(runId: $runId, stepName: $step, error: $error) { ${RUN_FIELDS} }
      }
    `;
    const retryStep = /* GraphQL */ `
      mutation Retry($runId: ID!, $step: String!) { retryStep(runId: $runId, stepName: $step) { ${RUN_FIELDS} } }
    `;

    const afterFetch = (await client.mustQuery<{ completeStep: any }>(completeStep, { runId: run.id, step: 'fetch', output: { bytes: 1234 } }))
      .completeStep;
    expect(afterFetch.currentStep).toBe('analyse');
    expect(afterFetch.steps.map((s: any) => [s.name, s.status])).toEqual([
      ['fetch', 'COMPLETED'],
      ['analyse', 'RUNNING'],
      ['publish', 'PENDING'],
    ]);
    expect(afterFetch.steps[0].output).toEqual({ bytes: 1234 });

    // First failure: the policy allows a second attempt, after the backoff.
    const firstFailure = (await client.mustQuery<{ failStep: any }>(failStep, { runId: run.id, step: 'analyse', error: 'model timed out' })).failStep;
    expect(firstFailure.status).toBe('RUNNING');
    expect(firstFailure.steps[1]).toMatchObject({ name: 'analyse', status: 'RETRY_SCHEDULED', error: { message: 'model timed out' } });

    // Completing a step that is not running is an illegal transition: a typed error through the gateway.
    const illegal = await client.query(completeStep, { runId: run.id, step: 'publish' });
    // Root fields are nullable (a failing field fails alone): the field is null, with its path.
    expect(illegal.data).toEqual({ completeStep: null });
    expect(illegal.errors?.[0]).toMatchObject({ path: ['completeStep'], extensions: { code: 'ILLEGAL_TRANSITION', serviceName: 'workflows' } });
    expect(JSON.stringify(illegal.errors)).not.toMatch(/stacktrace|\bat .+\.ts:\d+/);

    const secondAttempt = (await client.mustQuery<{ retryStep: any }>(retryStep, { runId: run.id, step: 'analyse' })).retryStep;
    expect(secondAttempt.steps[1]).toMatchObject({ name: 'analyse', status: 'RUNNING', attempt: 2 });

    // Second failure exhausts the two attempts: the run fails.
    const failedRun = (await client.mustQuery<{ failStep: any }>(failStep, { runId: run.id, step: 'analyse', error: 'model crashed' })).failStep;
    expect(failedRun.status).toBe('FAILED');
    expect(failedRun.error).toEqual({ stepName: 'analyse', message: 'model crashed' });
    expect(failedRun.currentStep).toBeNull();

    // A manual retry reopens the failed run; then the remaining steps complete it.
    const reopened = (await client.mustQuery<{ retryStep: any }>(retryStep, { runId: run.id, step: 'analyse' })).retryStep;
    expect(reopened).toMatchObject({ status: 'RUNNING', currentStep: 'analyse' });
    expect(reopened.steps[1]).toMatchObject({ status: 'RUNNING', attempt: 3 });
    await client.mustQuery(completeStep, { runId: run.id, step: 'analyse', output: { summary: 'short' } });
    const completed = (await client.mustQuery<{ completeStep: any }>(completeStep, { runId: run.id, step: 'publish', output: { url: 'https://example.org/summary' } }))
      .completeStep;
    expect(completed.status).toBe('COMPLETED');
    expect(completed.output).toEqual({ url: 'https://example.org/summary' });

    // Read back through the queries.
    const read = await client.mustQuery<{ run: any; runHistory: any[] }>(
      /* GraphQL */ `
        query Read($id: ID!) {
          run(id: $id) { ${RUN_FIELDS} }
          runHistory(runId: $id) { eventId type streamPosition globalPosition schemaVersion recordedAt data metadata }
        }
      `,
      { id: run.id },
    );
    expect(read.run).toEqual(completed);
    expect(read.run.steps.map((s: any) => [s.name, s.status, s.attempt])).toEqual([
      ['fetch', 'COMPLETED', 1],
      ['analyse', 'COMPLETED', 3],
      ['publish', 'COMPLETED', 1],
    ]);
    const history = read.runHistory;
    expect(history.map((e) => e.type)).toEqual([
      'RunStarted',
      'StepStarted', // fetch
      'StepCompleted',
      'StepStarted', // analyse, attempt 1
      'StepFailed',
      'StepRetried', // policy: attempt 2 scheduled after the backoff
      'StepStarted', // retryStep: attempt 2 now
      'StepFailed',
      'RunFailed',
      'StepRetried', // manual retry of the failed run
      'StepStarted', // attempt 3
      'StepCompleted',
      'StepStarted', // publish
      'StepCompleted',
      'RunCompleted',
    ]);
    expect(history.map((e) => e.streamPosition)).toEqual(history.map((_, i) => i));
    expect(read.run.version).toBe(history.length - 1);
    expect(history[0].data).toMatchObject({ runId: run.id, workflowId, input: { documentUrl: 'https://example.org/report.txt' } });
    expect(history[4].data).toMatchObject({ stepName: 'analyse', attempt: 1, error: { message: 'model timed out' } });
    expect(history[8].data).toMatchObject({ stepName: 'analyse', error: { message: 'model crashed' } });
    // Every event records who did it (the identity the gateway verified), the run's correlation
    // id (set by the startRun request) and the id of its cause.
    for (const event of history) {
      expect(event.metadata).toMatchObject({ actor: 'operator', correlationId });
      expect(typeof event.metadata.causationId).toBe('string');
    }
    const globalPositions = history.map((e) => BigInt(e.globalPosition));
    expect(globalPositions.every((p, i) => i === 0 || p > globalPositions[i - 1]!)).toBe(true);
  });

  it('refuses to complete a step of a cancelled run, and lists the runs', async () => {
    const workflowId = `wf-cancel-${Date.now()}`;
    await client.mustQuery(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { id: workflowId, name: 'Cancelled', steps: [{ name: 'only', kind: 'EXTERNAL', timeoutMs: 600_000 }] } },
    );
    const { startRun } = await client.mustQuery<{ startRun: { id: string } }>(
      /* GraphQL */ `mutation($id: ID!) { startRun(workflowId: $id, input: {}) { id } }`,
      { id: workflowId },
    );
    const cancelled = await client.mustQuery<{ cancelRun: any }>(
      /* GraphQL */ `mutation($id: ID!) { cancelRun(runId: $id, reason: "not needed") { status cancelReason } }`,
      { id: startRun.id },
    );
    expect(cancelled.cancelRun).toEqual({ status: 'CANCELLED', cancelReason: 'not needed' });

    const refused = await client.query(
      /* GraphQL */ `mutation($id: ID!) { completeStep(runId: $id, stepName: "only") { status } }`,
      { id: startRun.id },
    );
    expect(refused.errors?.[0]?.extensions?.code).toBe('ILLEGAL_TRANSITION');

    const unknown = await client.query(/* GraphQL */ `mutation { startRun(workflowId: "no-such-workflow") { id } }`);
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');

    const runs = await client.mustQuery<{ runs: any }>(
      /* GraphQL */ `query($wf: ID!) { runs(filter: { workflowId: $wf }, first: 10) { edges { node { id status } } pageInfo { hasNextPage } } }`,
      { wf: workflowId },
    );
    expect(runs.runs).toEqual({ edges: [{ node: { id: startRun.id, status: 'CANCELLED' } }], pageInfo: { hasNextPage: false } });
  });

  it('refuses completeStep and failStep on an INGEST step through the gateway (it completes from content\'s events)', async () => {
    const workflowId = `wf-ingest-${Date.now()}`;
    await client.mustQuery(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { id: workflowId, name: 'Ingest only', steps: [{ name: 'ingest', kind: 'INGEST', timeoutMs: 600_000 }] } },
    );
    const { startRun } = await client.mustQuery<{ startRun: { id: string; steps: { kind: string }[] } }>(
      /* GraphQL */ `mutation($id: ID!) { startRun(workflowId: $id, input: { title: "e2e note", text: "A short note for the e2e test." }) { id steps { kind } } }`,
      { id: workflowId },
    );
    expect(startRun.steps).toEqual([{ kind: 'INGEST' }]);
    // Whether content already completed the step or not, the API may not complete or fail it.
    const completed = await client.query(
      /* GraphQL */ `mutation($id: ID!) { completeStep(runId: $id, stepName: "ingest", output: { documentId: "forged" }) { status } }`,
      { id: startRun.id },
    );
    expect(completed.data).toEqual({ completeStep: null });
    expect(completed.errors?.[0]).toMatchObject({ path: ['completeStep'], extensions: { code: 'ILLEGAL_TRANSITION', serviceName: 'workflows' } });
    const failed = await client.query(
      /* GraphQL */ `mutation($id: ID!) { failStep(runId: $id, stepName: "ingest", error: "forged") { status } }`,
      { id: startRun.id },
    );
    expect(failed.errors?.[0]?.extensions?.code).toBe('ILLEGAL_TRANSITION');
    const { runHistory } = await client.mustQuery<{ runHistory: { type: string; data: any }[] }>(
      /* GraphQL */ `query($id: ID!) { runHistory(runId: $id) { type data } }`,
      { id: startRun.id },
    );
    expect(runHistory.filter((e) => e.data.source === 'api')).toEqual([]);
    expect(runHistory.some((e) => e.data.output?.documentId === 'forged')).toBe(false);
  });

  it('stops cleanly on SIGTERM with exit code 0', async () => {
    const { code, signal } = await started.stop();
    expect({ code, signal }, started.output()).toEqual({ code: 0, signal: null });
    const output = started.output();
    expect(output).toContain('"msg":"stopped"');
    // Reverse order of start: gateway, then the service, then its pool.
    const closed = ['gateway', 'workflows service', 'workflows database pool'].map((r) => output.indexOf(`"resource":"${r}","msg":"closed"`));
    expect(closed.every((index) => index >= 0), output).toBe(true);
    expect([...closed].sort((a, b) => a - b)).toEqual(closed);
    expect(output).not.toContain('second signal');
    await expect(fetch(`${gatewayBase}/health`)).rejects.toThrow();
  });
});
