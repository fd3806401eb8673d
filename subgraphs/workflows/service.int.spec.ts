/**
 * The workflows subgraph over HTTP against a fresh PostgreSQL database: definitions, runs,
 * the step state machine, idempotent starts, typed errors with nothing appended, pagination.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateServiceDatabase } from '../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../db/testing.ts';
import { startWorkflowsService, type WorkflowsService } from './service.ts';
import { identityHeaders, mustGraphQL, postGraphQL, testLogger } from '../../federation/testing/graphqlClient.ts';

const RUN_FIELDS = `id workflowId status input output error currentStep idempotencyKey version cancelReason
  steps { name kind status attempt output error deadline retryAt retryPolicy { maxAttempts backoffMs } }`;

let db: TestDatabase;
let service: WorkflowsService;
const gql = <T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) => mustGraphQL<T>(service.url, query, variables, headers);

async function defineThreeStepWorkflow(id?: string): Promise<string> {
  const data = await gql(
    `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id name revision steps { name kind position timeoutMs retryPolicy { maxAttempts backoffMs } } } }`,
    {
      input: {
        ...(id ? { id } : {}),
        name: 'Document pipeline',
        steps: [
          { name: 'ingest', kind: 'INGEST', timeoutMs: 60_000 },
          { name: 'extract', kind: 'EXTRACT', timeoutMs: 60_000, retryPolicy: { maxAttempts: 2, backoffMs: 0 } },
          { name: 'review', kind: 'EXTERNAL', timeoutMs: 60_000, retryPolicy: { maxAttempts: 3, backoffMs: 60_000 } },
        ],
      },
    },
  );
  return data.defineWorkflow.id;
}

/**
 * The same shape with EXTERNAL steps only: steps completed and failed through the API must be
 * EXTERNAL (INGEST/EXTRACT steps complete from content's and knowledge's events, see saga/).
 */
async function defineExternalWorkflow(): Promise<string> {
  const data = await gql(`mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`, {
    input: {
      name: 'Manual pipeline',
      steps: [
        { name: 'fetch', kind: 'EXTERNAL', timeoutMs: 60_000 },
        { name: 'analyse', kind: 'EXTERNAL', timeoutMs: 60_000, retryPolicy: { maxAttempts: 2, backoffMs: 0 } },
        { name: 'review', kind: 'EXTERNAL', timeoutMs: 60_000, retryPolicy: { maxAttempts: 3, backoffMs: 60_000 } },
      ],
    },
  });
  return data.defineWorkflow.id;
}

const startRun = (workflowId: string, input: unknown = { doc: 'a.txt' }, idempotencyKey?: string) =>
  postGraphQL(service.url, `mutation($w: ID!, $i: JSON, $k: String) { startRun(workflowId: $w, input: $i, idempotencyKey: $k) { ${RUN_FIELDS} } }`, {
    w: workflowId,
    i: input,
    k: idempotencyKey,
  });
const complete = (runId: string, stepName: string, output: unknown = null) =>
  postGraphQL(service.url, `mutation($r: ID!, $s: String!, $o: JSON) { completeStep(runId: $r, stepName: $s, output: $o) { ${RUN_FIELDS} } }`, {
    r: runId,
    s: stepName,
    o: output,
  });
const fail = (runId: string, stepName: string, error: string) =>
  postGraphQL(service.url, `mutation($r: ID!, $s: String!, $e: String!) { failStep(runId: $r, stepName: $s, error: $e) { ${RUN_FIELDS} } }`, {
    r: runId,
    s: stepName,
    e: error,
  });
const history = async (runId: string) =>
  (await gql(`query($r: ID!) { runHistory(runId: $r) { eventId type streamPosition globalPosition recordedAt data metadata } }`, { r: runId })).runHistory as {
    type: string;
    streamPosition: number;
    data: any;
    metadata: any;
  }[];
const countRows = async (table: string) => Number((await db.pool.query(`SELECT count(*)::int AS n FROM ${table}`)).rows[0].n);

beforeAll(async () => {
  db = await createTestDatabase('workflows_service');
  await migrateServiceDatabase(db.pool, { service: 'workflows' });
  service = await startWorkflowsService({ pool: db.pool, port: 0, deadlineScanIntervalMs: 100, logger: testLogger });
});

afterAll(async () => {
  await service?.close();
  await db?.drop();
});

