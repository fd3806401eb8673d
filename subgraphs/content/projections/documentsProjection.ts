/**
 * Inline projection of document streams into `documents` and `chunks`
 * (prisma/content/schema.prisma). Runs in the append's transaction, so `ingestDocument`
 * returns its own write. `chunks.search` = `to_tsvector('english', text)` is written here (a
 * generated column would be reported as drift by Prisma's differ: it cannot express one).
 */
import type { ClientBase } from 'pg';
import type { Projection, RecordedEvent } from '../../../eventstore/index.ts';
import { DOCUMENT_EVENT_TYPES, type DocumentChunked, type DocumentEvent } from '../document/events.ts';

/** Text search configuration of `chunks.search` and of `searchChunks` queries. */
export const SEARCH_CONFIG = 'english';

/** Projection `content.documents`: handles every document event. */
export const documentsProjection: Projection = {
  name: 'content.documents',
  handles: DOCUMENT_EVENT_TYPES,
  async apply(events, client) {
    // Consecutive DocumentChunked events are inserted with one statement.
    let chunkRun: RecordedEvent[] = [];
    for (const recorded of events) {
      if (recorded.type === 'DocumentChunked') {
        chunkRun.push(recorded);
        continue;
      }
      await insertChunks(chunkRun, client);
      chunkRun = [];
      await applyOne(recorded, client);
    }
    await insertChunks(chunkRun, client);
  },
  async reset(client) {
    await client.query('TRUNCATE chunks, documents');
  },
};

async function applyOne(recorded: RecordedEvent, client: ClientBase): Promise<void> {
  const event = recorded as unknown as DocumentEvent;
  switch (event.type) {
    case 'DocumentIngested': {
      const d = event.data;
      await client.query(
        `INSERT INTO documents (id, title, status, source_kind, corpus_file, size_bytes, char_count, chunk_count, run_id, step_name, seq, version, created_at, updated_at)
         VALUES ($1, $2, 'PROCESSING', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::timestamptz, $12::timestamptz)`,
        [d.documentId, d.title, d.source, d.corpusFile, d.sizeBytes, d.charCount, d.chunkCount, d.runId, d.stepName, recorded.globalPosition, recorded.streamPosition, d.ingestedAt],
      );
      return;
    }
    case 'DocumentProcessed': {
      const d = event.data;
      await client.query(`UPDATE documents SET status = 'PROCESSED', version = $2, updated_at = $3::timestamptz WHERE id = $1`, [
        d.documentId,
        recorded.streamPosition,
        d.processedAt,
      ]);
      return;
    }
    case 'DocumentFailed': {
      const d = event.data;
      await client.query(
        `INSERT INTO documents (id, title, status, source_kind, corpus_file, size_bytes, char_count, chunk_count, run_id, step_name, failure_code, failure_reason, seq, version, created_at, updated_at)
         VALUES ($1, $2, 'FAILED', $3, $4, $5, 0, 0, $6, $7, $8, $9, $10, $11, $12::timestamptz, $12::timestamptz)
         ON CONFLICT (id) DO UPDATE SET status = 'FAILED', failure_code = EXCLUDED.failure_code, failure_reason = EXCLUDED.failure_reason,
           version = EXCLUDED.version, updated_at = EXCLUDED.updated_at`,
        [d.documentId, d.title, d.source ?? 'TEXT', d.corpusFile, d.sizeBytes, d.runId, d.stepName, d.code, d.reason, recorded.globalPosition, recorded.streamPosition, d.failedAt],
      );
      return;
    }
  }
}

async function insertChunks(events: readonly RecordedEvent[], client: ClientBase): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((e) => (e as unknown as DocumentChunked).data);
  await client.query(
    `INSERT INTO chunks (document_id, chunk_index, text, start_offset, end_offset, search)
     SELECT c.document_id, c.chunk_index, c.text, c.start_offset, c.end_offset, to_tsvector('${SEARCH_CONFIG}', c.text)
       FROM unnest($1::text[], $2::int[], $3::text[], $4::int[], $5::int[]) AS c(document_id, chunk_index, text, start_offset, end_offset)`,
    [rows.map((r) => r.documentId), rows.map((r) => r.chunkIndex), rows.map((r) => r.text), rows.map((r) => r.startOffset), rows.map((r) => r.endOffset)],
  );
  const last = events.at(-1)!;
  await client.query(`UPDATE documents SET version = $2 WHERE id = $1`, [rows[0]!.documentId, last.streamPosition]);
}
