/**
 * content's part of the saga (issue 3 contract): consumes workflows' `StepStarted` integration
 * events; for kind INGEST it ingests `runInput.corpusFile` (a file of the corpus directory) or
 * `runInput.text` (+ `runInput.title`) and ends with DocumentProcessed — or, when the input is
 * rejected, DocumentFailed — carrying `runId` and `stepName`; workflows turns those into
 * StepCompleted / StepFailed. Other kinds are acknowledged without effect.
 *
 * Exactly-once effect: the events are appended with the inbox row `(workflows, eventId)` in one
 * transaction (`handleOnce`), so a redelivered StepStarted has no second effect. Idempotent per
 * run and step (issue 10): a successful ingestion's document id is derived from `runId` and
 * `stepName` (`ingestDocumentId`), so a retried step (a new StepStarted, attempt + 1, e.g. after a
 * timed-out attempt that still ingested) finds the document the earlier attempt stored and
 * answers it again: one more DocumentProcessed on that document's stream, caused by the new
 * StepStarted, and no second copy. A rejected input (DocumentFailed) gets a fresh id per attempt,
 * so a retry after a rejection ingests anew. Every appended
 * event carries `{ correlationId: incoming.metadata.correlationId, causationId: incoming.eventId,
 * actor: 'system:content' }`.
 *
 * RunCancelled is not consumed: an ingestion completes inside the StepStarted handler, so
 * content never holds pending work for a run.
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { handleOnce, WrongExpectedVersionError, type EventStore, type IntegrationConsumer, type IntegrationEvent, type IntegrationTransport, type Logger } from '../../../eventstore/index.ts';
import { appendDocumentEvents } from '../commandHandlers.ts';
import { readCorpusFile } from '../corpus/readCorpusFile.ts';
import type { StepRef } from '../document/commands.ts';
import { decideDocument } from '../document/decide.ts';
import { documentStreamId, type DocumentEvent, type DocumentProcessed, type DocumentSource } from '../document/events.ts';
import { evolveDocument, initialDocumentState } from '../document/evolve.ts';
import { DOCUMENT_LIMITS } from '../document/limits.ts';
import { BadUserInputError, ContentRejectionReason } from '../errors.ts';

/** Durable consumer name. */
export const INGEST_CONSUMER = 'content-from-workflows';
/** Source service of the consumed events. */
export const WORKFLOWS_SOURCE = 'workflows';
/** `actor` of every event content appends because of an integration event. */
export const SYSTEM_ACTOR = 'system:content';
/** Title of a saga document whose run input gives neither a usable title nor a corpus file. */
export const UNTITLED = 'Untitled document';

/** What content reads of workflows' StepStarted v1 (other fields are ignored). */
export const StepStartedV1 = z.object({
  runId: z.string(),
  workflowId: z.string(),
  stepName: z.string(),
  kind: z.enum(['INGEST', 'EXTRACT', 'EXTERNAL']),
  attempt: z.number().int(),
  runInput: z.unknown(),
  documentId: z.string().optional(),
});

/** Options of `startIngestStepConsumer`. */
export interface IngestStepConsumerOptions {
  store: EventStore;
  transport: IntegrationTransport;
  /** Directory of `runInput.corpusFile` names. */
  corpusDir: string;
  logger: Logger;
  /** @default () => new Date() */
  now?: () => Date;
}

/** Starts the `content-from-workflows` consumer. `close()` the result to stop it. */
export function startIngestStepConsumer(options: IngestStepConsumerOptions): Promise<IntegrationConsumer> {
  return options.transport.consume({
    consumer: INGEST_CONSUMER,
    source: WORKFLOWS_SOURCE,
    types: ['StepStarted'],
    handler: (event) => handleStepStarted(event, options),
  });
}

/** Namespace of `ingestDocumentId` (RFC 9562 name-based UUIDs; a fixed random UUID of this module). */
export const INGEST_DOCUMENT_ID_NAMESPACE = '6f3c2a51-93d4-4c6e-9b7e-2f1a8d0c4e57';

/** Attempts of one StepStarted's transaction when a concurrent attempt of the same step stores the document first. */
const MAX_INGEST_ATTEMPTS = 3;

/**
 * The document id of the successful ingestion of step `stepName` of run `runId`: a version-5
 * (SHA-1, name-based) UUID of `runId`, NUL, `stepName` in INGEST_DOCUMENT_ID_NAMESPACE (RFC 9562
 * §5.5), the same for every attempt of the step. Pure.
 */
