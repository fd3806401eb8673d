/**
 * The knowledge service against a fresh database with the in-process transport: content's
 * DocumentChunked events for the chunks of sign-of-the-four.txt and a workflows StepStarted
 * (EXTRACT) published by hand → DocumentEntitiesExtracted with runId/stepName and causal
 * metadata; the graph over GraphQL/HTTP; redelivery without a second effect; cancellation;
 * typed errors.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../../broker/in-process.ts';
import { migrateServiceDatabase } from '../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../db/testing.ts';
import { createEventStore, type EventStore, type IntegrationEvent, type IntegrationTransport } from '../../eventstore/index.ts';
import { eventually, mustGraphQL, postGraphQL, testLogger } from '../../federation/testing/graphqlClient.ts';
import { extractionStreamId } from './events.ts';
import { startKnowledgeService, type KnowledgeService } from './service.ts';
import { chunkText, readCorpusFile } from './testing/chunkText.ts';

/** Read at load: a missing corpus fails this file with one message (config/corpus.ts requireCorpus). */
const SIGN_OF_THE_FOUR = readCorpusFile('sign-of-the-four.txt');
let db: TestDatabase;
let transport: IntegrationTransport;
let service: KnowledgeService;
let reader: EventStore;
const published: IntegrationEvent[] = [];
let position = 0;

/** An integration event as a relay of `source` would publish it. */
function integrationEvent(source: string, type: string, streamId: string, data: unknown, correlationId: string): IntegrationEvent {
  position++;
  return {
    eventId: randomUUID(),
    source,
    type,
    schemaVersion: 1,
    streamId,
    streamPosition: position,
    data,
    metadata: { correlationId, causationId: randomUUID(), actor: `system:${source}` },
    occurredAt: new Date().toISOString(),
    position: { transactionId: String(position), globalPosition: String(position) },
  };
}

function chunkEvents(documentId: string, text: string, correlationId: string): IntegrationEvent[] {
  const chunks = chunkText(text);
  return chunks.map((c) =>
    integrationEvent('content', 'DocumentChunked', `document-${documentId}`, { documentId, chunkIndex: c.chunkIndex, chunkCount: chunks.length, text: c.text, startOffset: c.startOffset, endOffset: c.endOffset }, correlationId),
  );
}

function stepStarted(runId: string, documentId: string | undefined, correlationId: string): IntegrationEvent {
  return integrationEvent('workflows', 'StepStarted', `run-${runId}`, {
    runId, workflowId: 'wf-1', stepName: 'extract', kind: 'EXTRACT', attempt: 1, runInput: { corpusFile: 'sign-of-the-four.txt' }, ...(documentId ? { documentId } : {}),
  }, correlationId);
}

const gql = <T = any>(query: string, variables?: Record<string, unknown>) => mustGraphQL<T>(service.url, query, variables);
const knowledgeEvents = (type: string) => published.filter((e) => e.source === 'knowledge' && e.type === type);

beforeAll(async () => {
  db = await createTestDatabase('knowledge_service');
  await migrateServiceDatabase(db.pool, { service: 'knowledge' });
  transport = createInProcessTransport();
  await transport.consume({ consumer: 'test-from-knowledge', source: 'knowledge', handler: async (e) => void published.push(e) });
  service = await startKnowledgeService({ pool: db.pool, port: 0, logger: testLogger, transport, relaySubscription: { pollIntervalMs: 50 } });
  reader = createEventStore({ pool: db.pool });
});
afterAll(async () => {
  await service?.close();
  await reader?.close();
  await transport?.close();
  await db?.drop();
});

