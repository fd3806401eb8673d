/**
 * A document as of one of its events: the `documents` row the documents projection
 * (projections/documentsProjection.ts) would hold right after that event, plus how many chunks
 * were stored by then, folded in memory from the stream `document-<id>`. Subscription updates
 * (live/) carry it, so `documentProgress` shows each event's own state: PROCESSING after
 * DocumentIngested and each DocumentChunked, PROCESSED after DocumentProcessed, FAILED after
 * DocumentFailed.
 *
 * The fold mirrors the projection's SQL (parity test: live/contentLiveFields.int.spec.ts): change one,
 * change both. Times are the events' own (`ingestedAt`, `processedAt`, `failedAt`), as in the
 * read model; a DocumentChunked has none and leaves `updatedAt` as it was (its chunks are stored
 * in the ingestion's transaction).
 */
import type { RecordedEvent } from '../../../eventstore/index.ts';
import type { DocumentRow } from '../readModel.ts';
import type { DocumentEvent } from './events.ts';

/** A document as of one event. */
export interface DocumentSnapshot extends DocumentRow {
  /**
   * DocumentChunked events folded so far: chunks `0..asOfChunks - 1` are the ones stored as of
   * this event (chunks are appended in index order), which `Document.chunks` serves for it.
   */
  asOfChunks: number;
}

/**
 * Folds a document's stream, in order from position 0, into the document as of its last event.
 * @returns null for an empty stream (or one whose first event names no document)
 */
export function foldDocumentSnapshot(events: readonly RecordedEvent[]): DocumentSnapshot | null {
  let state: DocumentSnapshot | null = null;
  for (const event of events) state = evolveDocumentSnapshot(state, event);
  return state;
}

/** The document as of `event`, given the document as of the event before (null before the first). Pure. */
export function evolveDocumentSnapshot(state: DocumentSnapshot | null, recorded: RecordedEvent): DocumentSnapshot | null {
  const event = recorded as unknown as DocumentEvent;
  switch (event.type) {
    case 'DocumentIngested': {
      const d = event.data;
      const at = new Date(d.ingestedAt);
      return {
        id: d.documentId,
        title: d.title,
        status: 'PROCESSING',
        sourceKind: d.source,
        corpusFile: d.corpusFile,
        sizeBytes: d.sizeBytes,
        charCount: d.charCount,
        chunkCount: d.chunkCount,
        runId: d.runId,
        stepName: d.stepName,
        failureCode: null,
        failureReason: null,
        seq: BigInt(recorded.globalPosition),
        version: recorded.streamPosition,
        createdAt: at,
        updatedAt: at,
        asOfChunks: 0,
      };
    }
    case 'DocumentChunked':
      return state === null ? null : { ...state, version: recorded.streamPosition, asOfChunks: state.asOfChunks + 1 };
    case 'DocumentProcessed':
      return state === null ? null : { ...state, status: 'PROCESSED', version: recorded.streamPosition, updatedAt: new Date(event.data.processedAt) };
    case 'DocumentFailed': {
      const d = event.data;
      const at = new Date(d.failedAt);
      // The projection's ON CONFLICT: a failure of a known document only changes these columns.
      if (state !== null) return { ...state, status: 'FAILED', failureCode: d.code, failureReason: d.reason, version: recorded.streamPosition, updatedAt: at };
      return {
        id: d.documentId,
        title: d.title,
        status: 'FAILED',
        sourceKind: d.source ?? 'TEXT',
        corpusFile: d.corpusFile,
        sizeBytes: d.sizeBytes,
        charCount: 0,
        chunkCount: 0,
        runId: d.runId,
        stepName: d.stepName,
        failureCode: d.code,
        failureReason: d.reason,
        seq: BigInt(recorded.globalPosition),
        version: recorded.streamPosition,
        createdAt: at,
        updatedAt: at,
        asOfChunks: 0,
      };
    }
    default:
      return state;
  }
}
