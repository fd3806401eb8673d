/**
 * `documentProgress` on real appended events, projectors called directly (no websocket): the
 * fold of a document's stream equals the documents projection's row (parity); every event gives
 * the document as of that event (PROCESSING with chunksStored counting up, then PROCESSED; FAILED
 * for a rejected step ingestion), the same from any point of the stream; bad ids are refused with
 * BAD_USER_INPUT; the updates resolve through the subgraph's schema, Document.chunks as of the
 * update.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../../eventstore/index.ts';
import type { LiveField } from '../../../federation/live/liveField.ts';
import { appendDocumentEvents } from '../commandHandlers.ts';
import { decideDocument } from '../document/decide.ts';
import { foldDocumentSnapshot } from '../document/documentSnapshot.ts';
import { documentStreamId } from '../document/events.ts';
import { initialDocumentState } from '../document/evolve.ts';
import { createResolvers } from '../graphql/resolvers.ts';
import { openContentStoreFixture, type ContentStoreFixture } from '../testing/storeFixture.ts';
import { createContentLiveFields, type DocumentProgressValue } from './contentLiveFields.ts';
import { countStoredEvents } from '../../../eventstore/testing/fixture.ts';

// graphql-js as @apollo/subgraph builds the schema with (CommonJS), as federation/live/liveServer.ts executes it.
const { execute, parse } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

let fx: ContentStoreFixture;
let field: LiveField<any>;
let bookId: string;
let textId: string;
let failedId: string;

const history = (documentId: string) => fx.store.readStream(documentStreamId(documentId));

async function project(documentId: string, events: readonly RecordedEvent[]) {
  const projector = field.createProjector(field.normalize({ documentId }));
  const updates: { event: RecordedEvent; update: DocumentProgressValue }[] = [];
  for (const event of events) {
    const update = (await projector.project(event)) as DocumentProgressValue | null;
    if (update !== null) updates.push({ event, update });
  }
  return updates;
}

/** Four paragraphs of ~1500 characters: the chunking rule cuts them into several chunks. */
const TEXT = Array.from({ length: 4 }, (_, i) => `Paragraph ${i}. ` + 'All work and no play makes Jack a dull boy. '.repeat(35)).join('\n\n');

beforeAll(async () => {
  fx = await openContentStoreFixture('content_live');
  field = createContentLiveFields({ store: fx.store })[0]!;
  bookId = await fx.commands.ingestDocument({ title: 'The Sign of the Four', corpusFile: 'sign-of-the-four.txt' }, { actor: 'tester' });
  textId = await fx.commands.ingestDocument({ title: 'Jack', text: TEXT }, { actor: 'tester' });
  failedId = randomUUID();
  const failure = decideDocument(
    { type: 'RecordIngestionFailure', documentId: failedId, title: 'missing.txt', source: 'CORPUS_FILE', corpusFile: 'missing.txt', sizeBytes: 0, step: { runId: 'run-1', stepName: 'ingest' }, code: 'CORPUS_FILE_NOT_FOUND', reason: 'no such file', now: new Date() },
    initialDocumentState(),
  );
  await fx.store.transaction((tx) => appendDocumentEvents(tx, failedId, failure, { actor: 'tester' }));
});
afterAll(async () => {
  await fx?.close();
});

describe('foldDocumentSnapshot equals the documents projection', () => {
  it('for a book, an inline text and a failed step ingestion', async () => {
    for (const id of [bookId, textId, failedId]) {
      const { asOfChunks, ...row } = foldDocumentSnapshot(await history(id))!;
      expect(row).toEqual(await fx.readModel.document(id));
      expect(asOfChunks).toBe(row.chunkCount);
    }
  });
});

