/**
 * The extractor under faults (issue 10, "Nothing lost, nothing hung"), through a started
 * knowledge service and the in-process transport:
 * - a restart of its PostgreSQL while extractions are queued: every queued extraction completes
 *   once the database is back, none becomes ExtractionFailed (private embedded PostgreSQL: a test
 *   never restarts the shared server);
 * - an EXTRACT request for a document whose chunks never arrive fails after `chunkWaitMs`, with a
 *   reason naming the missing chunks, while a request that gets its chunks in time completes.
 */
import { randomUUID } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../../../broker/in-process.ts';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '../../../db/embedded.ts';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import type { IntegrationEvent, IntegrationTransport } from '../../../eventstore/index.ts';
import { delay, eventually } from '../../../eventstore/testing/fixture.ts';
import { testLogger } from '../../../federation/testing/graphqlClient.ts';
import { startKnowledgeService, type KnowledgeService } from '../service.ts';
import { chunkText, readCorpusFile } from '../testing/chunkText.ts';

/** Read at load: a missing corpus fails this file with one message (config/corpus.ts requireCorpus). */
const BOOK = readCorpusFile('sign-of-the-four.txt');
let position = 0;

/** An integration event as a relay of `source` would publish it. */
function integrationEvent(source: string, type: string, streamId: string, data: unknown): IntegrationEvent {
  position++;
  return {
    eventId: randomUUID(),
    source,
    type,
    schemaVersion: 1,
    streamId,
    streamPosition: position,
    data,
    metadata: { correlationId: randomUUID(), causationId: randomUUID(), actor: `system:${source}` },
    occurredAt: new Date().toISOString(),
    position: { transactionId: String(position), globalPosition: String(position) },
  };
}

/** content's DocumentChunked events of `text` (chunks of ~2000 characters). */
function chunkEvents(documentId: string, text: string): IntegrationEvent[] {
  const chunks = chunkText(text);
  return chunks.map((c) =>
    integrationEvent('content', 'DocumentChunked', `document-${documentId}`, {
      documentId, chunkIndex: c.chunkIndex, chunkCount: chunks.length, text: c.text, startOffset: c.startOffset, endOffset: c.endOffset,
    }),
  );
}

/** workflows' StepStarted of an EXTRACT step of run `runId` on `documentId`. */
function extractStarted(runId: string, documentId: string): IntegrationEvent {
  return integrationEvent('workflows', 'StepStarted', `run-${runId}`, { runId, workflowId: 'wf', stepName: 'extract', kind: 'EXTRACT', attempt: 1, runInput: {}, documentId });
}

