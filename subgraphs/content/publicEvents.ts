/**
 * The content service's integration events (issue 3 contract, schema version 1): the public
 * part of its event log that the relay publishes on `content.<EventType>`. Stored events carry
 * more (source, charCount, timestamps...); `toPublic` maps them to the declared payloads, with
 * null `runId`/`stepName`/`documentId` left out.
 */
import { z } from 'zod';
import type { PublicEvents, RecordedEvent } from '../../eventstore/index.ts';
import type { DocumentChunked, DocumentFailed, DocumentIngested, DocumentProcessed } from './document/events.ts';

/** `source` of content's integration events (and its subject prefix). */
export const CONTENT_SOURCE = 'content';

const stepRef = { runId: z.string().optional(), stepName: z.string().optional() };

/** DocumentIngested v1: a document was accepted; its chunks follow. */
export const DocumentIngestedV1 = z.object({ documentId: z.string(), title: z.string(), sizeBytes: z.number().int().nonnegative(), ...stepRef });
/** DocumentChunked v1: one chunk (≤ 4000 characters) of a document's normalised text. */
export const DocumentChunkedV1 = z.object({
  documentId: z.string(),
  chunkIndex: z.number().int().nonnegative(),
  chunkCount: z.number().int().positive(),
  text: z.string(),
  startOffset: z.number().int().nonnegative(),
  endOffset: z.number().int().nonnegative(),
});
/** DocumentProcessed v1: every chunk of the document is stored (the INGEST step's success). */
export const DocumentProcessedV1 = z.object({ documentId: z.string(), chunkCount: z.number().int().nonnegative(), ...stepRef });
/** DocumentFailed v1: a saga ingestion was rejected; `code` is a ContentRejectionReason. */
export const DocumentFailedV1 = z.object({ documentId: z.string().optional(), ...stepRef, reason: z.string(), code: z.string() });

/** Drops null values (the public schemas use absent optional fields). */
function withoutNulls(data: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(data).filter(([, v]) => v !== null));
}

/** Public event declarations of the content service, for `startRelay`. */
export const contentPublicEvents: PublicEvents = {
  DocumentIngested: {
    version: 1,
    schema: DocumentIngestedV1,
    toPublic: (e: RecordedEvent) => {
      const d = e.data as DocumentIngested['data'];
      return withoutNulls({ documentId: d.documentId, title: d.title, sizeBytes: d.sizeBytes, runId: d.runId, stepName: d.stepName });
    },
  },
  DocumentChunked: {
    version: 1,
    schema: DocumentChunkedV1,
    toPublic: (e: RecordedEvent) => {
      const d = e.data as DocumentChunked['data'];
      return { documentId: d.documentId, chunkIndex: d.chunkIndex, chunkCount: d.chunkCount, text: d.text, startOffset: d.startOffset, endOffset: d.endOffset };
    },
  },
  DocumentProcessed: {
    version: 1,
    schema: DocumentProcessedV1,
    toPublic: (e: RecordedEvent) => {
      const d = e.data as DocumentProcessed['data'];
      return withoutNulls({ documentId: d.documentId, chunkCount: d.chunkCount, runId: d.runId, stepName: d.stepName });
    },
  },
  DocumentFailed: {
    version: 1,
    schema: DocumentFailedV1,
    toPublic: (e: RecordedEvent) => {
      const d = e.data as DocumentFailed['data'];
      return withoutNulls({ documentId: d.documentId, runId: d.runId, stepName: d.stepName, reason: d.reason, code: d.code });
    },
  },
};