describe('workflow definitions', () => {
  it('defines a three-step workflow and reads it back by id and in the list', async () => {
    const id = await defineThreeStepWorkflow('pipeline-1');
    expect(id).toBe('pipeline-1');
    const data = await gql(`query { workflow(id: "pipeline-1") { id name revision steps { name kind position retryPolicy { maxAttempts backoffMs } } } workflows { id } }`);
    expect(data.workflow).toEqual({
      id: 'pipeline-1',
      name: 'Document pipeline',
      revision: 1,
      steps: [
        { name: 'ingest', kind: 'INGEST', position: 0, retryPolicy: { maxAttempts: 1, backoffMs: 0 } },
        { name: 'extract', kind: 'EXTRACT', position: 1, retryPolicy: { maxAttempts: 2, backoffMs: 0 } },
        { name: 'review', kind: 'EXTERNAL', position: 2, retryPolicy: { maxAttempts: 3, backoffMs: 60_000 } },
      ],
    });
    expect(data.workflows.map((w: { id: string }) => w.id)).toContain('pipeline-1');
  });

  it('revises a workflow: revision 2, new steps', async () => {
    await defineThreeStepWorkflow('pipeline-rev');
    const data = await gql(`mutation { reviseWorkflow(id: "pipeline-rev", input: { name: "Shorter", steps: [{ name: "only", kind: EXTERNAL, timeoutMs: 1000 }] }) { revision name steps { name } } }`);
    expect(data.reviseWorkflow).toEqual({ revision: 2, name: 'Shorter', steps: [{ name: 'only' }] });
  });

  it('rejects duplicate step names with BAD_USER_INPUT and stores nothing', async () => {
    const before = await countRows('eventstore.events');
    const result = await postGraphQL(
      service.url,
      `mutation { defineWorkflow(input: { name: "bad", steps: [{ name: "a", kind: INGEST, timeoutMs: 1 }, { name: "a", kind: INGEST, timeoutMs: 1 }] }) { id } }`,
    );
    expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(result.errors?.[0]?.extensions?.field).toBe('steps[1].name');
    expect(result.errors?.[0]?.extensions?.stacktrace).toBeUndefined();
    expect(await countRows('eventstore.events')).toBe(before);
  });
});

