/**
 * Hand-made integration events for monitoring's tests: one run of the issue-3 saga as the three
 * services would publish it (shared correlation id, causation chain), with controlled times.
 */
import { randomUUID } from 'node:crypto';
import type { IntegrationEvent } from '../../../eventstore/index.ts';

/** Options of {@link integrationEvent}. */
export interface EventSpec {
  source: 'workflows' | 'content' | 'knowledge' | string;
  type: string;
  data: Record<string, unknown>;
  correlationId?: string;
  /** Event id (or request id) of the cause. */
  causationId?: string;
  /** ms after `base`. */
  at: number;
  streamId?: string;
}

let position = 1000;

/** Builds one IntegrationEvent at `base + spec.at` ms. */
export function integrationEvent(spec: EventSpec, base: Date): IntegrationEvent {
  position += 1;
  return {
    eventId: randomUUID(),
    source: spec.source,
    type: spec.type,
    schemaVersion: 1,
    streamId: spec.streamId ?? `${spec.source}-stream`,
    streamPosition: position,
    data: spec.data,
    metadata: {
      ...(spec.correlationId ? { correlationId: spec.correlationId } : {}),
      ...(spec.causationId ? { causationId: spec.causationId } : {}),
      actor: spec.source === 'workflows' ? 'operator' : `system:${spec.source}`,
    },
    occurredAt: new Date(base.getTime() + spec.at).toISOString(),
    position: { transactionId: String(position), globalPosition: String(position) },
  };
}

/** The events of one saga run, by name, in causal (and time) order. */
export interface SagaRun {
  runId: string;
  correlationId: string;
  /** Every event in causal order (what `trace` must return). */
  inCausalOrder: IntegrationEvent[];
  byName: Record<string, IntegrationEvent>;
  /** Text of each chunk (must never be copied into monitoring). */
  chunkTexts: string[];
}

/**
 * RunStarted → StepStarted(INGEST) → content DocumentIngested, DocumentChunked×3,
 * DocumentProcessed → workflows StepCompleted(INGEST) + StepStarted(EXTRACT) → knowledge
 * EntityDiscovered, DocumentEntitiesExtracted → workflows StepCompleted(EXTRACT) + RunCompleted.
 * Times (ms after `base`): 0, 5, 20, 25, 26, 27, 30, 40, 41, 60, 70, 80, 81.
 */
export function sagaRun(base: Date, runId = `run-${randomUUID()}`, correlationId = `corr-${randomUUID()}`): SagaRun {
  const documentId = `doc-${randomUUID()}`;
  const ev = (name: string, spec: Omit<EventSpec, 'correlationId'>) => {
    const e = integrationEvent({ ...spec, correlationId }, base);
    byName[name] = e;
    return e;
  };
  const byName: Record<string, IntegrationEvent> = {};
  const chunkTexts = [0, 1, 2].map((i) => `Chunk ${i} of the book. `.repeat(250));
  const runStarted = ev('RunStarted', { source: 'workflows', type: 'RunStarted', data: { runId, workflowId: 'pipeline' }, causationId: 'request-1', at: 0, streamId: `run-${runId}` });
  const ingest = ev('StepStarted:ingest', {
    source: 'workflows',
    type: 'StepStarted',
    data: { runId, workflowId: 'pipeline', stepName: 'ingest', kind: 'INGEST', attempt: 1, runInput: { corpusFile: 'book.txt' } },
    causationId: runStarted.eventId,
    at: 5,
    streamId: `run-${runId}`,
  });
  ev('DocumentIngested', { source: 'content', type: 'DocumentIngested', data: { documentId, title: 'Book', sizeBytes: 15000, runId, stepName: 'ingest' }, causationId: ingest.eventId, at: 20 });
  chunkTexts.forEach((text, i) =>
    ev(`DocumentChunked:${i}`, {
      source: 'content',
      type: 'DocumentChunked',
      data: { documentId, chunkIndex: i, chunkCount: 3, text, startOffset: i * text.length, endOffset: (i + 1) * text.length },
      causationId: ingest.eventId,
      at: 25 + i,
    }),
  );
  const processed = ev('DocumentProcessed', { source: 'content', type: 'DocumentProcessed', data: { documentId, chunkCount: 3, runId, stepName: 'ingest' }, causationId: ingest.eventId, at: 30 });
  ev('StepCompleted:ingest', { source: 'workflows', type: 'StepCompleted', data: { runId, stepName: 'ingest' }, causationId: processed.eventId, at: 40, streamId: `run-${runId}` });
  const extract = ev('StepStarted:extract', {
    source: 'workflows',
    type: 'StepStarted',
    data: { runId, workflowId: 'pipeline', stepName: 'extract', kind: 'EXTRACT', attempt: 1, runInput: { corpusFile: 'book.txt' }, documentId },
    causationId: processed.eventId,
    at: 41,
    streamId: `run-${runId}`,
  });
  ev('EntityDiscovered', { source: 'knowledge', type: 'EntityDiscovered', data: { entityId: 'e-1', name: 'Sherlock Holmes', kind: 'PERSON' }, causationId: extract.eventId, at: 60 });
  const extracted = ev('DocumentEntitiesExtracted', {
    source: 'knowledge',
    type: 'DocumentEntitiesExtracted',
    data: { documentId, runId, stepName: 'extract', entityCount: 1, relationCount: 0 },
    causationId: extract.eventId,
    at: 70,
  });
  ev('StepCompleted:extract', { source: 'workflows', type: 'StepCompleted', data: { runId, stepName: 'extract' }, causationId: extracted.eventId, at: 80, streamId: `run-${runId}` });
  ev('RunCompleted', { source: 'workflows', type: 'RunCompleted', data: { runId }, causationId: extracted.eventId, at: 81, streamId: `run-${runId}` });
  return { runId, correlationId, inCausalOrder: Object.values(byName), byName, chunkTexts };
}
