/**
 * Batched entity resolution (issue 13): every `__resolveReference` of the subgraphs and the
 * per-entity fields the gateway fetches through `_entities` load by batch, one SQL statement per
 * `_entities` call and per field across every representation (federation/batch.ts), with the
 * same answers as one at a time; hostile representations get BAD_USER_INPUT and touch nothing
 * (federation/entities.ts). Statements are counted by wrapping the service pool's `query` (the
 * event store and Prisma both go through it), filtered by the table they read.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { createInProcessTransport } from '../broker/in-process.ts';
import { migrateServiceDatabase } from '../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import type { IntegrationTransport } from '../eventstore/index.ts';
import { MAX_REPRESENTATIONS } from '../federation/entities.ts';
import { mustGraphQL, postGraphQL, testLogger } from '../federation/testing/graphqlClient.ts';
import { startKnowledgeService, type KnowledgeService } from './knowledge/service.ts';
import { startMonitoringService, type MonitoringService } from './monitoring/service.ts';
import { sagaRun, type SagaRun } from './monitoring/testing/sagaEvents.ts';
import { startWorkflowsService, type WorkflowsService } from './workflows/service.ts';

/**
 * A pool on `db` whose statements are recorded (their SQL text): on every client, so that both
 * `pool.query` (which runs on a client) and statements on a checked-out client (monitoring's
 * timelines run in a transaction) are seen, each once.
 */
function countingPool(db: TestDatabase): { pool: pg.Pool; statements: string[] } {
  const pool = new pg.Pool({ connectionString: db.url, max: 10 });
  pool.on('error', () => {});
  const statements: string[] = [];
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
      const text = args[0];
      statements.push(typeof text === 'string' ? text : String((text as { text?: unknown })?.text));
      return query(...args);
    };
  });
  return { pool, statements };
}

/** The statements `work` makes that name `table` (as a quoted or bare identifier). */
async function statementsOn(recorded: string[], table: string, work: () => Promise<unknown>): Promise<number> {
  const from = recorded.length;
  await work();
  const pattern = new RegExp(`(^|[^a-z_])"?${table}"?([^a-z_]|$)`);
  return recorded.slice(from).filter((sql) => pattern.test(sql)).length;
}

const reps = (typename: string, ids: unknown[]) => ids.map((id) => ({ __typename: typename, id }));

