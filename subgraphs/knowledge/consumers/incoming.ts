/**
 * The integration events knowledge consumes (issue-3 contract, schema version 1), as zod
 * schemas of the fields it uses (other fields are ignored).
 */
import { z } from 'zod';

/** content's `DocumentChunked` (one event per chunk). Offsets in characters. */
export const DocumentChunkedSchema = z.object({
  documentId: z.string().min(1),
  chunkIndex: z.number().int().nonnegative(),
  chunkCount: z.number().int().positive(),
  text: z.string(),
  startOffset: z.number().int().nonnegative(),
  endOffset: z.number().int().nonnegative(),
});
export type DocumentChunked = z.infer<typeof DocumentChunkedSchema>;

/** workflows' `StepStarted`; `documentId` is set for EXTRACT steps. */
export const StepStartedSchema = z.object({
  runId: z.string().min(1),
  stepName: z.string().min(1),
  kind: z.string(),
  attempt: z.number().int().positive(),
  documentId: z.string().min(1).optional().nullable(),
});

/** workflows' `RunCancelled`. */
export const RunCancelledSchema = z.object({ runId: z.string().min(1), reason: z.string().optional().nullable() });