describe('runs', () => {
  let workflowId: string;
  let externalWorkflowId: string;
  beforeAll(async () => {
    workflowId = await defineThreeStepWorkflow();
    externalWorkflowId = await defineExternalWorkflow();
  });

  it('starts a run: RunStarted then StepStarted of the first step, deadline = start + timeoutMs', async () => {
    const result = await startRun(workflowId);
    const run = result.data!.startRun;
    expect(run).toMatchObject({ workflowId, status: 'RUNNING', input: { doc: 'a.txt' }, currentStep: 'ingest', version: 1 });
    expect(run.steps.map((s: any) => [s.name, s.status, s.attempt])).toEqual([
      ['ingest', 'RUNNING', 1],
      ['extract', 'PENDING', 0],
      ['review', 'PENDING', 0],
    ]);
    const events = await history(run.id);
    expect(events.map((e) => e.type)).toEqual(['RunStarted', 'StepStarted']);
    expect(Date.parse(events[1]!.data.deadline) - Date.parse(events[1]!.data.startedAt)).toBe(60_000);
    expect(Date.parse(run.steps[0].deadline)).toBe(Date.parse(events[1]!.data.deadline));
  });

  it('returns the same run for the same idempotency key, sequential or concurrent, appending once', async () => {
    const first = await startRun(workflowId, { doc: 'b' }, 'key-1');
    const again = await startRun(workflowId, { doc: 'b' }, 'key-1');
    expect(again.data!.startRun.id).toBe(first.data!.startRun.id);
    const racing = await Promise.all(Array.from({ length: 6 }, () => startRun(workflowId, { doc: 'c' }, 'key-race')));
    const ids = new Set(racing.map((r) => r.data?.startRun.id));
    expect(racing.every((r) => r.errors === undefined)).toBe(true);
    expect(ids.size).toBe(1);
    expect((await history(first.data!.startRun.id)).length).toBe(2);
    expect((await history([...ids][0] as string)).length).toBe(2);
    const keys = await db.pool.query(`SELECT run_id FROM idempotency_keys WHERE workflow_id = $1 AND key IN ('key-1', 'key-race')`, [workflowId]);
    expect(keys.rowCount).toBe(2);
  });

  it('rejects a reused idempotency key with another input: IDEMPOTENCY_CONFLICT', async () => {
    await startRun(workflowId, { doc: 'x' }, 'key-2');
    const result = await startRun(workflowId, { doc: 'y' }, 'key-2');
    expect(result.errors?.[0]?.extensions?.code).toBe('IDEMPOTENCY_CONFLICT');
  });

  it('rejects a run of an unknown workflow with NOT_FOUND and stores nothing', async () => {
    const before = await countRows('eventstore.events');
    const result = await startRun('no-such-workflow');
    expect(result.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(result.data).toEqual({ startRun: null });
    expect(await countRows('eventstore.events')).toBe(before);
  });

  it('drives a run through complete, fail (retried at once), fail (run failed), manual retry and completion', async () => {
    const started = await mustGraphQL(service.url, `mutation($w: ID!) { startRun(workflowId: $w, input: { n: 1 }) { id } }`, { w: externalWorkflowId }, {
      identity: { subject: 'alice', role: 'operator' },
      headers: { 'x-correlation-id': 'corr-42' },
    });
    const runId: string = started.startRun.id;

    const c1 = await complete(runId, 'fetch', { bytes: 3 });
    expect(c1.data!.completeStep).toMatchObject({ status: 'RUNNING', currentStep: 'analyse' });
    expect(c1.data!.completeStep.steps[0]).toMatchObject({ status: 'COMPLETED', output: { bytes: 3 } });

    const f1 = await fail(runId, 'analyse', 'model overloaded');
    expect(f1.data!.failStep.steps[1]).toMatchObject({ status: 'RUNNING', attempt: 2 });
    expect(f1.data!.failStep.status).toBe('RUNNING');

    const f2 = await fail(runId, 'analyse', 'still overloaded');
    expect(f2.data!.failStep).toMatchObject({ status: 'FAILED', currentStep: null, error: { stepName: 'analyse', message: 'still overloaded' } });
    expect(f2.data!.failStep.steps[1]).toMatchObject({ status: 'FAILED', attempt: 2, error: { message: 'still overloaded' } });

    const r = await postGraphQL(service.url, `mutation($r: ID!) { retryStep(runId: $r, stepName: "analyse") { ${RUN_FIELDS} } }`, { r: runId });
    expect(r.data!.retryStep).toMatchObject({ status: 'RUNNING', error: null, currentStep: 'analyse' });
    expect(r.data!.retryStep.steps[1]).toMatchObject({ status: 'RUNNING', attempt: 3 });

    await complete(runId, 'analyse', { entities: 2 });
    const review = await fail(runId, 'review', 'needs a second look');
    // review has backoffMs 60000: the retry waits; a manual retry starts it at once.
    expect(review.data!.failStep.steps[2]).toMatchObject({ status: 'RETRY_SCHEDULED', attempt: 1 });
    expect(review.data!.failStep.steps[2].retryAt).not.toBeNull();
    const early = await postGraphQL(service.url, `mutation($r: ID!) { retryStep(runId: $r, stepName: "review") { ${RUN_FIELDS} } }`, { r: runId });
    expect(early.data!.retryStep.steps[2]).toMatchObject({ status: 'RUNNING', attempt: 2 });
    const done = await complete(runId, 'review', { approved: true });
    expect(done.data!.completeStep).toMatchObject({ status: 'COMPLETED', output: { approved: true }, currentStep: null });

    const events = await history(runId);
    expect(events.map((e) => e.type)).toEqual([
      'RunStarted', 'StepStarted',
      'StepCompleted', 'StepStarted',
      'StepFailed', 'StepRetried', 'StepStarted',
      'StepFailed', 'RunFailed',
      'StepRetried', 'StepStarted',
      'StepCompleted', 'StepStarted',
      'StepFailed', 'StepRetried',
      'StepStarted',
      'StepCompleted', 'RunCompleted',
    ]);
    expect(events.map((e) => e.streamPosition)).toEqual(events.map((_, i) => i));
    expect(events[0]!.metadata).toMatchObject({ actor: 'alice', actorRole: 'operator', correlationId: 'corr-42' });
    expect(typeof events[0]!.metadata.causationId).toBe('string');
    expect(events[2]!.metadata).toMatchObject({ actor: 'operator', actorRole: 'operator' });
    // Every event of the run carries the run's correlation id, also those of later requests
    // without (or with another) x-correlation-id, and the id of its cause.
    for (const event of events) {
      expect(event.metadata.correlationId).toBe('corr-42');
      expect(typeof event.metadata.causationId).toBe('string');
    }
    expect(typeof events[2]!.metadata.originCorrelationId).toBe('string');
    expect(await db.pool.query('SELECT 1 FROM run_deadlines WHERE run_id = $1', [runId]).then((r) => r.rowCount)).toBe(0);
  });

  it('rejects completing a step of a cancelled run with ILLEGAL_TRANSITION and appends nothing', async () => {
    const runId: string = (await startRun(externalWorkflowId)).data!.startRun.id;
    const cancelled = await gql(`mutation($r: ID!) { cancelRun(runId: $r, reason: "wrong document") { status cancelReason steps { status } } }`, { r: runId });
    expect(cancelled.cancelRun).toEqual({ status: 'CANCELLED', cancelReason: 'wrong document', steps: [{ status: 'CANCELLED' }, { status: 'CANCELLED' }, { status: 'CANCELLED' }] });
    const length = (await history(runId)).length;

    const result = await complete(runId, 'fetch', { late: true });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'ILLEGAL_TRANSITION', runStatus: 'CANCELLED' });
    expect(result.data).toEqual({ completeStep: null });
    expect((await history(runId)).length).toBe(length);

    const again = await postGraphQL(service.url, `mutation($r: ID!) { cancelRun(runId: $r) { id } }`, { r: runId });
    expect(again.errors?.[0]?.extensions?.code).toBe('ILLEGAL_TRANSITION');
    expect((await history(runId)).length).toBe(length);
  });

  it('answers NOT_FOUND for unknown runs and steps, null for a missing run', async () => {
    expect((await complete('no-such-run', 'ingest')).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const runId: string = (await startRun(workflowId)).data!.startRun.id;
    expect((await complete(runId, 'no-such-step')).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const missing = await postGraphQL(service.url, `query { run(id: "no-such-run") { id } runHistory(runId: "no-such-run") { type } }`);
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(missing.errors?.[0]?.path).toEqual(['runHistory']);
  });

  it('resolves Workflow and WorkflowRun entity references (_entities)', async () => {
    const runId: string = (await startRun(workflowId)).data!.startRun.id;
    const data = await gql(
      `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Workflow { id name } ... on WorkflowRun { id status workflow { id } } } }`,
      { reps: [{ __typename: 'Workflow', id: workflowId }, { __typename: 'WorkflowRun', id: runId }] },
    );
    expect(data._entities).toEqual([
      { id: workflowId, name: 'Document pipeline' },
      { id: runId, status: 'RUNNING', workflow: { id: workflowId } },
    ]);
  });
});

describe('service lifecycle', () => {
  it('owns a pool created from databaseUrl, closes idempotently, and rejects a port in use', async () => {
    const own = await startWorkflowsService({ databaseUrl: db.url, port: 0, logger: testLogger });
    const data = await mustGraphQL(own.url, `query { workflows { id } }`);
    expect(Array.isArray(data.workflows)).toBe(true);
    const port = Number(new URL(own.url).port);
    await expect(startWorkflowsService({ pool: db.pool, port, logger: testLogger })).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await Promise.all([own.close(), own.close()]);
    await own.close();
    await expect(fetch(own.url, { method: 'POST' })).rejects.toThrow();
    // The shared pool given to the other (failed) start is still usable.
    expect((await db.pool.query('SELECT 1 AS one')).rows[0].one).toBe(1);
  });
});

describe('bad requests', () => {
  it('rejects an oversized run input with EVENT_TOO_LARGE and stores nothing', async () => {
    const workflowId = await defineThreeStepWorkflow();
    const before = await countRows('eventstore.events');
    const result = await startRun(workflowId, { blob: 'x'.repeat(300 * 1024) });
    expect(result.errors?.[0]?.extensions?.code).toBe('EVENT_TOO_LARGE');
    expect(await countRows('eventstore.events')).toBe(before);
    expect(await countRows(`workflow_runs WHERE workflow_id = '${workflowId}'`)).toBe(0);
  });

  it('answers variable type errors with BAD_USER_INPUT, an unknown field with GRAPHQL_VALIDATION_FAILED, a broken body with 400', async () => {
    const typed = await postGraphQL(service.url, `query($f: Int) { runs(first: $f) { edges { cursor } } }`, { f: 'many' });
    expect(typed.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const unknown = await postGraphQL(service.url, `query { nope }`);
    expect(unknown.errors?.[0]?.extensions?.code).toBe('GRAPHQL_VALIDATION_FAILED');
    const broken = await fetch(service.url, { method: 'POST', headers: { 'content-type': 'application/json', ...(await identityHeaders()) }, body: '{"query": ' });
    expect(broken.status).toBe(400);
    const health = await fetch(new URL('/health', service.url));
    expect(health.status).toBe(200);
  });
});

describe('runs pagination', () => {
  it('pages through runs newest first with first/after, and filters by workflow and status', async () => {
    const workflowId = await defineThreeStepWorkflow();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await startRun(workflowId, { i })).data!.startRun.id);
    await gql(`mutation($r: ID!) { cancelRun(runId: $r) { id } }`, { r: ids[1] });

    const query = `query($f: RunFilter, $first: Int, $after: String) { runs(filter: $f, first: $first, after: $after) { edges { cursor node { id status } } pageInfo { hasNextPage endCursor } } }`;
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const data: any = await gql(query, { f: { workflowId }, first: 2, after });
      seen.push(...data.runs.edges.map((e: any) => e.node.id));
      expect(data.runs.pageInfo.endCursor).toBe(data.runs.edges.at(-1)?.cursor ?? null);
      if (!data.runs.pageInfo.hasNextPage) break;
      after = data.runs.pageInfo.endCursor;
    }
    expect(seen).toEqual([...ids].reverse());

    const cancelled = await gql(query, { f: { workflowId, status: 'CANCELLED' } });
    expect(cancelled.runs.edges.map((e: any) => e.node.id)).toEqual([ids[1]]);
    expect(cancelled.runs.pageInfo).toEqual({ hasNextPage: false, endCursor: cancelled.runs.edges[0].cursor });

    const nested = await gql(`query($w: ID!) { workflow(id: $w) { runs(first: 1) { edges { node { id } } pageInfo { hasNextPage } } } }`, { w: workflowId });
    expect(nested.workflow.runs).toEqual({ edges: [{ node: { id: ids[4] } }], pageInfo: { hasNextPage: true } });

    const bad = await postGraphQL(service.url, `query { runs(after: "garbage") { edges { cursor } } }`);
    expect(bad.errors?.[0]?.extensions?.code).toBe('INVALID_CURSOR');
    // Well formed, but past the bigint column's range: still the server's INVALID_CURSOR.
    const huge = await postGraphQL(service.url, `query($a: String) { runs(after: $a) { edges { cursor } } }`, { a: Buffer.from('run:9223372036854775808').toString('base64url') });
    expect(huge.errors?.[0]?.extensions?.code).toBe('INVALID_CURSOR');
    // PostgreSQL text cannot hold U+0000: a typed error, not an internal one.
    const nul = await postGraphQL(service.url, `query($id: ID!) { run(id: $id) { id } workflow(id: $id) { id } }`, { id: 'a\u0000b' });
    expect(nul.errors?.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT']);
    const tooMany = await postGraphQL(service.url, `query { runs(first: 1000) { edges { cursor } } }`);
    expect(tooMany.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('as-of fields and step documents on queries', () => {
  it('queries serve the current run (asOfVersion null) and StepRun.document as a Document reference, also through _entities', async () => {
    const workflow = await gql(`mutation { defineWorkflow(input: { name: "extract then review", steps: [
      { name: "extract", kind: EXTRACT, timeoutMs: 60000 }, { name: "review", kind: EXTERNAL, timeoutMs: 60000 }] }) { id } }`);
    const started = await startRun(workflow.defineWorkflow.id, { documentId: 'doc-from-input' });
    const runId = started.data.startRun.id as string;
    const data = await gql(
      `query($id: ID!) {
        run(id: $id) { version asOfVersion asOfPublishedVersion steps { name document { __typename id } } }
        _entities(representations: [{ __typename: "WorkflowRun", id: $id }]) { ... on WorkflowRun { asOfVersion steps { document { id } } } }
      }`,
      { id: runId },
    );
    expect(data.run).toEqual({
      version: 1,
      asOfVersion: null,
      asOfPublishedVersion: null,
      steps: [
        { name: 'extract', document: { __typename: 'Document', id: 'doc-from-input' } },
        { name: 'review', document: null },
      ],
    });
    expect(data._entities).toEqual([{ asOfVersion: null, steps: [{ document: { id: 'doc-from-input' } }, { document: null }] }]);
  });
});
