/**
 * Consumer `knowledge-from-content`: stores content's `DocumentChunked` chunks in `chunks`
 * (knowledge's own copy of the text), with the inbox row in the same transaction, then tells the
 * extractor that the document may be complete.
 */
import type { EventStore, IntegrationConsumer, IntegrationTransport, Logger } from '../../../eventstore/index.ts';
import { handleBatchOnce, handleOnce, type IntegrationEvent } from '../../../eventstore/index.ts';
import { EventRejectedError } from '../../../eventstore/parking.ts';
import { DocumentChunkedSchema } from './incoming.ts';

/** Durable consumer name. */
export const CONTENT_CONSUMER = 'knowledge-from-content';

/** Starts the consumer; `onChunkStored` runs after each stored chunk's transaction committed. */
export function startContentConsumer(options: {
  store: EventStore;
  transport: IntegrationTransport;
  logger: Logger;
  onChunkStored(documentId: string): void;
}): Promise<IntegrationConsumer> {
  const { store } = options;
  return options.transport.consume({
    consumer: CONTENT_CONSUMER,
    source: 'content',
    types: ['DocumentChunked'],
    async handler(event) {
      const parsed = DocumentChunkedSchema.safeParse(event.data);
      // A payload that breaks the contract would fail forever: parked at once (eventstore/parking.ts).
      if (!parsed.success) throw EventRejectedError.fromZod(event.type, parsed.error);
      const c = parsed.data;
      const outcome = await handleOnce(store, event, async (tx) => {
        await tx.client.query(
          `INSERT INTO chunks (document_id, chunk_index, chunk_count, text, start_offset, end_offset, received_at)
           VALUES ($1, $2, $3, $4, $5, $6, now()) ON CONFLICT (document_id, chunk_index) DO NOTHING`,
          [c.documentId, c.chunkIndex, c.chunkCount, c.text, c.startOffset, c.endOffset],
        );
      });
      if (outcome.handled) options.onChunkStored(c.documentId);
    },
    // A book's hundreds of chunks arrive together: stored in one transaction, one commit.
    async handleBatch(events: IntegrationEvent[]) {
      const valid = events.map((event) => {
        const parsed = DocumentChunkedSchema.safeParse(event.data);
        // A payload that breaks the contract: the batch fails, and parking handles its events one
        // by one, parking this one (see `handler`).
        if (!parsed.success) throw EventRejectedError.fromZod(event.type, parsed.error);
        return { event, chunk: parsed.data as typeof parsed.data | null };
      });
      const { handled } = await handleBatchOnce(
        store,
        valid.map(({ event, chunk }) => ({ source: event.source, eventId: event.eventId, type: event.type, chunk })),
        async (tx, fresh) => {
          const chunks = fresh.flatMap((f) => (f.chunk ? [f.chunk] : []));
          if (chunks.length === 0) return;
          await tx.client.query(
            `INSERT INTO chunks (document_id, chunk_index, chunk_count, text, start_offset, end_offset, received_at)
             SELECT *, now() FROM unnest($1::text[], $2::int[], $3::int[], $4::text[], $5::int[], $6::int[])
             ON CONFLICT (document_id, chunk_index) DO NOTHING`,
            [
              chunks.map((c) => c.documentId),
              chunks.map((c) => c.chunkIndex),
              chunks.map((c) => c.chunkCount),
              chunks.map((c) => c.text),
              chunks.map((c) => c.startOffset),
              chunks.map((c) => c.endOffset),
            ],
          );
        },
      );
      for (const documentId of new Set(handled.flatMap((h) => (h.chunk ? [h.chunk.documentId] : [])))) options.onChunkStored(documentId);
    },
  });
}
