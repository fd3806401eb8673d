/**
 * One dead subgraph takes only its own fields down (issue 11): the real workflows, content and
 * knowledge services behind the gateway, then knowledge stopped (its port closed) while monitoring
 * was never reachable. The fields another subgraph adds to an entity, and every root field, are
 * nullable (the federation convention), so the gateway answers the live subgraphs' data and an
 * error for the dead one's fields, instead of `data: null` or a null parent.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../broker/in-process.ts';
import { migrateServiceDatabase, REPO_ROOT } from '../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { startContentService } from '../subgraphs/content/service.ts';
import { startKnowledgeService, type KnowledgeService } from '../subgraphs/knowledge/service.ts';
import { startWorkflowsService } from '../subgraphs/workflows/service.ts';
import { createGatewayClient, type GatewayClient } from '../test/support/client.ts';
import { freePort } from '../test/support/ports.ts';
import { startGateway } from './server.ts';
import { readSupergraph } from './supergraph.ts';

const logger = pino({ level: 'silent' });
const closers: (() => Promise<unknown>)[] = [];
const databases: TestDatabase[] = [];
let corpusDir: string;
let knowledge: KnowledgeService;
let client: GatewayClient;
let workflowId: string;
let runId: string;
let documentId: string;

const WORKFLOWS_AND_ENTITIES = /* GraphQL */ `{ workflows { id } searchEntities(name: "hyde") { name } }`;
const DOCUMENT_WITH_ENTITIES = /* GraphQL */ `query($id: ID!) { document(id: $id) { title entities { name } relations { weight } } }`;
const RUN_WITH_TIMELINE = /* GraphQL */ `query($id: ID!) { run(id: $id) { id status timeline { sinceRunStartMs } } }`;

beforeAll(async () => {
  for (const name of ['workflows', 'content', 'knowledge'] as const) {
    const db = await createTestDatabase(`dead_${name}`);
    databases.push(db);
    await migrateServiceDatabase(db.pool, { service: name });
  }
  const [workflowsDb, contentDb, knowledgeDb] = databases as [TestDatabase, TestDatabase, TestDatabase];
  corpusDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-dead-corpus-'));
  const transport = createInProcessTransport();
  closers.push(() => transport.close());
  const workflows = await startWorkflowsService({ pool: workflowsDb.pool, port: 0, logger, transport });
  closers.push(() => workflows.close());
  const content = await startContentService({ pool: contentDb.pool, port: 0, logger, transport, corpusDir });
  closers.push(() => content.close());
  knowledge = await startKnowledgeService({ pool: knowledgeDb.pool, port: 0, logger, transport });
  closers.push(() => knowledge.close());

  const { supergraphSdl } = await readSupergraph(path.join(REPO_ROOT, 'supergraph.graphql'));
  const gateway = await startGateway({
    supergraphSdl,
    // Monitoring is never reachable here: its `WorkflowRun.timeline` must fail alone too.
    subgraphUrlOverrides: { workflows: workflows.url, content: content.url, knowledge: knowledge.url, monitoring: `http://127.0.0.1:${await freePort()}/graphql` },
    port: 0,
    logger,
  });
  closers.push(() => gateway.close());
  client = createGatewayClient(gateway.url);

  ({ defineWorkflow: { id: workflowId } } = await client.mustQuery<{ defineWorkflow: { id: string } }>(
    `mutation { defineWorkflow(input: { name: "one manual step", steps: [{ name: "approve", kind: EXTERNAL, timeoutMs: 600000 }] }) { id } }`,
  ));
  ({ startRun: { id: runId } } = await client.mustQuery<{ startRun: { id: string } }>(`mutation($w: ID!) { startRun(workflowId: $w) { id } }`, { w: workflowId }));
  ({ ingestDocument: { id: documentId } } = await client.mustQuery<{ ingestDocument: { id: string } }>(
    `mutation { ingestDocument(title: "Jekyll", text: "Dr Jekyll met Mr Hyde in London.") { id } }`,
  ));
}, 120_000);

afterAll(async () => {
  while (closers.length > 0) await closers.pop()!().catch(() => {});
  await Promise.all(databases.map((db) => db.drop()));
  if (corpusDir) await rm(corpusDir, { recursive: true, force: true });
});

describe('a dead subgraph takes only its own fields', () => {
  it('while knowledge runs, the same operations answer its fields without errors', async () => {
    const both = await client.query<{ workflows: { id: string }[]; searchEntities: unknown[] }>(WORKFLOWS_AND_ENTITIES);
    expect(both.errors).toBeUndefined();
    expect(both.data?.workflows).toContainEqual({ id: workflowId });
    expect(Array.isArray(both.data?.searchEntities)).toBe(true);
    const document = await client.query<{ document: { title: string; entities: unknown[]; relations: unknown[] } }>(DOCUMENT_WITH_ENTITIES, { id: documentId });
    expect(document.errors).toBeUndefined();
    expect(document.data?.document).toMatchObject({ title: 'Jekyll', entities: expect.any(Array), relations: expect.any(Array) });
  });

  describe('with knowledge stopped (its port closed)', () => {
    beforeAll(async () => {
      await knowledge.close();
    });

    it('a root field of knowledge is null with its error; the workflows root field next to it keeps its data', async () => {
      const result = await client.query<{ workflows: { id: string }[] | null; searchEntities: unknown[] | null }>(WORKFLOWS_AND_ENTITIES);
      expect(result.data).not.toBeNull();
      expect(result.data!.workflows).toContainEqual({ id: workflowId });
      expect(result.data!.searchEntities).toBeNull();
      expect(result.errors).toHaveLength(1);
      expect(result.errors![0]).toMatchObject({ path: ['searchEntities'], extensions: { code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'knowledge' } });
    });

    it("knowledge's fields on content's Document are null with their error; the document keeps content's fields", async () => {
      const result = await client.query<{ document: { title: string; entities: unknown; relations: unknown } | null }>(DOCUMENT_WITH_ENTITIES, { id: documentId });
      expect(result.data).toEqual({ document: { title: 'Jekyll', entities: null, relations: null } });
      expect(result.errors?.map((e) => [e.path, e.extensions?.code, e.extensions?.serviceName])).toEqual([
        [['document', 'entities'], 'SUBGRAPH_UNAVAILABLE', 'knowledge'],
        [['document', 'relations'], 'SUBGRAPH_UNAVAILABLE', 'knowledge'],
      ]);
    });
  });

  it("monitoring's WorkflowRun.timeline is null with its error while monitoring is down; the run keeps workflows' fields", async () => {
    const result = await client.query<{ run: { id: string; status: string; timeline: unknown } | null }>(RUN_WITH_TIMELINE, { id: runId });
    expect(result.data).toEqual({ run: { id: runId, status: 'RUNNING', timeline: null } });
    expect(result.errors).toHaveLength(1);
    expect(result.errors![0]).toMatchObject({ path: ['run', 'timeline'], extensions: { code: 'SUBGRAPH_UNAVAILABLE', serviceName: 'monitoring' } });
  });
});
