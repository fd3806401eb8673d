/**
 * The extractor: finishes PENDING extraction requests whose document has all its chunks.
 * Documents are processed one at a time (compromise is CPU-bound); the NLP work runs outside
 * any transaction, then one transaction appends, on `extraction-<documentId>`:
 * one batch per chunk (its EntityMentioned + RelationObserved), then a DocumentEntitiesExtracted
 * per pending request, with an EntityDiscovered (`entity-<id>`, expected version `no_stream`)
 * for every entity not known yet. The extraction stream's version, read before the NLP work, is
 * the expected version of the first append: a concurrent change (a new request, a cancellation,
 * another process extracting) makes the transaction fail with WrongExpectedVersion and the
 * document is tried again (up to 5 times) against the new state.
 * A document is extracted once: later requests for it complete from `document_extractions`.
 * Unexpected errors end the pending requests with ExtractionFailed (the workflow's retry policy
 * decides what follows).
 */
import type pg from 'pg';
import {
  WrongExpectedVersionError,
  type EventMetadata,
  type EventStore,
  type Logger,
  type NewEvent,
} from '../../../eventstore/index.ts';
import {
  extractionStreamId,
  type DocumentEntitiesExtractedData,
  type EntityDiscoveredData,
  type EntityMentionedData,
  type ExtractionFailedData,
  type RelationObservedData,
} from '../events.ts';
import type { EventStoreTransaction } from '../../../eventstore/index.ts';
import { KNOWLEDGE_ACTOR } from '../consumers/workflowsConsumer.ts';
import { entityStreamId } from './entityId.ts';
import type { DocumentExtraction } from './extractDocument.ts';
import { extractDocumentInWorker } from './extractDocumentInWorker.ts';

/** Attempts of one document's transaction when concurrent writers win. */
export const MAX_EXTRACTION_ATTEMPTS = 5;

/** A running extractor. */
export interface Extractor {
  /** Queues `documentId` (or every document with PENDING requests when omitted). Never throws. */
  wake(documentId?: string): void;
  /** Resolves when the queue is empty and nothing is running. */
  idle(): Promise<void>;
  /** Stops after the current document. Idempotent. */
  close(): Promise<void>;
}

interface PendingRequest {
  run_id: string;
  step_name: string;
  attempt: number;
  correlation_id: string | null;
  causation_id: string;
}