describe('documentProgress', () => {
  it('sends every event, the document as of each: PROCESSING with chunksStored counting up, then PROCESSED', async () => {
    const events = await history(textId);
    const updates = await project(textId, events);
    const chunkCount = (await fx.readModel.document(textId))!.chunkCount;
    expect(chunkCount).toBeGreaterThan(1);
    expect(updates.map((u) => [u.event.type, u.update.document.status, u.update.chunksStored, u.update.chunk?.chunkIndex ?? null])).toEqual([
      ['DocumentIngested', 'PROCESSING', 0, null],
      ...Array.from({ length: chunkCount }, (_, i) => ['DocumentChunked', 'PROCESSING', i + 1, i]),
      ['DocumentProcessed', 'PROCESSED', chunkCount, null],
    ]);
    updates.forEach(({ event, update }, i) => {
      expect(update.document).toEqual(foldDocumentSnapshot(events.slice(0, i + 1)));
      expect(update.document.version).toBe(event.streamPosition);
    });
    const chunks = updates.filter((u) => u.update.chunk !== null).map((u) => u.update.chunk!);
    expect(chunks.map((c) => c.text).join('')).toBe(TEXT);
    expect(chunks[0]!.asOfDocument.status).toBe('PROCESSING');
  });

  it('a rejected step ingestion is one FAILED update', async () => {
    const updates = await project(failedId, await history(failedId));
    expect(updates.map((u) => [u.event.type, u.update.document.status, u.update.document.failureCode, u.update.chunksStored, u.update.chunk])).toEqual([
      ['DocumentFailed', 'FAILED', 'CORPUS_FILE_NOT_FOUND', 0, null],
    ]);
  });

  it('started mid-stream (a replay from a cursor) gives the same updates as the tail of the full projection', async () => {
    const events = await history(bookId);
    expect(events.length).toBeGreaterThan(100);
    const full = await project(bookId, events);
    for (const from of [1, 2, 57, events.length - 1]) {
      expect((await project(bookId, events.slice(from))).map((u) => u.update)).toEqual(full.slice(from).map((u) => u.update));
    }
    expect(full.at(-1)!.update.document.status).toBe('PROCESSED');
  });

  it('ignores other documents’ events', async () => {
    const updates = await project(textId, [...(await history(failedId)), ...(await history(textId)).slice(0, 2)]);
    expect(updates.map((u) => u.event.type)).toEqual(['DocumentIngested', 'DocumentChunked']);
  });

  it('refuses bad ids with BAD_USER_INPUT (reason INVALID_ID) and stores nothing', async () => {
    const before = await countStoredEvents(fx.db.pool);
    for (const documentId of ['', 'd'.repeat(201), 'a\u0000b', 7, undefined]) {
      expect(() => field.normalize({ documentId })).toThrowError(expect.objectContaining({ code: 'BAD_USER_INPUT', details: expect.objectContaining({ reason: 'INVALID_ID', field: 'documentId' }) }));
    }
    expect(await countStoredEvents(fx.db.pool)).toBe(before);
    expect(field.normalize({ documentId: textId })).toEqual({ documentId: textId });
    expect(field.streamId!({ documentId: textId })).toBe(`document-${textId}`);
    expect(field.start).toBe('stream');
  });

  it('updates resolve through the subgraph schema; Document.chunks and Chunk.document are as of the update', async () => {
    const schema = buildSubgraphSchema({
      typeDefs: parse(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8')),
      resolvers: createResolvers({ commands: fx.commands, readModel: fx.readModel }),
    });
    const updates = await project(textId, await history(textId));
    const { event, update } = updates[2]!; // the second DocumentChunked
    const result = await execute({
      schema,
      document: parse(`subscription($id: ID!) { documentProgress(documentId: $id) {
        cursor eventType occurredAt chunksStored
        document { id status source chunkCount updatedAt chunks(first: 100) { totalCount edges { node { index } } } }
        chunk { id index document { status } }
      } }`),
      variableValues: { id: textId },
      rootValue: { documentProgress: { ...update, cursor: 'c2', eventType: event.type, occurredAt: event.recordedAt } },
      contextValue: {},
    });
    expect(result.errors).toBeUndefined();
    const row = (await fx.readModel.document(textId))!;
    expect(result.data).toEqual({
      documentProgress: {
        cursor: 'c2',
        eventType: 'DocumentChunked',
        occurredAt: event.recordedAt.toISOString(),
        chunksStored: 2,
        document: {
          id: textId,
          status: 'PROCESSING',
          source: 'TEXT',
          chunkCount: row.chunkCount,
          updatedAt: row.createdAt.toISOString(),
          chunks: { totalCount: 2, edges: [{ node: { index: 0 } }, { node: { index: 1 } }] },
        },
        chunk: { id: `${textId}:1`, index: 1, document: { status: 'PROCESSING' } },
      },
    });
  });
});
