/**
 * What the workflows saga reads of other services' integration events (issue 3 contract,
 * schema version 1). Only the fields workflows uses are declared; others are ignored, so a
 * producer may add fields without breaking this consumer.
 */
import { z } from 'zod';

/** Optional link of a content/knowledge event to the workflow step that asked for it. */
const stepRef = { runId: z.string().min(1).optional(), stepName: z.string().min(1).optional() };

/** content's DocumentProcessed v1: every chunk of `documentId` is stored (an INGEST step succeeded). */
export const DocumentProcessedV1 = z.object({ documentId: z.string().min(1), chunkCount: z.number().int().nonnegative(), ...stepRef });
/** content's DocumentFailed v1: an ingestion was rejected (`code` is content's rejection reason). */
export const DocumentFailedV1 = z.object({ documentId: z.string().optional(), reason: z.string(), code: z.string(), ...stepRef });
/** knowledge's DocumentEntitiesExtracted v1: extraction of `documentId` finished (an EXTRACT step succeeded). */
export const DocumentEntitiesExtractedV1 = z.object({
  documentId: z.string(),
  entityCount: z.number().int().nonnegative(),
  relationCount: z.number().int().nonnegative(),
  ...stepRef,
});
/** knowledge's ExtractionFailed v1: extraction of `documentId` failed. */
export const ExtractionFailedV1 = z.object({ documentId: z.string(), reason: z.string(), ...stepRef });
