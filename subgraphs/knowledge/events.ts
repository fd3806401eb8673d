/**
 * Events of the knowledge service's own log. Streams:
 * - `entity-<id>`: `EntityDiscovered` (appended with expected version `no_stream`);
 * - `extraction-<documentId>`: `ExtractionRequested`, `ExtractionCancelled` (private),
 *   `EntityMentioned`, `RelationObserved` (one append per chunk), `DocumentEntitiesExtracted`,
 *   `ExtractionFailed`.
 * Public ones (publicEvents.ts) are published by the relay; payload fields are those of the
 * issue-3 contract.
 */
import type { EntityKind } from './extraction/extractEntities.ts';

/** `EntityDiscovered`: a new entity. Public. */
export interface EntityDiscoveredData {
  entityId: string;
  name: string;
  kind: EntityKind;
}
/** `EntityMentioned`: occurrences of an entity in one chunk. Public. */
export interface EntityMentionedData {
  entityId: string;
  documentId: string;
  chunkIndex: number;
  count: number;
}
/** `RelationObserved`: two entities co-occur in one chunk (`fromEntityId < toEntityId`). Public. */
export interface RelationObservedData {
  fromEntityId: string;
  toEntityId: string;
  documentId: string;
  chunkIndex: number;
  weight: number;
}
/** `DocumentEntitiesExtracted`: an EXTRACT request is done. Public. `chunkCount` is private (dropped when published). */
export interface DocumentEntitiesExtractedData {
  documentId: string;
  runId?: string;
  stepName?: string;
  /** Distinct entities of the document. */
  entityCount: number;
  /** Distinct related pairs of the document. */
  relationCount: number;
  chunkCount: number;
}
/** `ExtractionFailed`. Public. */
export interface ExtractionFailedData {
  documentId: string;
  runId?: string;
  stepName?: string;
  reason: string;
}
/** `ExtractionRequested`: workflows asked to extract a document (StepStarted, kind EXTRACT). Private. */
export interface ExtractionRequestedData {
  documentId: string;
  runId: string;
  stepName: string;
  attempt: number;
}
/** `ExtractionCancelled`: the run was cancelled while the request was pending. Private. */
export interface ExtractionCancelledData {
  documentId: string;
  runId: string;
  stepName: string;
  attempt: number;
  reason: string;
}

/** Stream of a document's extraction. */
export const extractionStreamId = (documentId: string): string => `extraction-${documentId}`;

/** Every event type the knowledge service appends. */
export const KNOWLEDGE_EVENT_TYPES = [
  'EntityDiscovered',
  'EntityMentioned',
  'RelationObserved',
  'DocumentEntitiesExtracted',
  'ExtractionFailed',
  'ExtractionRequested',
  'ExtractionCancelled',
] as const;
