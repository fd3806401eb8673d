/**
 * content's side of the saga, through a started content service and the in-process transport:
 * workflows' StepStarted (INGEST) integration events, built by hand as workflows' relay would
 * publish them, lead to DocumentProcessed / DocumentFailed carrying runId and stepName; a
 * redelivered StepStarted has no second effect.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestDatabase } from '../../../db/testing.ts';
import { requireCorpus } from '../../../config/corpus.ts';
import type { IntegrationEvent, IntegrationTransport } from '../../../eventstore/index.ts';
import type { ContentService } from '../service.ts';
import { ingestDocumentId } from './ingestStepConsumer.ts';
import { startContentFixture, type ContentFixture } from '../testing/contentFixture.ts';
import { eventually, mustGraphQL } from '../../../federation/testing/graphqlClient.ts';

/** FLOWGRAPH_CORPUS_DIR or ../shared/corpus; a missing corpus fails this file with one message. */
const CORPUS_DIR = requireCorpus();
let fx: ContentFixture;
let db: TestDatabase;
let transport: IntegrationTransport;
let service: ContentService;
/** content's DocumentProcessed / DocumentFailed integration events, as workflows would consume them. */
const outcomes: IntegrationEvent[] = [];
const count = async (sql: string, params: unknown[] = []) => Number((await db.pool.query(sql, params)).rows[0].n);

/** A workflows StepStarted v1 integration event, as workflows' relay publishes it. */
function stepStarted(runInput: unknown, patch: { kind?: string; stepName?: string; data?: unknown } = {}): IntegrationEvent {
  const runId = randomUUID();
  const eventId = randomUUID();
  return {
    eventId,
    source: 'workflows',
    type: 'StepStarted',
    schemaVersion: 1,
    streamId: `run-${runId}`,
    streamPosition: 1,
    data: patch.data ?? { runId, workflowId: 'pipeline', stepName: patch.stepName ?? 'ingest', kind: patch.kind ?? 'INGEST', attempt: 1, runInput },
    metadata: { correlationId: `corr-${runId}`, causationId: randomUUID(), actor: 'system:workflows' },
    occurredAt: new Date().toISOString(),
    position: { transactionId: '100', globalPosition: '2' },
  };
}
const runIdOf = (event: IntegrationEvent) => (event.data as { runId: string }).runId;
const outcomeOf = (runId: string) => eventually(() => outcomes.find((e) => (e.data as { runId?: string }).runId === runId));

beforeAll(async () => {
  fx = await startContentFixture('content_saga', [{
    consumer: 'workflows-from-content',
    source: 'content',
    types: ['DocumentProcessed', 'DocumentFailed'],
    handler: async (e) => void outcomes.push(e),
  }]);
  ({ db, transport, service } = fx);
});

afterAll(() => fx?.close());

