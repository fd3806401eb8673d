/**
 * Events of the document aggregate (stream `document-<id>`). Times are ISO-8601 UTC strings;
 * offsets and counts of characters are UTF-16 code units of the normalised text.
 *
 * A successful ingestion appends, in one transaction: DocumentIngested, one DocumentChunked
 * per chunk (never the whole text in one event: see text/chunkText.ts), DocumentProcessed.
 * A saga ingestion whose input is rejected appends only DocumentFailed (the GraphQL mutation
 * stores nothing on rejection: its caller gets the error).
 */

/** Where a document's text came from. */
export type DocumentSource = 'TEXT' | 'CORPUS_FILE';

/** A document was accepted; its `chunkCount` DocumentChunked events follow. */
export interface DocumentIngested {
  type: 'DocumentIngested';
  data: {
    documentId: string;
    title: string;
    source: DocumentSource;
    /** File name inside the corpus directory when source = CORPUS_FILE, else null. */
    corpusFile: string | null;
    /** Input size as received, in bytes. */
    sizeBytes: number;
    /** Length of the normalised text, in characters. */
    charCount: number;
    chunkCount: number;
    /** Workflow run and step of a saga ingestion, else null. */
    runId: string | null;
    stepName: string | null;
    ingestedAt: string;
  };
}

/** One chunk of the document's normalised text (text[startOffset, endOffset)). */
export interface DocumentChunked {
  type: 'DocumentChunked';
  data: { documentId: string; chunkIndex: number; chunkCount: number; text: string; startOffset: number; endOffset: number };
}

/** Every chunk of the document is stored and indexed. */
export interface DocumentProcessed {
  type: 'DocumentProcessed';
  data: { documentId: string; chunkCount: number; runId: string | null; stepName: string | null; processedAt: string };
}

/**
 * A saga ingestion was rejected. `code` is a ContentRejectionReason (e.g. `EMPTY_DOCUMENT`,
 * `CORPUS_FILE_NOT_FOUND`), `reason` the human-readable message.
 */
export interface DocumentFailed {
  type: 'DocumentFailed';
  data: {
    documentId: string;
    title: string;
    source: DocumentSource | null;
    corpusFile: string | null;
    /** Input size in bytes when it could be read, else 0. */
    sizeBytes: number;
    runId: string | null;
    stepName: string | null;
    code: string;
    reason: string;
    failedAt: string;
  };
}

export type DocumentEvent = DocumentIngested | DocumentChunked | DocumentProcessed | DocumentFailed;
export const DOCUMENT_EVENT_TYPES: readonly DocumentEvent['type'][] = ['DocumentIngested', 'DocumentChunked', 'DocumentProcessed', 'DocumentFailed'];

/** Stream id of a document. */
export function documentStreamId(documentId: string): string {
  return `document-${documentId}`;
}