describe('monitoring: WorkflowRun.timeline', () => {
  let db: TestDatabase;
  let counted: ReturnType<typeof countingPool>;
  let transport: IntegrationTransport;
  let service: MonitoringService;
  const runs: SagaRun[] = [];
  const TIMELINE = 'sinceRunStartMs sincePreviousMs durationSinceCauseMs event { eventId source type runId occurredAt }';
  const ENTITIES = `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on WorkflowRun { id timeline(first: 5) { ${TIMELINE} } } } }`;

  beforeAll(async () => {
    db = await createTestDatabase('entity_batch_monitoring');
    await migrateServiceDatabase(db.pool, { service: 'monitoring' });
    counted = countingPool(db);
    transport = createInProcessTransport();
    service = await startMonitoringService({ pool: counted.pool, port: 0, logger: testLogger, transport });
    const base = new Date('2025-03-01T10:00:00.000Z');
    for (let i = 0; i < 22; i++) runs.push(sagaRun(new Date(base.getTime() + i * 1000)));
    for (const source of ['content', 'knowledge', 'workflows']) await transport.publish(runs.flatMap((r) => r.inCausalOrder.filter((e) => e.source === source)));
    for (;;) {
      const { rows } = await db.pool.query('SELECT count(*)::int AS n FROM observed_events');
      if (rows[0].n >= runs.length * 13) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  afterAll(async () => {
    await service?.close();
    await transport?.close();
    await counted?.pool.end();
    await db?.drop();
  });

  it('20 representations: one statement, each timeline as runTimeline answers it alone', async () => {
    const ids = runs.slice(0, 20).map((r) => r.runId);
    let data: any;
    const n = await statementsOn(counted.statements, 'observed_events', async () => {
      data = await mustGraphQL(service.url, ENTITIES, { reps: reps('WorkflowRun', ids) });
    });
    expect(n).toBe(1);
    expect(data._entities.map((e: any) => e.id)).toEqual(ids);
    for (const [i, run] of runs.slice(0, 20).entries()) {
      expect(data._entities[i].timeline.map((e: any) => e.event.eventId)).toEqual(run.inCausalOrder.slice(0, 5).map((e) => e.eventId));
      expect(data._entities[i].timeline.map((e: any) => e.sinceRunStartMs)).toEqual([0, 5, 20, 25, 26]);
      const alone = await mustGraphQL(service.url, `query($r: ID!) { runTimeline(runId: $r, first: 5) { ${TIMELINE} } }`, { r: run.runId });
      expect(data._entities[i].timeline).toEqual(alone.runTimeline);
    }
  });

  it('the same number of statements for 2 runs as for 20; unknown and repeated ids keep their places; aliases of the field share the statement', async () => {
    const two = await statementsOn(counted.statements, 'observed_events', () => mustGraphQL(service.url, ENTITIES, { reps: reps('WorkflowRun', [runs[0]!.runId, runs[1]!.runId]) }));
    expect(two).toBe(1);
    let data: any;
    const aliased = await statementsOn(counted.statements, 'observed_events', async () => {
      data = await mustGraphQL(
        service.url,
        `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on WorkflowRun { id a: timeline(first: 2) { event { type } } b: timeline { event { type } } } } }`,
        { reps: reps('WorkflowRun', [runs[2]!.runId, 'unknown-run', runs[2]!.runId, runs[3]!.runId]) },
      );
    });
    expect(aliased).toBe(1);
    expect(data._entities.map((e: any) => [e.id, e.a.length, e.b.length])).toEqual([
      [runs[2]!.runId, 2, 13],
      ['unknown-run', 0, 0],
      [runs[2]!.runId, 2, 13],
      [runs[3]!.runId, 2, 13],
    ]);
  });

  it('a bad first is that entity’s BAD_USER_INPUT, as before', async () => {
    const result = await postGraphQL(service.url, `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on WorkflowRun { id timeline(first: 0) { event { type } } } } }`, {
      reps: reps('WorkflowRun', [runs[0]!.runId]),
    });
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
  });

  it('a representation without a usable id key is refused alone; the others are answered by one statement', async () => {
    let result: any;
    const n = await statementsOn(counted.statements, 'observed_events', async () => {
      result = await postGraphQL(service.url, ENTITIES, {
        reps: [
          { __typename: 'WorkflowRun', id: runs[0]!.runId },
          { __typename: 'WorkflowRun' },
          { __typename: 'WorkflowRun', id: 42 },
          { __typename: 'WorkflowRun', id: { $ne: null } },
          { __typename: 'WorkflowRun', id: 'x'.repeat(501) },
          { __typename: 'WorkflowRun', id: 'bad\u0000id' },
          { __typename: 'WorkflowRun', id: runs[1]!.runId },
        ],
      });
    });
    expect(n).toBe(1);
    expect(result.data._entities.map((e: any) => e?.id ?? null)).toEqual([runs[0]!.runId, null, null, null, null, null, runs[1]!.runId]);
    expect(result.errors.map((e: any) => [e.path, e.extensions.code])).toEqual([1, 2, 3, 4, 5].map((i) => [['_entities', i], 'BAD_USER_INPUT']));
    expect(result.errors[0].message).toMatch(/WorkflowRun representation needs an id key/);
  });

  it('a representation of no entity type, or too many of them, refuses the whole call before any statement', async () => {
    for (const bad of [{ __typename: 'ObservedEvent', eventId: 'x' }, { __typename: 'NoSuchType', id: 'x' }, { id: 'x' }, { __typename: 42 }, 'just a string', null]) {
      let result: any;
      const n = await statementsOn(counted.statements, '[a-z_]+', async () => {
        result = await postGraphQL(service.url, ENTITIES, { reps: [{ __typename: 'WorkflowRun', id: runs[0]!.runId }, bad] });
      });
      expect(n, JSON.stringify(bad)).toBe(0);
      expect(result.data ?? null).toBeNull();
      expect(result.errors[0].extensions.code, JSON.stringify(bad)).toBe('BAD_USER_INPUT');
    }
    const tooMany = await postGraphQL(service.url, ENTITIES, { reps: reps('WorkflowRun', Array.from({ length: MAX_REPRESENTATIONS + 1 }, (_, i) => `run-${i}`)) });
    expect(tooMany.errors?.[0]).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    expect(tooMany.errors?.[0]?.message).toMatch(/at most 10000 representations/);
  });

  it(`${MAX_REPRESENTATIONS} representations: ${MAX_REPRESENTATIONS / 1000} statements (batches of 1000)`, async () => {
    const ids = Array.from({ length: MAX_REPRESENTATIONS }, (_, i) => (i % 1000 === 7 ? runs[(i / 1000) | 0]!.runId : `unknown-${i}`));
    let data: any;
    const n = await statementsOn(counted.statements, 'observed_events', async () => {
      data = await mustGraphQL(service.url, `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on WorkflowRun { id timeline(first: 1) { event { type } } } } }`, {
        reps: reps('WorkflowRun', ids),
      });
    });
    expect(n).toBe(MAX_REPRESENTATIONS / 1000);
    expect(data._entities).toHaveLength(MAX_REPRESENTATIONS);
    expect(data._entities[7]).toEqual({ id: runs[0]!.runId, timeline: [{ event: { type: 'RunStarted' } }] });
    expect(data._entities[8]).toEqual({ id: 'unknown-8', timeline: [] });
  }, 60_000);
});

describe('workflows: Workflow and WorkflowRun references, WorkflowRun.workflow', () => {
  let db: TestDatabase;
  let counted: ReturnType<typeof countingPool>;
  let service: WorkflowsService;
  const runIds: string[] = [];
  let workflowId: string;

  beforeAll(async () => {
    db = await createTestDatabase('entity_batch_workflows');
    await migrateServiceDatabase(db.pool, { service: 'workflows' });
    counted = countingPool(db);
    service = await startWorkflowsService({ pool: counted.pool, port: 0, logger: testLogger, deadlineScanIntervalMs: 3_600_000 });
    const defined = await mustGraphQL(service.url, `mutation { defineWorkflow(input: { name: "batch", steps: [{ name: "a", kind: EXTERNAL, timeoutMs: 60000 }, { name: "b", kind: EXTERNAL, timeoutMs: 60000 }] }) { id } }`);
    workflowId = defined.defineWorkflow.id;
    for (let i = 0; i < 20; i++) runIds.push((await mustGraphQL(service.url, `mutation($w: ID!) { startRun(workflowId: $w) { id } }`, { w: workflowId })).startRun.id);
  });
  afterAll(async () => {
    await service?.close();
    await counted?.pool.end();
    await db?.drop();
  });

  const QUERY = `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on WorkflowRun { id status steps { name status } workflow { id name steps { name } } } ... on Workflow { id name } } }`;
  const count = async (representations: unknown[]) => {
    const counts: Record<string, number> = {};
    let data: any;
    // Statements on the four tables only: the service's own background work (its deadline scan
    // of run_deadlines, its projections' polls of the event store) runs whenever its timers fire.
    const all = await statementsOn(counted.statements, '(workflow_runs|step_runs|workflows|workflow_steps)', async () => {
      const tables = ['workflow_runs', 'step_runs', 'workflows', 'workflow_steps'];
      const from = counted.statements.length;
      data = await mustGraphQL(service.url, QUERY, { reps: representations });
      for (const table of tables) counts[table] = counted.statements.slice(from).filter((sql) => new RegExp(`"${table}"`).test(sql)).length;
    });
    return { data, counts, all };
  };

  it('the statements of 20 runs and a workflow are those of 2 runs; the answers are the rows of each id', async () => {
    const small = await count([...reps('WorkflowRun', runIds.slice(0, 2)), { __typename: 'Workflow', id: workflowId }]);
    const large = await count([...reps('WorkflowRun', runIds), { __typename: 'Workflow', id: workflowId }, { __typename: 'WorkflowRun', id: 'no-such-run' }]);
    expect(large.counts).toEqual(small.counts);
    expect(large.all).toBe(small.all);
    // One statement for the runs (and one for their steps); the Workflow reference and every run's workflow: one batch each.
    // (Prisma Client already merged findUnique calls of one tick; the batcher makes it explicit and checks the keys.)
    expect(large.counts.workflow_runs).toBe(1);
    expect(large.all).toBeLessThanOrEqual(6);
    expect(large.data._entities.slice(0, 20).map((e: any) => e.id)).toEqual(runIds);
    expect(large.data._entities[0]).toEqual({ id: runIds[0], status: 'RUNNING', steps: [{ name: 'a', status: 'RUNNING' }, { name: 'b', status: 'PENDING' }], workflow: { id: workflowId, name: 'batch', steps: [{ name: 'a' }, { name: 'b' }] } });
    expect(large.data._entities[20]).toEqual({ id: workflowId, name: 'batch' });
    expect(large.data._entities[21]).toBeNull();
  });

  it('a bad id key is that entity’s BAD_USER_INPUT', async () => {
    const result = await postGraphQL(service.url, QUERY, { reps: [{ __typename: 'Workflow', id: 7 }, { __typename: 'WorkflowRun', id: runIds[0] }] });
    expect(result.data?._entities[0]).toBeNull();
    expect(result.data?._entities[1].id).toBe(runIds[0]);
    expect(result.errors?.[0]).toMatchObject({ path: ['_entities', 0], extensions: { code: 'BAD_USER_INPUT', field: 'id' } });
  });
});

describe('knowledge: Entity references, Document.entities and Document.relations', () => {
  let db: TestDatabase;
  let counted: ReturnType<typeof countingPool>;
  let transport: IntegrationTransport;
  let service: KnowledgeService;
  const documents = Array.from({ length: 10 }, (_, i) => `doc-${i}`);

  beforeAll(async () => {
    db = await createTestDatabase('entity_batch_knowledge');
    await migrateServiceDatabase(db.pool, { service: 'knowledge' });
    // Read-side rows as the projections write them: entity e-j is mentioned j+1 times in every document; e-j relates to e-(j+1).
    await db.pool.query(`INSERT INTO entities (id, name, kind, mention_count, created_at) SELECT 'e-' || j, 'Entity ' || j, 'PERSON', (j + 1) * 10, now() FROM generate_series(0, 5) j`);
    await db.pool.query(`INSERT INTO entity_mentions (entity_id, document_id, chunk_index, count) SELECT 'e-' || j, d, 0, j + 1 FROM generate_series(0, 5) j, unnest($1::text[]) d`, [documents]);
    await db.pool.query(`INSERT INTO relations (from_entity_id, to_entity_id, document_id, weight) SELECT 'e-' || j, 'e-' || (j + 1), d, j + 1 FROM generate_series(0, 4) j, unnest($1::text[]) d`, [documents]);
    counted = countingPool(db);
    transport = createInProcessTransport();
    service = await startKnowledgeService({ pool: counted.pool, port: 0, logger: testLogger, transport });
  });
  afterAll(async () => {
    await service?.close();
    await transport?.close();
    await counted?.pool.end();
    await db?.drop();
  });

  const QUERY = `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Document { id entities(first: 3) { id name mentionCount } relations(first: 2) { weight from { id } to { id } } } ... on Entity { id name kind } } }`;

  it('10 documents and 3 entities: one statement per field and one for the entities, the same answers as one document alone', async () => {
    let data: any;
    const representations = [...reps('Document', documents), ...reps('Entity', ['e-1', 'nobody', 'e-5'])];
    const n = { mentions: 0, relations: 0, entities: 0 };
    const from = counted.statements.length;
    data = await mustGraphQL(service.url, QUERY, { reps: representations });
    const made = counted.statements.slice(from);
    n.mentions = made.filter((sql) => /entity_mentions/.test(sql)).length;
    n.relations = made.filter((sql) => /FROM relations/.test(sql)).length;
    n.entities = made.filter((sql) => /"entities"/.test(sql)).length;
    expect(n).toEqual({ mentions: 1, relations: 1, entities: 1 });
    const expected = {
      entities: [5, 4, 3].map((j) => ({ id: `e-${j}`, name: `Entity ${j}`, mentionCount: (j + 1) * 10 })),
      relations: [4, 3].map((j) => ({ weight: j + 1, from: { id: `e-${j}` }, to: { id: `e-${j + 1}` } })),
    };
    documents.forEach((id, i) => expect(data._entities[i]).toEqual({ id, ...expected }));
    expect(data._entities.slice(10)).toEqual([{ id: 'e-1', name: 'Entity 1', kind: 'PERSON' }, null, { id: 'e-5', name: 'Entity 5', kind: 'PERSON' }]);
    const alone = await mustGraphQL(service.url, QUERY, { reps: reps('Document', [documents[3]]) });
    expect(alone._entities[0]).toEqual(data._entities[3]);
  });

  it('a first out of range is each entity’s BAD_USER_INPUT; an unknown document has no entities', async () => {
    const result = await postGraphQL(service.url, `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Document { id entities(first: 0) { id } } } }`, {
      reps: reps('Document', ['doc-0', 'doc-1']),
    });
    expect(result.errors?.map((e) => [e.path, e.extensions?.code])).toEqual([
      [['_entities', 0, 'entities'], 'BAD_USER_INPUT'],
      [['_entities', 1, 'entities'], 'BAD_USER_INPUT'],
    ]);
    const unknown = await mustGraphQL(service.url, `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on Document { id entities(first: 3) { id } } } }`, {
      reps: reps('Document', ['no-such-document']),
    });
    expect(unknown._entities).toEqual([{ id: 'no-such-document', entities: [] }]);
  });
});
