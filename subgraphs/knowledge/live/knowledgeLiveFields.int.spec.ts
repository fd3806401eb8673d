/**
 * `entityDiscovered` on real extractions (the knowledge service with the in-process transport,
 * content chunks and workflows' EXTRACT StepStarted published by hand), projectors called
 * directly (no websocket): one update per entity at its first mention in the document, its
 * mentionCount as of that event (over every document), the same from any point of the stream,
 * nothing new for a second extraction; entity_mentions keeps log positions (NULL ones count as
 * before everything), a rebuild refills them, an index serves the sum; bad ids are refused.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../../../broker/in-process.ts';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import { compareLogPositions, createEventStore, rebuildProjection, type EventStore, type IntegrationEvent, type IntegrationTransport, type RecordedEvent } from '../../../eventstore/index.ts';
import type { LiveField } from '../../../federation/live/liveField.ts';
import { eventually, testLogger } from '../../../federation/testing/graphqlClient.ts';
import { PrismaClient } from '../../../prisma/knowledge/generated/client.ts';
import { extractionStreamId, type EntityMentionedData } from '../events.ts';
import { createResolvers } from '../graphql/resolvers.ts';
import { graphProjection } from '../projections/graphProjection.ts';
import { createReadModel, type ReadModel } from '../readModel.ts';
import { startKnowledgeService, type KnowledgeService } from '../service.ts';
import { chunkText, readCorpusFile } from '../testing/chunkText.ts';
import { createKnowledgeLiveFields, type EntityDiscoveryValue } from './knowledgeLiveFields.ts';
import { countStoredEvents } from '../../../eventstore/testing/fixture.ts';

// graphql-js as @apollo/subgraph builds the schema with (CommonJS), as federation/live/liveServer.ts executes it.
const { execute, parse } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

let db: TestDatabase;
let transport: IntegrationTransport;
let service: KnowledgeService;
let store: EventStore;
let prisma: PrismaClient;
let readModel: ReadModel;
let field: LiveField<any>;
let sequence = 0;
const done: IntegrationEvent[] = [];

/** Two documents sharing characters: the first 12 chunks of two Holmes novels. */
const DOC_A = 'doc-sign';
const DOC_B = 'doc-scarlet';

function integrationEvent(source: string, type: string, streamId: string, data: unknown): IntegrationEvent {
  sequence++;
  return {
    eventId: randomUUID(),
    source,
    type,
    schemaVersion: 1,
    streamId,
    streamPosition: sequence,
    data,
    metadata: { correlationId: 'corr-live', causationId: randomUUID(), actor: `system:${source}` },
    occurredAt: new Date().toISOString(),
    position: { transactionId: String(sequence), globalPosition: String(sequence) },
  };
}

/** Publishes a document's chunks and an EXTRACT StepStarted for it, then waits for its DocumentEntitiesExtracted. */
async function extract(documentId: string, file: string | null, runId: string): Promise<void> {
  const events: IntegrationEvent[] = [];
  if (file !== null) {
    const chunks = chunkText(readCorpusFile(file)).slice(0, 12);
    events.push(
      ...chunks.map((c) =>
        integrationEvent('content', 'DocumentChunked', `document-${documentId}`, { documentId, chunkIndex: c.chunkIndex, chunkCount: chunks.length, text: c.text, startOffset: c.startOffset, endOffset: c.endOffset }),
      ),
    );
  }
  events.push(integrationEvent('workflows', 'StepStarted', `run-${runId}`, { runId, workflowId: 'wf', stepName: 'extract', kind: 'EXTRACT', attempt: 1, runInput: {}, documentId }));
  await transport.publish(events);
  await eventually(async () => (done.some((e) => (e.data as { runId?: string }).runId === runId) ? true : undefined), 60_000);
}

const history = (documentId: string) => store.readStream(extractionStreamId(documentId));

async function project(documentId: string, events: readonly RecordedEvent[]) {
  const projector = field.createProjector(field.normalize({ documentId }));
  const updates: { event: RecordedEvent; update: EntityDiscoveryValue }[] = [];
  for (const event of events) {
    if (!field.types.includes(event.type)) continue; // what the feed passes
    const update = (await projector.project(event)) as EntityDiscoveryValue | null;
    if (update !== null) updates.push({ event, update });
  }
  return updates;
}

/** mentionCount of `entityId` as of `event`, computed from the log: the sum of every EntityMentioned up to it. */
async function countFromLog(entityId: string, event: RecordedEvent): Promise<number> {
  const all = (await store.readAll({ count: 100_000, types: ['EntityMentioned'] })).events;
  return all
    .filter((e) => compareLogPositions({ transactionId: e.transactionId, globalPosition: e.globalPosition }, { transactionId: event.transactionId, globalPosition: event.globalPosition }) <= 0)
    .filter((e) => (e.data as EntityMentionedData).entityId === entityId)
    .reduce((n, e) => n + (e.data as EntityMentionedData).count, 0);
}