describe('extraction of sign-of-the-four.txt', () => {
  const documentId = 'doc-sign-of-the-four';
  const correlationId = randomUUID();
  let request: IntegrationEvent;
  let chunks: IntegrationEvent[];

  beforeAll(async () => {
    chunks = chunkEvents(documentId, SIGN_OF_THE_FOUR, correlationId);
    request = stepStarted('run-1', documentId, correlationId);
    // The EXTRACT step starts before every chunk arrived: the request waits for the last one.
    await transport.publish([request, ...chunks.slice(0, 10)]);
    await service.extractor.idle();
    expect(knowledgeEvents('DocumentEntitiesExtracted')).toHaveLength(0);
    await transport.publish(chunks.slice(10));
  }, 120_000);

  it('ends with DocumentEntitiesExtracted carrying runId, stepName and the cause', async () => {
    const done = await eventually(async () => knowledgeEvents('DocumentEntitiesExtracted')[0], 60_000);
    expect(done.data).toMatchObject({ documentId, runId: 'run-1', stepName: 'extract' });
    expect((done.data as { entityCount: number }).entityCount).toBeGreaterThan(20);
    expect((done.data as { relationCount: number }).relationCount).toBeGreaterThan(20);
    expect(done.data).not.toHaveProperty('chunkCount'); // private field stripped by toPublic
    expect(done.metadata).toMatchObject({ correlationId, causationId: request.eventId, actor: 'system:knowledge' });
    await eventually(async () => (knowledgeEvents('RelationObserved').length > 0 ? true : undefined));
    const mentions = await reader.readStream(extractionStreamId(documentId));
    expect(mentions.filter((e) => e.type === 'EntityMentioned').length).toBeGreaterThan(100);
  });

  it('finds Holmes as a PERSON, related to Watson', async () => {
    const { searchEntities } = await gql(`{ searchEntities(name: "holmes", first: 5) { id name kind mentionCount } }`);
    const holmes = searchEntities.find((e: any) => e.name === 'Sherlock Holmes');
    expect(holmes).toMatchObject({ kind: 'PERSON' });
    // LIKE wildcards match themselves, not every entity.
    for (const wildcard of ['%', '_', 'Hol%es']) {
      expect((await gql(`query($n: String!) { searchEntities(name: $n) { id } }`, { n: wildcard })).searchEntities).toEqual([]);
    }
    expect(holmes.mentionCount).toBeGreaterThan(50);
    const { neighbors } = await gql(`query($id: ID!) { neighbors(entityId: $id, depth: 1, first: 200) { depth weight entity { name kind } } }`, { id: holmes.id });
    const watson = neighbors.find((n: any) => /Watson/.test(n.entity.name));
    expect(watson).toMatchObject({ depth: 1, entity: { kind: 'PERSON' } });
    expect(watson.weight).toBeGreaterThanOrEqual(5);
    const deeper = await gql(`query($id: ID!) { neighbors(entityId: $id, depth: 2, first: 200) { depth } }`, { id: holmes.id });
    expect(deeper.neighbors.length).toBeGreaterThanOrEqual(neighbors.length);
  });

  it('extends Document with its entities (most mentioned first) and relations', async () => {
    const data = await gql(`query($r: [_Any!]!) { _entities(representations: $r) { ... on Document { id entities(first: 3) { name kind } relations(first: 3) { weight from { name } to { name } } } } }`, {
      r: [{ __typename: 'Document', id: documentId }],
    });
    const document = data._entities[0];
    expect(document.entities[0]).toEqual({ name: 'Sherlock Holmes', kind: 'PERSON' });
    expect(document.relations).toHaveLength(3);
    expect(document.relations[0].weight).toBeGreaterThanOrEqual(document.relations[2].weight);
  });

  it('a redelivered StepStarted or chunk has no second effect', async () => {
    const before = (await reader.readStream(extractionStreamId(documentId))).length;
    const completions = knowledgeEvents('DocumentEntitiesExtracted').length;
    await transport.publish([request, chunks[0]!, chunks[chunks.length - 1]!]);
    await service.extractor.idle();
    expect((await reader.readStream(extractionStreamId(documentId))).length).toBe(before);
    expect(knowledgeEvents('DocumentEntitiesExtracted')).toHaveLength(completions);
  });

  it('another run extracting the same document completes without new mentions', async () => {
    const before = (await reader.readStream(extractionStreamId(documentId))).filter((e) => e.type === 'EntityMentioned').length;
    await transport.publish([stepStarted('run-2', documentId, randomUUID())]);
    const done = await eventually(async () => knowledgeEvents('DocumentEntitiesExtracted').find((e) => (e.data as { runId?: string }).runId === 'run-2'));
    expect(done.data).toMatchObject({ entityCount: (knowledgeEvents('DocumentEntitiesExtracted')[0]!.data as { entityCount: number }).entityCount });
    expect((await reader.readStream(extractionStreamId(documentId))).filter((e) => e.type === 'EntityMentioned').length).toBe(before);
  });
});

describe('requests that do not complete', () => {
  it('a cancelled run drops its pending extraction', async () => {
    const correlationId = randomUUID();
    await transport.publish([stepStarted('run-cancelled', 'doc-late', correlationId)]);
    await transport.publish([integrationEvent('workflows', 'RunCancelled', 'run-run-cancelled', { runId: 'run-cancelled', reason: 'operator' }, correlationId)]);
    const { rows } = await db.pool.query(`SELECT status, reason FROM extraction_requests WHERE run_id = 'run-cancelled'`);
    expect(rows).toEqual([{ status: 'CANCELLED', reason: 'operator' }]);
    await transport.publish(chunkEvents('doc-late', 'Ada Lovelace met Charles Babbage in London.', correlationId));
    await service.extractor.idle();
    expect(knowledgeEvents('DocumentEntitiesExtracted').filter((e) => (e.data as { runId?: string }).runId === 'run-cancelled')).toHaveLength(0);
  });

  it('an EXTRACT step without documentId fails with ExtractionFailed', async () => {
    await transport.publish([stepStarted('run-nodoc', undefined, randomUUID())]);
    const failed = await eventually(async () => knowledgeEvents('ExtractionFailed').find((e) => (e.data as { runId?: string }).runId === 'run-nodoc'));
    expect(failed.data).toMatchObject({ stepName: 'extract', reason: expect.stringContaining('documentId') });
  });
});

describe('typed errors', () => {
  it('rejects depth outside 1..3 with BAD_USER_INPUT', async () => {
    const { searchEntities } = await gql(`{ searchEntities(name: "Holmes", first: 1) { id } }`);
    for (const depth of [4, 0]) {
      const result = await postGraphQL(service.url, `query($id: ID!, $d: Int) { neighbors(entityId: $id, depth: $d) { depth } }`, { id: searchEntities[0].id, d: depth });
      expect(result.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
      expect(JSON.stringify(result)).not.toMatch(/stack|SELECT/i);
    }
  });

  it('NOT_FOUND for an unknown entity, BAD_USER_INPUT for an empty search, null for a missing entity', async () => {
    const unknown = await postGraphQL(service.url, `{ neighbors(entityId: "nope") { depth } }`);
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const empty = await postGraphQL(service.url, `{ searchEntities(name: "  ") { id } }`);
    expect(empty.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await gql(`{ entity(id: "nope") { id } }`)).entity).toBeNull();
  });
});