/** Starts an extractor on the knowledge database. */
export function startExtractor(options: { store: EventStore; pool: pg.Pool; logger: Logger }): Extractor {
  const { store, pool, logger } = options;
  const queue = new Set<string>();
  let scanAll = false;
  let running: Promise<void> | undefined;
  let closed = false;
  const idleWaiters: (() => void)[] = [];

  function wake(documentId?: string): void {
    if (closed) return;
    if (documentId === undefined) scanAll = true;
    else queue.add(documentId);
    running ??= drain().finally(() => {
      running = undefined;
      if (!closed && (queue.size > 0 || scanAll)) wake();
      else for (const resolve of idleWaiters.splice(0)) resolve();
    });
  }

  async function drain(): Promise<void> {
    while (!closed) {
      if (scanAll) {
        scanAll = false;
        try {
          const { rows } = await pool.query<{ document_id: string }>(`SELECT DISTINCT document_id FROM extraction_requests WHERE status = 'PENDING'`);
          for (const r of rows) queue.add(r.document_id);
        } catch (error) {
          logger.error({ err: error }, 'knowledge: scanning pending extractions failed');
        }
      }
      const next = queue.values().next();
      if (next.done) return;
      queue.delete(next.value);
      await processDocument(next.value).catch((error: unknown) => logger.error({ err: error, documentId: next.value }, 'knowledge: extraction failed'));
    }
  }

  async function pending(db: pg.Pool | pg.PoolClient, documentId: string, lock = false): Promise<PendingRequest[]> {
    const { rows } = await db.query<PendingRequest>(
      `SELECT run_id, step_name, attempt, correlation_id, causation_id FROM extraction_requests
        WHERE document_id = $1 AND status = 'PENDING' ORDER BY requested_at, run_id, step_name, attempt ${lock ? 'FOR UPDATE' : ''}`,
      [documentId],
    );
    return rows;
  }

  async function processDocument(documentId: string): Promise<void> {
    let extraction: DocumentExtraction | undefined;
    for (let attempt = 1; attempt <= MAX_EXTRACTION_ATTEMPTS && !closed; attempt++) {
      const requests = await pending(pool, documentId);
      if (requests.length === 0) return;
      const streamId = extractionStreamId(documentId);
      const [last] = await store.readStream(streamId, { direction: 'backwards', count: 1 });
      const version = last?.streamPosition ?? -1;
      const done = await pool.query<{ entity_count: number; relation_count: number; chunk_count: number }>(
        'SELECT entity_count, relation_count, chunk_count FROM document_extractions WHERE document_id = $1',
        [documentId],
      );
      let chunkCount: number;
      if (done.rows[0] === undefined && extraction === undefined) {
        const { rows: chunks } = await pool.query<{ chunk_index: number; text: string; chunk_count: number }>(
          'SELECT chunk_index, text, chunk_count FROM chunks WHERE document_id = $1 ORDER BY chunk_index',
          [documentId],
        );
        const expected = chunks[0]?.chunk_count;
        if (expected === undefined || chunks.length < expected) {
          logger.debug({ documentId, have: chunks.length, expected }, 'knowledge: extraction waits for chunks');
          return; // the chunk consumer wakes us when more arrive
        }
        const started = Date.now();
        extraction = await extractDocumentInWorker(chunks.map((c) => ({ chunkIndex: c.chunk_index, text: c.text })), logger);
        logger.info({ documentId, chunks: chunks.length, entities: extraction.entities.length, relations: extraction.relationCount, ms: Date.now() - started }, 'knowledge: document extracted');
      }
      try {
        await store.transaction(async (tx) => {
          const locked = await pending(tx.client, documentId, true);
          if (locked.length === 0) return;
          let expectedVersion: number | 'no_stream' = version === -1 ? 'no_stream' : version;
          const first = locked[0]!;
          let counts: { entityCount: number; relationCount: number; chunkCount: number };
          if (done.rows[0] === undefined) {
            const x = extraction!;
            await discover(tx, x, metadataOf(first));
            for (const chunk of x.chunks) {
              const events: NewEvent[] = [
                ...chunk.mentions.map((m): NewEvent => ({ type: 'EntityMentioned', data: { entityId: m.entityId, documentId, chunkIndex: chunk.chunkIndex, count: m.count } satisfies EntityMentionedData })),
                ...chunk.relations.map((r): NewEvent => ({ type: 'RelationObserved', data: { ...r, documentId, chunkIndex: chunk.chunkIndex } satisfies RelationObservedData })),
              ];
              if (events.length === 0) continue;
              expectedVersion = (await tx.appendToStream(streamId, events, { expectedVersion, metadata: metadataOf(first) })).nextExpectedVersion;
            }
            counts = { entityCount: x.entities.length, relationCount: x.relationCount, chunkCount: x.chunks.length };
          } else {
            const d = done.rows[0];
            counts = { entityCount: d.entity_count, relationCount: d.relation_count, chunkCount: d.chunk_count };
          }
          for (const request of locked) {
            const data: DocumentEntitiesExtractedData = { documentId, runId: request.run_id, stepName: request.step_name, ...counts };
            expectedVersion = (await tx.appendToStream(streamId, [{ type: 'DocumentEntitiesExtracted', data }], { expectedVersion, metadata: metadataOf(request) })).nextExpectedVersion;
          }
        });
        return;
      } catch (error) {
        if (error instanceof WrongExpectedVersionError && attempt < MAX_EXTRACTION_ATTEMPTS) {
          logger.debug({ documentId, attempt }, 'knowledge: extraction lost a race, trying again');
          continue;
        }
        await failPending(documentId, error);
        return;
      }
    }
  }

  /** EntityDiscovered for the entities of `x` that have no row yet (`no_stream` settles races). */
  async function discover(tx: EventStoreTransaction, x: DocumentExtraction, metadata: EventMetadata): Promise<void> {
    const { rows } = await tx.client.query<{ id: string }>('SELECT id FROM entities WHERE id = ANY($1::text[])', [x.entities.map((e) => e.id)]);
    const known = new Set(rows.map((r) => r.id));
    for (const e of x.entities) {
      if (known.has(e.id)) continue;
      const data: EntityDiscoveredData = { entityId: e.id, name: e.name, kind: e.kind };
      await tx.appendToStream(entityStreamId(e.id), [{ type: 'EntityDiscovered', data }], { expectedVersion: 'no_stream', metadata });
    }
  }

  async function failPending(documentId: string, error: unknown): Promise<void> {
    logger.error({ err: error, documentId }, 'knowledge: extraction failed, failing its pending requests');
    const reason = error instanceof Error ? error.message.slice(0, 500) : String(error);
    await store.transaction(async (tx) => {
      for (const request of await pending(tx.client, documentId, true)) {
        const data: ExtractionFailedData = { documentId, runId: request.run_id, stepName: request.step_name, reason };
        await tx.appendToStream(extractionStreamId(documentId), [{ type: 'ExtractionFailed', data }], { metadata: metadataOf(request) });
      }
    });
  }

  return {
    wake,
    idle: () => (running ? new Promise<void>((resolve) => idleWaiters.push(resolve)) : Promise.resolve()),
    async close() {
      closed = true;
      queue.clear();
      await running?.catch(() => {});
    },
  };
}

/** Metadata of events caused by a request: its StepStarted's correlation and id. */
function metadataOf(request: PendingRequest): EventMetadata {
  return { ...(request.correlation_id ? { correlationId: request.correlation_id } : {}), causationId: request.causation_id, actor: KNOWLEDGE_ACTOR };
}
