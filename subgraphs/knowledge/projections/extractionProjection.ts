/**
 * Inline projection of extraction requests and their outcomes into `extraction_requests` and
 * `document_extractions` (prisma/knowledge/schema.prisma). The extractor reads the PENDING
 * requests from here; the row exists exactly when ExtractionRequested committed.
 */
import type { ClientBase } from 'pg';
import type { Projection, RecordedEvent } from '../../../eventstore/index.ts';
import type {
  DocumentEntitiesExtractedData,
  ExtractionCancelledData,
  ExtractionFailedData,
  ExtractionRequestedData,
} from '../events.ts';

/** Projection `knowledge.extractions`. */
export const extractionProjection: Projection = {
  name: 'knowledge.extractions',
  handles: ['ExtractionRequested', 'ExtractionCancelled', 'DocumentEntitiesExtracted', 'ExtractionFailed'],
  async apply(events, client) {
    for (const event of events) await applyOne(event, client);
  },
  async reset(client) {
    await client.query('TRUNCATE extraction_requests, document_extractions');
  },
};

async function applyOne(event: RecordedEvent, client: ClientBase): Promise<void> {
  switch (event.type) {
    case 'ExtractionRequested': {
      const d = event.data as ExtractionRequestedData;
      await client.query(
        `INSERT INTO extraction_requests (run_id, step_name, attempt, document_id, status, correlation_id, causation_id, requested_at, updated_at)
         VALUES ($1, $2, $3, $4, 'PENDING', $5, $6, $7, $7) ON CONFLICT DO NOTHING`,
        [d.runId, d.stepName, d.attempt, d.documentId, event.metadata.correlationId ?? null, event.metadata.causationId ?? event.eventId, event.recordedAt],
      );
      return;
    }
    case 'ExtractionCancelled': {
      const d = event.data as ExtractionCancelledData;
      await client.query(
        `UPDATE extraction_requests SET status = 'CANCELLED', reason = $4, updated_at = $5
          WHERE run_id = $1 AND step_name = $2 AND attempt = $3 AND status = 'PENDING'`,
        [d.runId, d.stepName, d.attempt, d.reason, event.recordedAt],
      );
      return;
    }
    case 'DocumentEntitiesExtracted': {
      const d = event.data as DocumentEntitiesExtractedData;
      await client.query(
        `INSERT INTO document_extractions (document_id, chunk_count, entity_count, relation_count, extracted_at)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
        [d.documentId, d.chunkCount, d.entityCount, d.relationCount, event.recordedAt],
      );
      if (d.runId !== undefined) await finish(client, d.runId, d.stepName, 'COMPLETED', null, event.recordedAt);
      return;
    }
    case 'ExtractionFailed': {
      const d = event.data as ExtractionFailedData;
      if (d.runId !== undefined) await finish(client, d.runId, d.stepName, 'FAILED', d.reason, event.recordedAt);
      return;
    }
  }
}

async function finish(client: ClientBase, runId: string, stepName: string | undefined, status: string, reason: string | null, at: Date): Promise<void> {
  await client.query(
    `UPDATE extraction_requests SET status = $3, reason = $4, updated_at = $5
      WHERE run_id = $1 AND step_name = $2 AND status = 'PENDING'`,
    [runId, stepName ?? '', status, reason, at],
  );
}