export function ingestDocumentId(step: StepRef): string {
  const namespace = Buffer.from(INGEST_DOCUMENT_ID_NAMESPACE.replaceAll('-', ''), 'hex');
  const hash = createHash('sha1').update(namespace).update(`${step.runId}\u0000${step.stepName}`, 'utf8').digest();
  hash[6] = (hash[6]! & 0x0f) | 0x50; // version 5
  hash[8] = (hash[8]! & 0x3f) | 0x80; // variant 10
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * Handles one StepStarted. A payload that breaks StepStarted v1 is logged and acknowledged
 * (redelivering it could never succeed and would stall the stream behind it). When an earlier
 * attempt of the same run and step already stored its document, answers with that document
 * (see the module comment) instead of ingesting a copy.
 * @throws database errors (the transport redelivers; the inbox absorbs what committed)
 */
export async function handleStepStarted(event: IntegrationEvent, options: IngestStepConsumerOptions): Promise<void> {
  const parsed = StepStartedV1.safeParse(event.data);
  if (!parsed.success) {
    options.logger.error({ eventId: event.eventId, issues: parsed.error.issues }, 'content: StepStarted does not match v1; acknowledged without effect');
    return;
  }
  if (parsed.data.kind !== 'INGEST') return;
  // A redelivery of a handled event: skip reading and chunking the input again (handleOnce
  // below is what guarantees the single effect; this only saves the work).
  const seen = await options.store.pool.query('SELECT 1 FROM eventstore.inbox WHERE source = $1 AND event_id = $2', [event.source, event.eventId]);
  if (seen.rowCount) return;
  const step: StepRef = { runId: parsed.data.runId, stepName: parsed.data.stepName };
  const ingestId = ingestDocumentId(step);
  const streamId = documentStreamId(ingestId);
  const correlationId = event.metadata.correlationId;
  const metadata = { ...(correlationId ? { correlationId } : {}), causationId: event.eventId, actor: SYSTEM_ACTOR };
  for (let attempt = 1; ; attempt++) {
    // Decided before the transaction (the decision is pure), unless an earlier attempt stored the document.
    const stored = (await options.store.readStream(streamId, { direction: 'backwards', count: 1 })).length > 0;
    const events = stored ? [] : await decideIngestion({ processed: ingestId, failed: randomUUID() }, step, parsed.data.runInput, options);
    try {
      const outcome = await handleOnce(options.store, event, async (tx) => {
        const history = await tx.readStream(streamId);
        if (history.length === 0 && events.length > 0) {
          const documentId = (events[0]!.data as { documentId: string }).documentId;
          await appendDocumentEvents(tx, documentId, events, metadata);
          return { documentId, type: events.at(-1)!.type, repeated: false };
        }
        let state = initialDocumentState();
        for (const e of history) state = evolveDocument(state, { type: e.type, data: e.data } as DocumentEvent);
        if (state.status !== 'PROCESSED') throw new Error(`content: stream ${streamId} of run ${step.runId} step ${step.stepName} holds a ${state.status} document, not a processed one`);
        const again: DocumentProcessed = {
          type: 'DocumentProcessed',
          data: { documentId: ingestId, chunkCount: state.chunkCount, runId: step.runId, stepName: step.stepName, processedAt: (options.now ?? (() => new Date()))().toISOString() },
        };
        await tx.appendToStream(streamId, [again], { expectedVersion: history.at(-1)!.streamPosition, metadata });
        return { documentId: ingestId, type: again.type, repeated: true };
      });
      options.logger.info(
        { runId: step.runId, stepName: step.stepName, attempt: parsed.data.attempt, ...(outcome.handled ? outcome.value : {}), duplicate: !outcome.handled },
        !outcome.handled
          ? 'content: StepStarted redelivered, already handled'
          : outcome.value.repeated
            ? 'content: a retried step answered with the document its earlier attempt ingested'
            : 'content: ingested for a workflow step',
      );
      return;
    } catch (error) {
      // Another attempt of the same step stored the document meanwhile: answer with it.
      if (error instanceof WrongExpectedVersionError && attempt < MAX_INGEST_ATTEMPTS) continue;
      throw error;
    }
  }
}

/** The events of an INGEST step: a processed document, or DocumentFailed for rejected input. */
async function decideIngestion(ids: { processed: string; failed: string }, step: StepRef, runInput: unknown, options: IngestStepConsumerOptions): Promise<DocumentEvent[]> {
  const now = (options.now ?? (() => new Date()))();
  const input = (typeof runInput === 'object' && runInput !== null && !Array.isArray(runInput) ? runInput : {}) as Record<string, unknown>;
  const corpusFile = typeof input.corpusFile === 'string' ? input.corpusFile : null;
  const text = typeof input.text === 'string' ? input.text : null;
  const givenTitle = typeof input.title === 'string' ? input.title : null;
  const source: DocumentSource | null = corpusFile !== null ? 'CORPUS_FILE' : text !== null ? 'TEXT' : null;
  const fallbackTitle = (corpusFile ?? UNTITLED).slice(0, DOCUMENT_LIMITS.maxTitleLength);
  let sizeBytes = 0;
  try {
    if ((corpusFile === null) === (text === null)) {
      throw new BadUserInputError(ContentRejectionReason.SourceRequired, 'The run input needs exactly one of `corpusFile` and `text` (strings) for an INGEST step', {
        field: 'runInput',
      });
    }
    const bytes = corpusFile !== null ? await readCorpusFile(options.corpusDir, corpusFile) : text!;
    sizeBytes = typeof bytes === 'string' ? Buffer.byteLength(bytes, 'utf8') : bytes.byteLength;
    return decideDocument(
      { type: 'IngestDocument', documentId: ids.processed, title: givenTitle ?? fallbackTitle, input: bytes, source: source!, corpusFile, step, now },
      initialDocumentState(),
    );
  } catch (error) {
    if (!(error instanceof BadUserInputError)) throw error;
    const title = givenTitle?.trim() && givenTitle.trim().length <= DOCUMENT_LIMITS.maxTitleLength ? givenTitle.trim() : fallbackTitle;
    return decideDocument(
      { type: 'RecordIngestionFailure', documentId: ids.failed, title, source, corpusFile, sizeBytes, step, code: error.reason, reason: error.message, now },
      initialDocumentState(),
    );
  }
}