const countRequests = async (pool: pg.Pool, status: string): Promise<number> =>
  (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM extraction_requests WHERE status = $1`, [status])).rows[0]!.n;

describe('after the knowledge database restarts with extractions queued', () => {
  let dir: string;
  let port: number;
  let server: RunningEmbeddedPostgres | undefined;
  let pool: pg.Pool;
  let transport: IntegrationTransport;
  let service: KnowledgeService | undefined;
  /** What the extractor logged at warn or error level about a document. */
  const extractorReports: { msg: string; documentId?: string }[] = [];
  const logger = {
    ...testLogger,
    warn(obj: object, msg: string) {
      if (msg.startsWith('knowledge:')) extractorReports.push({ msg, documentId: (obj as { documentId?: string }).documentId });
      testLogger.warn(obj, msg);
    },
    error(obj: object, msg: string) {
      if (msg.startsWith('knowledge:')) extractorReports.push({ msg, documentId: (obj as { documentId?: string }).documentId });
      testLogger.error(obj, msg);
    },
  };
  const start = () => startEmbeddedPostgres({ port, dataDir: path.join(dir, 'pg'), secretsFile: path.join(dir, 'secrets.json') });

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'flowgraph-extractor-restart-'));
    // mkdtemp makes a mode-700 folder: the postgres OS user must be able to reach the data inside.
    await chmod(dir, 0o755);
    port = await new Promise<number>((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    server = await start();
    pool = new pg.Pool({ connectionString: server.adminUrl, max: 5, connectionTimeoutMillis: 2000 });
    pool.on('error', () => {});
    await migrateServiceDatabase(pool, { service: 'knowledge' });
    transport = createInProcessTransport();
    service = await startKnowledgeService({
      pool, port: 0, logger, transport,
      relaySubscription: { pollIntervalMs: 50, retryDelayMs: 100 },
      extractorTiming: { retryDelayMs: 50, maxRetryDelayMs: 500 },
    });
  }, 120_000);
  afterAll(async () => {
    await service?.close();
    await transport?.close();
    await pool?.end();
    await server?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('completes every queued extraction once the database is back, and fails none', async () => {
    const documents = Array.from({ length: 6 }, (_, i) => `doc-restart-${i}`);
    const text = BOOK.slice(0, 4000);
    for (const documentId of documents) await transport.publish(chunkEvents(documentId, text));
    // Resolves once every request is committed (the in-process transport waits for the consumer).
    await transport.publish(documents.map((documentId, i) => extractStarted(`run-restart-${i}`, documentId)));
    await server!.stop();
    // The server stays down until the extractor has met the unavailable database on a document.
    await eventually(() => extractorReports.some((r) => r.documentId !== undefined && documents.includes(r.documentId)), 60_000, 'the extractor meeting the stopped database');
    await delay(500);
    server = await start();

    await eventually(async () => {
      try {
        return (await countRequests(pool, 'COMPLETED')) === documents.length;
      } catch {
        return false; // the pool is reconnecting
      }
    }, 240_000, 'every extraction completed after the restart');
    expect(await countRequests(pool, 'FAILED')).toBe(0);
    const { rows } = await pool.query<{ type: string; n: number }>(
      `SELECT type, count(*)::int AS n FROM eventstore.events WHERE type IN ('DocumentEntitiesExtracted', 'ExtractionFailed') GROUP BY type ORDER BY type`,
    );
    expect(rows).toEqual([{ type: 'DocumentEntitiesExtracted', n: documents.length }]);
  }, 400_000);
});

describe('an EXTRACT request whose document never arrives', () => {
  let db: TestDatabase;
  let transport: IntegrationTransport;
  let service: KnowledgeService | undefined;
  const published: IntegrationEvent[] = [];
  const CHUNK_WAIT_MS = 1500;

  beforeAll(async () => {
    db = await createTestDatabase('knowledge_chunk_wait');
    await migrateServiceDatabase(db.pool, { service: 'knowledge' });
    transport = createInProcessTransport();
    await transport.consume({ consumer: 'test-from-knowledge', source: 'knowledge', handler: async (e) => void published.push(e) });
    service = await startKnowledgeService({ pool: db.pool, port: 0, logger: testLogger, transport, relaySubscription: { pollIntervalMs: 50 }, chunkWaitMs: CHUNK_WAIT_MS });
  }, 60_000);
  afterAll(async () => {
    await service?.close();
    await transport?.close();
    await db?.drop();
  });

  const outcomeOf = (runId: string) =>
    eventually(() => published.some((e) => (e.data as { runId?: string }).runId === runId && (e.type === 'ExtractionFailed' || e.type === 'DocumentEntitiesExtracted')), 30_000, `outcome of ${runId}`)
      .then(() => published.filter((e) => (e.data as { runId?: string }).runId === runId && (e.type === 'ExtractionFailed' || e.type === 'DocumentEntitiesExtracted')));

  it('fails the step after the chunk wait with a reason saying no chunk arrived', async () => {
    await transport.publish([extractStarted('run-never', 'doc-never-ingested')]);
    const [outcome, ...more] = await outcomeOf('run-never');
    expect(more).toEqual([]);
    expect(outcome).toMatchObject({ type: 'ExtractionFailed', data: { documentId: 'doc-never-ingested', runId: 'run-never', stepName: 'extract' } });
    expect((outcome!.data as { reason: string }).reason).toBe(
      `document doc-never-ingested: no chunk arrived within ${CHUNK_WAIT_MS} ms of the extraction request (KNOWLEDGE_CHUNK_WAIT_MS); content has not delivered this document`,
    );
    const { rows } = await db.pool.query(`SELECT status, reason FROM extraction_requests WHERE run_id = 'run-never'`);
    expect(rows).toEqual([{ status: 'FAILED', reason: (outcome!.data as { reason: string }).reason }]);
  });

  it('names how many chunks arrived when only some of them did', async () => {
    const chunks = chunkEvents('doc-half-ingested', BOOK.slice(0, 10_000));
    await transport.publish([extractStarted('run-half', 'doc-half-ingested'), ...chunks.slice(0, 2)]);
    const [outcome] = await outcomeOf('run-half');
    expect(outcome).toMatchObject({ type: 'ExtractionFailed' });
    expect((outcome!.data as { reason: string }).reason).toContain(`document doc-half-ingested: 2 of ${chunks.length} chunks arrived within ${CHUNK_WAIT_MS} ms`);
  });

  it('still completes a request whose chunks all arrive within the wait', async () => {
    // Its extraction itself may take longer than the chunk wait: only missing chunks count.
    await transport.publish(chunkEvents('doc-in-time', BOOK.slice(0, 10_000)));
    await transport.publish([extractStarted('run-in-time', 'doc-in-time')]);
    const [outcome] = await outcomeOf('run-in-time');
    expect(outcome).toMatchObject({ type: 'DocumentEntitiesExtracted', data: { documentId: 'doc-in-time', runId: 'run-in-time' } });
  });

  it('refuses a chunk wait that is not a positive number of ms', async () => {
    await expect(startKnowledgeService({ pool: db.pool, port: 0, logger: testLogger, transport, chunkWaitMs: 0 })).rejects.toThrow(
      'startExtractor: chunkWaitMs must be a positive number of ms, got 0',
    );
  });
});

describe('documents woken while another one is being extracted', () => {
  let db: TestDatabase;
  let transport: IntegrationTransport;
  let service: KnowledgeService | undefined;
  const published: IntegrationEvent[] = [];

  beforeAll(async () => {
    db = await createTestDatabase('knowledge_lanes');
    await migrateServiceDatabase(db.pool, { service: 'knowledge' });
    transport = createInProcessTransport();
    await transport.consume({ consumer: 'test-from-knowledge', source: 'knowledge', handler: async (e) => void published.push(e) });
    service = await startKnowledgeService({ pool: db.pool, port: 0, logger: testLogger, transport, relaySubscription: { pollIntervalMs: 50 }, extractionWorkers: 2 });
  }, 60_000);
  afterAll(async () => {
    await service?.close();
    await transport?.close();
    await db?.drop();
  });

  const extractedAt = (runId: string) => published.findIndex((e) => e.type === 'DocumentEntitiesExtracted' && (e.data as { runId?: string }).runId === runId);

  it('are extracted beside it on the second worker, not after it; a document\'s mentions and relations are one batch', async () => {
    // The whole book: seconds of NLP. The small document is woken once the book's extraction runs.
    const book = chunkEvents('doc-book', BOOK);
    await transport.publish([...book, extractStarted('run-book', 'doc-book')]);
    await eventually(
      async () => (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM chunks WHERE document_id = 'doc-book'`)).rows[0]!.n === book.length &&
        (await countRequests(db.pool, 'PENDING')) === 1,
      30_000,
      'the book ingested and its request pending',
    );
    await delay(200);
    await transport.publish([...chunkEvents('doc-small', BOOK.slice(0, 6_000)), extractStarted('run-small', 'doc-small')]);
    await eventually(() => extractedAt('run-book') >= 0 && extractedAt('run-small') >= 0, 60_000, 'both documents extracted');
    // One lane per extractor run took the second document only after the first one's appends.
    expect(extractedAt('run-small')).toBeLessThan(extractedAt('run-book'));

    const bookEvents = published.filter((e) => e.streamId === 'extraction-doc-book' && (e.type === 'EntityMentioned' || e.type === 'RelationObserved'));
    expect(bookEvents.length).toBeGreaterThan(book.length);
    expect(new Set(bookEvents.map((e) => e.position.transactionId)).size).toBe(1);
    const chunkOrder = bookEvents.map((e) => (e.data as { chunkIndex: number }).chunkIndex);
    expect(chunkOrder).toEqual([...chunkOrder].sort((a, b) => a - b));
    expect(bookEvents.map((e) => e.streamPosition)).toEqual(bookEvents.map((_, i) => bookEvents[0]!.streamPosition + i));
  }, 120_000);
});
