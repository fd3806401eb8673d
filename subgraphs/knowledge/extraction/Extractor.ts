/**
 * The extractor: finishes PENDING extraction requests whose document has all its chunks.
 * Up to `extractionWorkers` documents are processed at once (default: the cores,
 * `KNOWLEDGE_EXTRACTION_WORKERS`), their NLP on a warm pool of as many worker threads
 * (`extractionPool.ts`; compromise is CPU-bound), outside any transaction; then one transaction
 * per document appends, on `extraction-<documentId>`:
 * one batch of every chunk's EntityMentioned + RelationObserved (chunk order), then a DocumentEntitiesExtracted
 * per pending request, with an EntityDiscovered (`entity-<id>`, expected version `no_stream`)
 * for every entity not known yet. The extraction stream's version, read before the NLP work, is
 * the expected version of the first append: a concurrent change (a new request, a cancellation,
 * another process extracting) makes the transaction fail with WrongExpectedVersion and the
 * document is tried again (up to 5 times) against the new state.
 * A document is extracted once: later requests for it complete from `document_extractions`.
 *
 * Faults (issue 10, "Nothing lost, nothing hung"):
 * - An unavailable database (connection refused or reset, 57P01 admin shutdown, 57P03 cannot
 *   connect now, ConnectionLostError... as `isTransientDatabaseError` says) is never a business
 *   failure: the document goes back to the queue, the extractor waits (exponential backoff,
 *   `retryDelayMs` doubling up to `maxRetryDelayMs`) and then re-scans every PENDING request, so
 *   nothing queued waits for a process restart.
 * - A request whose document's chunks have not all arrived `chunkWaitMs` after it was requested
 *   ends with ExtractionFailed naming the missing chunks (a document content never ingested
 *   would otherwise hold the step until its whole timeout).
 * - Every `rescanIntervalMs` the PENDING requests are scanned again (a safety net for a wake-up
 *   lost between a consumer's commit and this process).
 * Other unexpected errors end the pending requests with ExtractionFailed (the workflow's retry
 * policy decides what follows).
 */
