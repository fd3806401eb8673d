/** State of the document aggregate and how events change it. */
import type { DocumentEvent } from './events.ts';

/** A document as the decider sees it. */
export type DocumentState =
  | { status: 'NONE' }
  | { status: 'PROCESSING' | 'PROCESSED'; documentId: string; chunkCount: number; chunksSeen: number }
  | { status: 'FAILED'; documentId: string; code: string };

/** The state of a stream with no events. */
export function initialDocumentState(): DocumentState {
  return { status: 'NONE' };
}

/** Applies one event. Pure. */
export function evolveDocument(state: DocumentState, event: DocumentEvent): DocumentState {
  switch (event.type) {
    case 'DocumentIngested':
      return { status: 'PROCESSING', documentId: event.data.documentId, chunkCount: event.data.chunkCount, chunksSeen: 0 };
    case 'DocumentChunked':
      return state.status === 'PROCESSING' ? { ...state, chunksSeen: state.chunksSeen + 1 } : state;
    case 'DocumentProcessed':
      return state.status === 'PROCESSING' ? { ...state, status: 'PROCESSED' } : state;
    case 'DocumentFailed':
      return { status: 'FAILED', documentId: event.data.documentId, code: event.data.code };
    default:
      return state;
  }
}