beforeAll(async () => {
  db = await createTestDatabase('knowledge_live');
  await migrateServiceDatabase(db.pool, { service: 'knowledge' });
  transport = createInProcessTransport();
  await transport.consume({ consumer: 'test-from-knowledge', source: 'knowledge', types: ['DocumentEntitiesExtracted'], handler: async (e) => void done.push(e) });
  service = await startKnowledgeService({ pool: db.pool, port: 0, logger: testLogger, transport, relaySubscription: { pollIntervalMs: 50 } });
  store = createEventStore({ pool: db.pool });
  prisma = new PrismaClient({ adapter: new PrismaPg(db.pool) });
  readModel = createReadModel(prisma);
  field = createKnowledgeLiveFields({ store, readModel })[0]!;
  await extract(DOC_A, 'sign-of-the-four.txt', 'run-a');
  await extract(DOC_B, 'study-in-scarlet.txt', 'run-b');
}, 180_000);
afterAll(async () => {
  await service?.close();
  await prisma?.$disconnect();
  await store?.close();
  await transport?.close();
  await db?.drop();
});

describe('entityDiscovered', () => {
  it('sends each entity once, at its first mention in the document, with mentionCount as of that event', async () => {
    const events = await history(DOC_B);
    const mentions = events.filter((e) => e.type === 'EntityMentioned').map((e) => e.data as EntityMentionedData);
    const distinct = [...new Set(mentions.map((m) => m.entityId))];
    expect(mentions.length).toBeGreaterThan(distinct.length); // entities mentioned in several chunks
    const updates = await project(DOC_B, events);
    expect(updates.map((u) => u.update.entity.id)).toEqual(distinct);
    for (const { event, update } of updates) {
      const d = event.data as EntityMentionedData;
      expect(update).toMatchObject({ documentId: DOC_B, chunkIndex: d.chunkIndex, entity: { id: d.entityId } });
      expect(update.entity.mentionCount).toBe(await countFromLog(d.entityId, event));
    }
    // An entity of both documents counts the first document's mentions too, and less than its total now.
    const holmes = updates.find((u) => u.update.entity.name === 'Sherlock Holmes')!.update.entity;
    const inA = (await history(DOC_A)).filter((e) => e.type === 'EntityMentioned' && (e.data as EntityMentionedData).entityId === holmes.id);
    expect(inA.length).toBeGreaterThan(0);
    expect(holmes.mentionCount).toBeGreaterThan(inA.reduce((n, e) => n + (e.data as EntityMentionedData).count, 0));
    expect(holmes.mentionCount).toBeLessThan((await readModel.entity(holmes.id))!.mentionCount);
    expect(holmes.kind).toBe('PERSON');
  });

  it('the first document’s updates count only what was mentioned up to each event', async () => {
    const updates = await project(DOC_A, await history(DOC_A));
    expect(updates.length).toBeGreaterThan(5);
    for (const { event, update } of updates) expect(update.entity.mentionCount).toBe(await countFromLog(update.entity.id, event));
    // The first entity of the whole log is seen at its very first mention.
    expect(updates[0]!.update.entity.mentionCount).toBe((updates[0]!.event.data as EntityMentionedData).count);
  });

  it('started mid-stream (a replay from a cursor) gives the same updates as the tail of the full projection', async () => {
    const events = await history(DOC_B);
    const full = await project(DOC_B, events);
    for (const from of [1, 10, Math.floor(events.length / 2), events.length - 2]) {
      const tail = events.slice(from);
      const expected = full.filter((u) => u.event.streamPosition >= events[from]!.streamPosition).map((u) => u.update);
      expect((await project(DOC_B, tail)).map((u) => u.update)).toEqual(expected);
    }
  });

  it('a second extraction of the same document sends nothing new', async () => {
    const before = await project(DOC_A, await history(DOC_A));
    await extract(DOC_A, null, 'run-a-again');
    const events = await history(DOC_A);
    expect(events.at(-1)!.type).toBe('DocumentEntitiesExtracted');
    expect((await project(DOC_A, events)).map((u) => u.update)).toEqual(before.map((u) => u.update));
    // From the second extraction's events on: nothing.
    const second = events.findIndex((e) => e.type === 'DocumentEntitiesExtracted');
    expect(await project(DOC_A, events.slice(second))).toEqual([]);
  });

  it('refuses bad ids with BAD_USER_INPUT (reason INVALID_ID) and stores nothing', async () => {
    const before = await countStoredEvents(db.pool);
    for (const documentId of ['', 'd'.repeat(201), 'a\u0000b', 3, null]) {
      expect(() => field.normalize({ documentId })).toThrowError(expect.objectContaining({ code: 'BAD_USER_INPUT', details: expect.objectContaining({ reason: 'INVALID_ID', field: 'documentId' }) }));
    }
    expect(await countStoredEvents(db.pool)).toBe(before);
    expect(field.normalize({ documentId: DOC_A })).toEqual({ documentId: DOC_A });
    expect(field.streamId!({ documentId: DOC_A })).toBe(`extraction-${DOC_A}`);
    expect(field.start).toBe('stream');
  });

  it('updates resolve through the subgraph schema', async () => {
    const schema = buildSubgraphSchema({ typeDefs: parse(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8')), resolvers: createResolvers(readModel) });
    const { event, update } = (await project(DOC_B, await history(DOC_B)))[0]!;
    const result = await execute({
      schema,
      document: parse(`subscription($id: ID!) { entityDiscovered(documentId: $id) { cursor eventType occurredAt documentId chunkIndex entity { id name kind mentionCount } } }`),
      variableValues: { id: DOC_B },
      rootValue: { entityDiscovered: { ...update, cursor: 'c', eventType: event.type, occurredAt: event.recordedAt } },
      contextValue: {},
    });
    expect(result.errors).toBeUndefined();
    expect(result.data).toEqual({
      entityDiscovered: { cursor: 'c', eventType: 'EntityMentioned', occurredAt: event.recordedAt.toISOString(), documentId: DOC_B, chunkIndex: update.chunkIndex, entity: update.entity },
    });
  });
});

describe('entity_mentions log positions', () => {
  const positions = () => db.pool.query('SELECT entity_id, document_id, chunk_index, log_transaction_id::text, log_position::text FROM entity_mentions ORDER BY 1, 2, 3').then((r) => r.rows);

  it('are the inserting event’s position; a rebuild refills them', async () => {
    const before = await positions();
    expect(before.length).toBeGreaterThan(10);
    expect(before.every((r) => r.log_transaction_id !== null && r.log_position !== null)).toBe(true);
    const first = (await history(DOC_A)).find((e) => e.type === 'EntityMentioned')!;
    const d = first.data as EntityMentionedData;
    expect(before).toContainEqual({ entity_id: d.entityId, document_id: DOC_A, chunk_index: d.chunkIndex, log_transaction_id: first.transactionId, log_position: first.globalPosition });
    await db.pool.query('UPDATE entity_mentions SET log_transaction_id = NULL, log_position = NULL');
    await rebuildProjection(store, graphProjection, { mode: 'inline', progress: false });
    expect(await positions()).toEqual(before);
  });

  it('rows without a position (projected before the column existed) count as before every event', async () => {
    const updates = await project(DOC_B, await history(DOC_B));
    const holmes = updates.find((u) => u.update.entity.name === 'Sherlock Holmes')!;
    const total = (await readModel.entity(holmes.update.entity.id))!.mentionCount;
    await db.pool.query('UPDATE entity_mentions SET log_transaction_id = NULL, log_position = NULL WHERE document_id = $1', [DOC_B]);
    try {
      const asOf = await readModel.entityAsOf(holmes.update.entity.id, { transactionId: '0', globalPosition: '0' });
      const inB = (await history(DOC_B)).filter((e) => e.type === 'EntityMentioned' && (e.data as EntityMentionedData).entityId === holmes.update.entity.id);
      expect(asOf!.mentionCount).toBe(inB.reduce((n, e) => n + (e.data as EntityMentionedData).count, 0));
      expect(asOf!.mentionCount).toBeLessThan(total);
    } finally {
      await rebuildProjection(store, graphProjection, { mode: 'inline', progress: false });
    }
  });

  it('an index on (entity_id, log_transaction_id, log_position) serves the as-of sum', async () => {
    const client = await db.pool.connect();
    try {
      await client.query('SET enable_seqscan = off');
      const { rows } = await client.query(
        `EXPLAIN SELECT sum(count) FROM entity_mentions WHERE entity_id = $1 AND (log_transaction_id, log_position) <= ($2::bigint, $3::bigint)`,
        ['person:x', '1000', '1000'],
      );
      expect(rows.map((r) => r['QUERY PLAN']).join('\n')).toMatch(/entity_mentions_entity_id_log_transaction_id_log_position_idx/);
    } finally {
      client.release();
    }
  });
});