import type pg from 'pg';
import {
  TransactionConflictError,
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
import { createExtractionPool, type ExtractionPool } from './extractionPool.ts';
import { isTransientDatabaseError } from '../../../federation/isTransientDatabaseError.ts';

/** Attempts of one document's transaction when concurrent writers win. */
export const MAX_EXTRACTION_ATTEMPTS = 5;
/** Default of `chunkWaitMs` (`KNOWLEDGE_CHUNK_WAIT_MS`): 2 min. */
export const DEFAULT_CHUNK_WAIT_MS = 120_000;
/** Default first pause after an unavailable database, in ms. */
export const DEFAULT_EXTRACTOR_RETRY_DELAY_MS = 100;
/** Default longest pause between two tries while the database stays unavailable, in ms. */
export const DEFAULT_EXTRACTOR_MAX_RETRY_DELAY_MS = 5_000;
/** Default pause between two safety scans of the PENDING requests, in ms. */
export const DEFAULT_EXTRACTOR_RESCAN_INTERVAL_MS = 30_000;

/** Options of `startExtractor`. */
export interface ExtractorOptions {
  store: EventStore;
  pool: pg.Pool;
  logger: Logger;
  /**
   * How long a PENDING request waits for all of its document's chunks, in ms, counted from the
   * request's `requested_at`; past it the request ends with ExtractionFailed. @default 120_000
   */
  chunkWaitMs?: number;
  /** First pause after an unavailable database, in ms; doubles on each failure in a row. @default 100 */
  retryDelayMs?: number;
  /** Longest pause between two tries while the database stays unavailable, in ms. @default 5000 */
  maxRetryDelayMs?: number;
  /** Pause between two safety scans of every PENDING request, in ms. @default 30_000 */
  rescanIntervalMs?: number;
  /**
   * Extraction worker threads, and so documents extracted at once, 1..64
   * (`KNOWLEDGE_EXTRACTION_WORKERS`). @default the cores (`os.availableParallelism()`)
   */
  extractionWorkers?: number;
}

/** A running extractor. */
export interface Extractor {
  /** Queues `documentId` (or every document with PENDING requests when omitted). Never throws. */
  wake(documentId?: string): void;
  /** Resolves when the queue is empty and nothing is running. */
  idle(): Promise<void>;
  /** Stops: extractions under way are abandoned (their requests stay PENDING), a transaction under way finishes. Idempotent. */
  close(): Promise<void>;
}

interface PendingRequest {
  run_id: string;
  step_name: string;
  attempt: number;
  correlation_id: string | null;
  causation_id: string;
}

/**
 * Starts an extractor on the knowledge database (see the module comment for its fault rules).
 * @throws Error when `chunkWaitMs`, `retryDelayMs`, `maxRetryDelayMs` or `rescanIntervalMs` is not a positive number; RangeError when `extractionWorkers` is not an integer from 1 to 64
 */
export function startExtractor(options: ExtractorOptions): Extractor {
  const { store, pool, logger } = options;
  const chunkWaitMs = positive('chunkWaitMs', options.chunkWaitMs ?? DEFAULT_CHUNK_WAIT_MS);
  const retryDelayMs = positive('retryDelayMs', options.retryDelayMs ?? DEFAULT_EXTRACTOR_RETRY_DELAY_MS);
  const maxRetryDelayMs = Math.max(retryDelayMs, positive('maxRetryDelayMs', options.maxRetryDelayMs ?? DEFAULT_EXTRACTOR_MAX_RETRY_DELAY_MS));
  const rescanIntervalMs = positive('rescanIntervalMs', options.rescanIntervalMs ?? DEFAULT_EXTRACTOR_RESCAN_INTERVAL_MS);
  const workers: ExtractionPool = createExtractionPool({ size: options.extractionWorkers, logger });
  const queue = new Set<string>();
  /** Documents a lane is processing (a document is never processed twice at once). */
  const inProgress = new Set<string>();
  /** The scan of every PENDING request under way (lanes with nothing to do wait for it). */
  let scanning: Promise<void> | undefined;
  let scanAll = false;
  /**
   * Lanes at once: twice the pool's workers, so that while a lane appends one document's events
   * (main thread and PostgreSQL) the next document's NLP already waits in the pool's queue.
   */
  const maxLanes = 2 * workers.size;
  let lanes = 0;
  /** Pending while any lane runs; resolved by the last lane to end. */
  let running: Promise<void> | undefined;
  let endRunning: (() => void) | undefined;
  let closed = false;
  const idleWaiters: (() => void)[] = [];
  /** Failures of the database in a row (0: the last try reached it). */
  let unavailableInARow = 0;
  /** End the lanes' backoff pauses early (close()). */
  const wakeFromPause = new Set<() => void>();
  /** One timer per document waiting for chunks: it fires when its oldest request is overdue. */
  const chunkTimers = new Map<string, NodeJS.Timeout>();
  const rescanTimer = setInterval(() => wake(), rescanIntervalMs);
  rescanTimer.unref();

  function wake(documentId?: string): void {
    if (closed) return;
    if (documentId === undefined) scanAll = true;
    else queue.add(documentId);
    addLanes();
  }

  /** Queued documents no lane is processing, plus one for a pending scan of every request. */
  function waiting(): number {
    let n = scanAll ? 1 : 0;
    for (const id of queue) if (!inProgress.has(id)) n++;
    return n;
  }

  /**
   * Starts a lane per waiting document, up to `maxLanes` at once; each lane takes one document at
   * a time until none is left. Lanes are added whenever a document is woken, not only when the
   * last lane ended: before, a document woken while one lane was busy waited for that lane, so
   * documents were extracted one after another on one worker (bench:pipeline: 1.1–1.8 of 2 cores
   * busy, the six corpus books' extractions strictly in sequence).
   */
  function addLanes(): void {
    const add = Math.min(maxLanes - lanes, waiting());
    if (add <= 0) return;
    running ??= new Promise<void>((resolve) => (endRunning = resolve));
    for (let i = 0; i < add; i++) {
      lanes++;
      lane()
        .catch((error: unknown) => logger.error({ err: error }, 'knowledge: extraction lane failed'))
        .finally(laneEnded);
    }
  }

  function laneEnded(): void {
    if (--lanes > 0) return;
    const end = endRunning;
    running = undefined;
    endRunning = undefined;
    end?.();
    if (!closed && waiting() > 0) wake();
    else for (const resolve of idleWaiters.splice(0)) resolve();
  }

  /** Scans every PENDING request into the queue (false: the database was unavailable, the lane paused). */
  async function scan(): Promise<boolean> {
    scanAll = false;
    try {
      const { rows } = await pool.query<{ document_id: string }>(`SELECT DISTINCT document_id FROM extraction_requests WHERE status = 'PENDING'`);
      for (const r of rows) queue.add(r.document_id);
      unavailableInARow = 0;
    } catch (error) {
      if (!isTransientDatabaseError(error)) logger.error({ err: error }, 'knowledge: scanning pending extractions failed');
      else {
        scanAll = true;
        await pauseAfterUnavailable(error, undefined);
        return false;
      }
    }
    return true;
  }

  async function lane(): Promise<void> {
    while (!closed) {
      if (scanAll && !scanning) {
        scanning = scan().then(
          () => {},
          () => {},
        );
        await scanning;
        scanning = undefined;
        continue;
      }
      if (scanning) await scanning;
      let documentId: string | undefined;
      for (const id of queue) {
        if (inProgress.has(id)) continue;
        documentId = id;
        break;
      }
      // Nothing left, or only documents another lane is processing (drain() runs again for those).
      if (documentId === undefined) return;
      queue.delete(documentId);
      inProgress.add(documentId);
      try {
        await processDocument(documentId);
        unavailableInARow = 0;
      } catch (error) {
        if (closed) return; // close() stopped its extraction: the requests stay PENDING
        if (!isTransientDatabaseError(error)) {
          logger.error({ err: error, documentId }, 'knowledge: extraction failed');
          continue;
        }
        // Not the document's fault: keep it, and every other PENDING request, for when the database is back.
        queue.add(documentId);
        scanAll = true;
        await pauseAfterUnavailable(error, documentId);
      } finally {
        inProgress.delete(documentId);
      }
    }
  }

  /** Waits `retryDelayMs · 2^(failures in a row − 1)`, at most `maxRetryDelayMs` (ends early on close()). */
  async function pauseAfterUnavailable(error: unknown, documentId: string | undefined): Promise<void> {
    unavailableInARow++;
    const ms = Math.min(maxRetryDelayMs, retryDelayMs * 2 ** Math.min(unavailableInARow - 1, 30));
    logger.warn({ err: error, documentId, attempt: unavailableInARow, retryInMs: ms }, 'knowledge: database unavailable, extraction retries later');
    await new Promise<void>((resolve) => {
      const end = () => {
        clearTimeout(timer);
        wakeFromPause.delete(end);
        resolve();
      };
      const timer = setTimeout(end, ms);
      wakeFromPause.add(end);
    });
  }

  /**
   * The document's chunks are incomplete: ends the requests that waited `chunkWaitMs` with
   * ExtractionFailed, and sets a timer for the next one to become overdue.
   */
  async function failOverdueRequests(documentId: string, have: number, expected: number | undefined): Promise<void> {
    const reason =
      `document ${documentId}: ${expected === undefined ? 'no chunk' : `${have} of ${expected} chunks`} arrived within ${chunkWaitMs} ms ` +
      `of the extraction request (KNOWLEDGE_CHUNK_WAIT_MS); content has not delivered this document`;
    // Milliseconds left to the oldest and to the youngest PENDING request (≤ 0: overdue).
    const left = async () =>
      (
        await pool.query<{ oldest: number | null; youngest: number | null }>(
          `SELECT (EXTRACT(EPOCH FROM (min(requested_at) + $2 * interval '1 millisecond' - now())) * 1000)::float8 AS oldest,
                  (EXTRACT(EPOCH FROM (max(requested_at) + $2 * interval '1 millisecond' - now())) * 1000)::float8 AS youngest
             FROM extraction_requests WHERE document_id = $1 AND status = 'PENDING'`,
          [documentId, chunkWaitMs],
        )
      ).rows[0];
    let pendingLeft = await left();
    if (pendingLeft?.oldest !== null && pendingLeft?.oldest !== undefined && pendingLeft.oldest <= 0) {
      await store.transaction(async (tx) => {
        const { rows } = await tx.client.query<PendingRequest>(
          `SELECT run_id, step_name, attempt, correlation_id, causation_id FROM extraction_requests
            WHERE document_id = $1 AND status = 'PENDING' AND requested_at <= now() - $2 * interval '1 millisecond'
            ORDER BY requested_at, run_id, step_name, attempt FOR UPDATE`,
          [documentId, chunkWaitMs],
        );
        for (const request of rows) {
          const data: ExtractionFailedData = { documentId, runId: request.run_id, stepName: request.step_name, reason };
          await tx.appendToStream(extractionStreamId(documentId), [{ type: 'ExtractionFailed', data }], { metadata: metadataOf(request) });
        }
        if (rows.length > 0) logger.warn({ documentId, requests: rows.length, have, expected, chunkWaitMs }, 'knowledge: extraction requests failed waiting for chunks');
      });
      if ((pendingLeft.youngest ?? 0) > 0) pendingLeft = await left();
      else return;
    }
    const remaining = pendingLeft?.oldest;
    if (remaining === null || remaining === undefined || closed) return;
    clearTimeout(chunkTimers.get(documentId));
    const timer = setTimeout(() => {
      chunkTimers.delete(documentId);
      wake(documentId);
    }, Math.max(0, remaining) + 10);
    timer.unref();
    chunkTimers.set(documentId, timer);
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
          // The chunk consumer wakes us when more arrive; a timer when a request waited too long.
          await failOverdueRequests(documentId, chunks.length, expected);
          return;
        }
        clearTimeout(chunkTimers.get(documentId));
        chunkTimers.delete(documentId);
        const started = Date.now();
        extraction = await workers.extract(chunks.map((c) => ({ chunkIndex: c.chunk_index, text: c.text })));
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
            // Every chunk's EntityMentioned + RelationObserved, in chunk order, as one batch: one
            // round trip per document where there was one per chunk (the same events at the same
            // positions in the same transaction).
            const events: NewEvent[] = x.chunks.flatMap((chunk) => [
              ...chunk.mentions.map((m): NewEvent => ({ type: 'EntityMentioned', data: { entityId: m.entityId, documentId, chunkIndex: chunk.chunkIndex, count: m.count } satisfies EntityMentionedData })),
              ...chunk.relations.map((r): NewEvent => ({ type: 'RelationObserved', data: { ...r, documentId, chunkIndex: chunk.chunkIndex } satisfies RelationObservedData })),
            ]);
            if (events.length > 0) expectedVersion = (await tx.appendToStream(streamId, events, { expectedVersion, metadata: metadataOf(first) })).nextExpectedVersion;
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
        if ((error instanceof WrongExpectedVersionError || error instanceof TransactionConflictError) && attempt < MAX_EXTRACTION_ATTEMPTS) {
          logger.debug({ documentId, attempt }, 'knowledge: extraction lost a race, trying again');
          continue;
        }
        if (isTransientDatabaseError(error)) throw error; // drain() retries the document later
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
      clearInterval(rescanTimer);
      for (const timer of chunkTimers.values()) clearTimeout(timer);
      chunkTimers.clear();
      for (const end of [...wakeFromPause]) end();
      // Extractions under way reject at once (their requests stay PENDING for the next process);
      // a transaction under way finishes.
      await workers.close();
      await running?.catch(() => {});
    },
  };
}

function positive(name: string, value: number): number {
  if (!(Number.isFinite(value) && value > 0)) throw new Error(`startExtractor: ${name} must be a positive number of ms, got ${value}`);
  return value;
}

/** Metadata of events caused by a request: its StepStarted's correlation and id. */
function metadataOf(request: PendingRequest): EventMetadata {
  return { ...(request.correlation_id ? { correlationId: request.correlation_id } : {}), causationId: request.causation_id, actor: KNOWLEDGE_ACTOR };
}