describe('INGEST steps', () => {
  it('ingests runInput.corpusFile and emits DocumentProcessed with runId and stepName, caused by the StepStarted', async () => {
    const started = stepStarted({ corpusFile: 'jekyll-and-hyde.txt' }, { stepName: 'load' });
    await transport.publish([started]);
    const processed = await outcomeOf(runIdOf(started));
    expect(processed).toMatchObject({
      source: 'content',
      type: 'DocumentProcessed',
      schemaVersion: 1,
      data: { runId: runIdOf(started), stepName: 'load', chunkCount: 96 },
      metadata: { correlationId: started.metadata.correlationId, causationId: started.eventId, actor: 'system:content' },
    });
    const documentId = (processed.data as { documentId: string }).documentId;
    const { document } = await mustGraphQL(service.url, `query($id: ID!) { document(id: $id) { title status chunkCount runId stepName corpusFile } }`, { id: documentId });
    expect(document).toEqual({ title: 'jekyll-and-hyde.txt', status: 'PROCESSED', chunkCount: 96, runId: runIdOf(started), stepName: 'load', corpusFile: 'jekyll-and-hyde.txt' });
    // Every event of the ingestion carries the saga's metadata.
    const { rows } = await db.pool.query(`SELECT DISTINCT metadata FROM eventstore.events WHERE stream_id = $1`, [`document-${documentId}`]);
    expect(rows.map((r) => r.metadata)).toEqual([{ correlationId: started.metadata.correlationId, causationId: started.eventId, actor: 'system:content' }]);
  });

  it('has no second effect when the same StepStarted is delivered again', async () => {
    const started = stepStarted({ text: 'Holmes and Watson.\r\n\r\nThe end.', title: 'Tiny' });
    const runId = runIdOf(started);
    await transport.publish([started]);
    await outcomeOf(runId);
    const eventsBefore = await count('SELECT count(*)::int AS n FROM eventstore.events');
    await transport.publish([started]);
    await transport.publish([structuredClone(started)]);
    // A later step's outcome proves the relay has moved past anything the redeliveries could have caused.
    const marker = stepStarted({ text: 'marker' });
    await transport.publish([marker]);
    await outcomeOf(runIdOf(marker));
    expect(await count('SELECT count(*)::int AS n FROM documents WHERE run_id = $1', [runId])).toBe(1);
    expect(await count('SELECT count(*)::int AS n FROM eventstore.inbox WHERE event_id = $1', [started.eventId])).toBe(1);
    expect(await count('SELECT count(*)::int AS n FROM eventstore.events')).toBe(eventsBefore + 3);
    expect(outcomes.filter((e) => (e.data as { runId?: string }).runId === runId)).toHaveLength(1);
    const { rows } = await db.pool.query(`SELECT title, status FROM documents WHERE run_id = $1`, [runId]);
    expect(rows).toEqual([{ title: 'Tiny', status: 'PROCESSED' }]);
  });

  it('answers a retried step (attempt 2, after an attempt that still ingested) with the first attempt\'s document, storing no copy', async () => {
    const first = stepStarted({ text: 'Attempt one.\n\nSecond paragraph.' });
    const runId = runIdOf(first);
    const retry = { ...structuredClone(first), eventId: randomUUID(), data: { ...(first.data as object), attempt: 2 } };
    await transport.publish([first]);
    await outcomeOf(runId);
    const chunksBefore = await count(`SELECT count(*)::int AS n FROM eventstore.events WHERE type = 'DocumentChunked'`);
    await transport.publish([retry]);
    await eventually(() => (outcomes.filter((e) => (e.data as { runId?: string }).runId === runId).length === 2 ? true : undefined));
    const [answer1, answer2] = outcomes.filter((e) => (e.data as { runId?: string }).runId === runId);
    expect(answer1).toMatchObject({ type: 'DocumentProcessed', metadata: { causationId: first.eventId } });
    // The retry's answer names the same document and is caused by the retry's StepStarted (so workflows applies it to attempt 2).
    expect(answer2).toMatchObject({ type: 'DocumentProcessed', data: { documentId: (answer1!.data as { documentId: string }).documentId, chunkCount: 1, runId, stepName: 'ingest' }, metadata: { causationId: retry.eventId, actor: 'system:content' } });
    expect(await count('SELECT count(*)::int AS n FROM documents WHERE run_id = $1', [runId])).toBe(1);
    expect(await count(`SELECT count(*)::int AS n FROM eventstore.events WHERE type = 'DocumentChunked'`)).toBe(chunksBefore);
    expect((answer1!.data as { documentId: string }).documentId).toBe(ingestDocumentId({ runId, stepName: 'ingest' }));
  });

  it('stores one document when two attempts of a step arrive together', async () => {
    const first = stepStarted({ text: 'Raced.' });
    const runId = runIdOf(first);
    const retry = { ...structuredClone(first), eventId: randomUUID(), data: { ...(first.data as object), attempt: 2 } };
    await Promise.all([transport.publish([first]), transport.publish([retry])]);
    await eventually(() => (outcomes.filter((e) => (e.data as { runId?: string }).runId === runId).length === 2 ? true : undefined));
    const answers = outcomes.filter((e) => (e.data as { runId?: string }).runId === runId);
    expect(new Set(answers.map((e) => (e.data as { documentId: string }).documentId)).size).toBe(1);
    expect(new Set(answers.map((e) => e.metadata.causationId))).toEqual(new Set([first.eventId, retry.eventId]));
    expect(await count('SELECT count(*)::int AS n FROM documents WHERE run_id = $1', [runId])).toBe(1);
  });

  it('ingests anew when the earlier attempt of the step was rejected', async () => {
    const first = stepStarted({ corpusFile: 'no-such-book.txt' });
    const runId = runIdOf(first);
    await transport.publish([first]);
    expect(await outcomeOf(runId)).toMatchObject({ type: 'DocumentFailed' });
    const retry = { ...structuredClone(first), eventId: randomUUID(), data: { ...(first.data as object), attempt: 2, runInput: { text: 'Now there is a text.' } } };
    await transport.publish([retry]);
    await eventually(() => outcomes.find((e) => (e.data as { runId?: string }).runId === runId && e.type === 'DocumentProcessed'));
    const { rows } = await db.pool.query(`SELECT status FROM documents WHERE run_id = $1 ORDER BY seq`, [runId]);
    expect(rows).toEqual([{ status: 'FAILED' }, { status: 'PROCESSED' }]);
  });

  it('derives the document id from run and step only: one per step, the same for every attempt', () => {
    const id = ingestDocumentId({ runId: 'run-1', stepName: 'ingest' });
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(ingestDocumentId({ runId: 'run-1', stepName: 'ingest' })).toBe(id);
    expect(ingestDocumentId({ runId: 'run-1', stepName: 'ingest2' })).not.toBe(id);
    expect(ingestDocumentId({ runId: 'run-2', stepName: 'ingest' })).not.toBe(id);
    // The separator keeps ("a", "b-c") and ("a-b", "c") apart.
    expect(ingestDocumentId({ runId: 'a', stepName: 'b-c' })).not.toBe(ingestDocumentId({ runId: 'a-b', stepName: 'c' }));
  });

  it.each([
    ['a path traversal', { corpusFile: '../../etc/passwd' }, 'INVALID_CORPUS_FILE'],
    ['a missing corpus file', { corpusFile: 'no-such-book.txt' }, 'CORPUS_FILE_NOT_FOUND'],
    ['an empty text', { text: ' \r\n ' }, 'EMPTY_DOCUMENT'],
    ['a binary text', { text: 'GIF89a\u0000\u0000' }, 'BINARY_CONTENT'],
    ['no source', { title: 'Nothing' }, 'SOURCE_REQUIRED'],
    ['a run input that is not an object', 'dracula.txt', 'SOURCE_REQUIRED'],
  ])('fails the step on %s: DocumentFailed %s with runId and stepName, a FAILED document, no chunk', async (_label, runInput, code) => {
    const started = stepStarted(runInput);
    await transport.publish([started]);
    const failed = await outcomeOf(runIdOf(started));
    expect(failed).toMatchObject({
      type: 'DocumentFailed',
      data: { runId: runIdOf(started), stepName: 'ingest', code },
      metadata: { causationId: started.eventId, actor: 'system:content' },
    });
    expect(typeof (failed.data as { reason: string }).reason).toBe('string');
    const documentId = (failed.data as { documentId: string }).documentId;
    const { document } = await mustGraphQL(service.url, `query($id: ID!) { document(id: $id) { status chunkCount failure { code reason } } }`, { id: documentId });
    expect(document).toMatchObject({ status: 'FAILED', chunkCount: 0, failure: { code } });
    expect(await count('SELECT count(*)::int AS n FROM chunks WHERE document_id = $1', [documentId])).toBe(0);
  });

  it('ignores StepStarted of other kinds and payloads that break StepStarted v1 (acknowledged, no effect)', async () => {
    const eventsBefore = await count('SELECT count(*)::int AS n FROM eventstore.events');
    const extract = stepStarted({ corpusFile: 'dracula.txt' }, { kind: 'EXTRACT' });
    const external = stepStarted({ corpusFile: 'dracula.txt' }, { kind: 'EXTERNAL' });
    const broken = stepStarted(null, { data: { runId: 42 } });
    await transport.publish([extract, external, broken]);
    expect(await count('SELECT count(*)::int AS n FROM eventstore.events')).toBe(eventsBefore);
    expect(await count('SELECT count(*)::int AS n FROM documents WHERE run_id = ANY($1)', [[runIdOf(extract), runIdOf(external)]])).toBe(0);
  });
});
