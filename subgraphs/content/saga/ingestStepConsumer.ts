/**
 * content's part of the saga (issue 3 contract): consumes workflows' `StepStarted` integration
 * events; for kind INGEST it ingests `runInput.corpusFile` (a file of the corpus directory) or
 * `runInput.text` (+ `runInput.title`) and ends with DocumentProcessed — or, when the input is
 * rejected, DocumentFailed — carrying `runId` and `stepName`; workflows turns those into
 * StepCompleted / StepFailed. Other kinds are acknowledged without effect.
 *
 * Exactly-once effect: the events are appended with the inbox row `(workflows, eventId)` in one
 * transaction (`handleOnce`), so a redelivered StepStarted has no second effect; a retried step
 * (a new StepStarted, attempt + 1) is a new ingestion with a new document id. Every appended
 * event carries `{ correlationId: incoming.metadata.correlationId, causationId: incoming.eventId,
 * actor: 'system:content' }`.
 *
 * RunCancelled is not consumed: an ingestion completes inside the StepStarted handler, so
 * content never holds pending work for a run.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { handleOnce, type EventStore, type IntegrationConsumer, type IntegrationEvent, type IntegrationTransport, type Logger } from '../../../eventstore/index.ts';
import { appendDocumentEvents } from '../commandHandlers.ts';
import { readCorpusFile } from '../corpus/readCorpusFile.ts';
import type { StepRef } from '../document/commands.ts';
import { decideDocument } from '../document/decide.ts';
import type { DocumentEvent, DocumentSource } from '../document/events.ts';
import { initialDocumentState } from '../document/evolve.ts';
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

/**
 * Handles one StepStarted. A payload that breaks StepStarted v1 is logged and acknowledged
 * (redelivering it could never succeed and would stall the stream behind it).
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
  // Decided before the transaction: the decision is pure and the stream is new (fresh id).
  const documentId = randomUUID();
  const events = await decideIngestion(documentId, step, parsed.data.runInput, options);
  const correlationId = event.metadata.correlationId;
  const metadata = { ...(correlationId ? { correlationId } : {}), causationId: event.eventId, actor: SYSTEM_ACTOR };
  const outcome = await handleOnce(options.store, event, (tx) => appendDocumentEvents(tx, documentId, events, metadata));
  options.logger.info(
    { runId: step.runId, stepName: step.stepName, documentId, outcome: events.at(-1)?.type, duplicate: !outcome.handled },
    outcome.handled ? 'content: ingested for a workflow step' : 'content: StepStarted redelivered, already handled',
  );
}

/** The events of an INGEST step: a processed document, or DocumentFailed for rejected input. */
async function decideIngestion(documentId: string, step: StepRef, runInput: unknown, options: IngestStepConsumerOptions): Promise<DocumentEvent[]> {
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
      { type: 'IngestDocument', documentId, title: givenTitle ?? fallbackTitle, input: bytes, source: source!, corpusFile, step, now },
      initialDocumentState(),
    );
  } catch (error) {
    if (!(error instanceof BadUserInputError)) throw error;
    const title = givenTitle?.trim() && givenTitle.trim().length <= DOCUMENT_LIMITS.maxTitleLength ? givenTitle.trim() : fallbackTitle;
    return decideDocument(
      { type: 'RecordIngestionFailure', documentId, title, source, corpusFile, sizeBytes, step, code: error.reason, reason: error.message, now },
      initialDocumentState(),
    );
  }
}
