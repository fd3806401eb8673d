/**
 * Consumer `knowledge-from-workflows`:
 * - `StepStarted` with kind EXTRACT → `ExtractionRequested` on `extraction-<documentId>` (the
 *   extractor finishes it once every chunk is stored); without `documentId` → `ExtractionFailed`;
 * - `RunCancelled` → `ExtractionCancelled` for each PENDING request of the run (dropped work).
 * Appends carry `{ correlationId: incoming.correlationId, causationId: incoming.eventId,
 * actor: 'system:knowledge' }` and commit with the inbox row.
 */
import type { EventMetadata, EventStore, IntegrationConsumer, IntegrationEvent, IntegrationTransport, Logger } from '../../../eventstore/index.ts';
import { handleOnce } from '../../../eventstore/index.ts';
import { extractionStreamId, type ExtractionCancelledData, type ExtractionFailedData, type ExtractionRequestedData } from '../events.ts';
import { EventRejectedError } from '../../../eventstore/parking.ts';
import { RunCancelledSchema, StepStartedSchema } from './incoming.ts';

/** Durable consumer name. */
export const WORKFLOWS_CONSUMER = 'knowledge-from-workflows';
/** Actor of every event knowledge appends. */
export const KNOWLEDGE_ACTOR = 'system:knowledge';
/** Stream of failures of EXTRACT steps that name no document. */
export const NO_DOCUMENT_STREAM = 'extraction-without-document';

/** Metadata of events appended because of `incoming`. */
export function causedBy(incoming: Pick<IntegrationEvent, 'eventId' | 'metadata'>): EventMetadata {
  return {
    ...(incoming.metadata.correlationId ? { correlationId: incoming.metadata.correlationId } : {}),
    causationId: incoming.eventId,
    actor: KNOWLEDGE_ACTOR,
  };
}

/** Starts the consumer; `onRequested` runs after an ExtractionRequested committed. */
export function startWorkflowsConsumer(options: {
  store: EventStore;
  transport: IntegrationTransport;
  logger: Logger;
  onRequested(documentId: string): void;
}): Promise<IntegrationConsumer> {
  const { store } = options;
  return options.transport.consume({
    consumer: WORKFLOWS_CONSUMER,
    source: 'workflows',
    types: ['StepStarted', 'RunCancelled'],
    async handler(event) {
      if (event.type === 'StepStarted') return stepStarted(event);
      if (event.type === 'RunCancelled') return runCancelled(event);
    },
  });

  async function stepStarted(event: IntegrationEvent): Promise<void> {
    const parsed = StepStartedSchema.safeParse(event.data);
    // A payload that breaks the contract would fail forever: parked at once (eventstore/parking.ts).
    if (!parsed.success) throw EventRejectedError.fromZod(event.type, parsed.error);
    const s = parsed.data;
    if (s.kind !== 'EXTRACT') return; // other kinds are not ours; nothing to remember
    const metadata = causedBy(event);
    if (!s.documentId) {
      const failed: ExtractionFailedData = { documentId: '', runId: s.runId, stepName: s.stepName, reason: 'StepStarted of an EXTRACT step has no documentId' };
      await handleOnce(store, event, (tx) => tx.appendToStream(NO_DOCUMENT_STREAM, [{ type: 'ExtractionFailed', data: failed }], { metadata }));
      return;
    }
    const documentId = s.documentId;
    const requested: ExtractionRequestedData = { documentId, runId: s.runId, stepName: s.stepName, attempt: s.attempt };
    const outcome = await handleOnce(store, event, (tx) =>
      tx.appendToStream(extractionStreamId(documentId), [{ type: 'ExtractionRequested', data: requested }], { metadata }),
    );
    if (outcome.handled) options.onRequested(documentId);
  }

  async function runCancelled(event: IntegrationEvent): Promise<void> {
    const parsed = RunCancelledSchema.safeParse(event.data);
    if (!parsed.success) throw EventRejectedError.fromZod(event.type, parsed.error);
    const { runId, reason } = parsed.data;
    await handleOnce(store, event, async (tx) => {
      const { rows } = await tx.client.query<{ step_name: string; attempt: number; document_id: string }>(
        `SELECT step_name, attempt, document_id FROM extraction_requests WHERE run_id = $1 AND status = 'PENDING' ORDER BY requested_at`,
        [runId],
      );
      for (const r of rows) {
        const data: ExtractionCancelledData = { documentId: r.document_id, runId, stepName: r.step_name, attempt: r.attempt, reason: reason ?? 'run cancelled' };
        await tx.appendToStream(extractionStreamId(r.document_id), [{ type: 'ExtractionCancelled', data }], { metadata: causedBy(event) });
      }
    });
  }
}
