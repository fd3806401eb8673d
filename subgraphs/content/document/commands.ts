/** Commands of the document aggregate. `now` is injected by the caller (never read inside decide). */
import type { DocumentSource } from './events.ts';

/** Saga context of an ingestion requested by a workflow step. */
export interface StepRef {
  runId: string;
  stepName: string;
}

/**
 * Ingest a document: decode `input` (decodeText), chunk it (chunkText) and record it.
 * `input` is raw bytes (a corpus file) or a string (GraphQL `text`).
 */
export interface IngestDocument {
  type: 'IngestDocument';
  documentId: string;
  title: string;
  input: Uint8Array | string;
  source: DocumentSource;
  corpusFile: string | null;
  step: StepRef | null;
  now: Date;
}

/** Record that a saga ingestion was rejected (`code`: a ContentRejectionReason). */
export interface RecordIngestionFailure {
  type: 'RecordIngestionFailure';
  documentId: string;
  title: string;
  source: DocumentSource | null;
  corpusFile: string | null;
  sizeBytes: number;
  step: StepRef;
  code: string;
  reason: string;
  now: Date;
}

export type DocumentCommand = IngestDocument | RecordIngestionFailure;
