/** Settings of the knowledge service read from the environment (README, "Configuration"). */
import { z } from 'zod';
import { DEFAULT_CHUNK_WAIT_MS } from '../subgraphs/knowledge/extraction/Extractor.ts';
import { defaultExtractionWorkers, MAX_EXTRACTION_WORKERS } from '../subgraphs/knowledge/extraction/extractionPool.ts';

const schema = z.object({
  KNOWLEDGE_CHUNK_WAIT_MS: z.coerce
    .number()
    .int()
    .min(100, 'must be at least 100 ms')
    .max(86_400_000, 'must be at most 86400000 ms (24 h)')
    .default(DEFAULT_CHUNK_WAIT_MS),
  KNOWLEDGE_EXTRACTION_WORKERS: z.coerce
    .number()
    .int()
    .min(1, 'must be at least 1')
    .max(MAX_EXTRACTION_WORKERS, `must be at most ${MAX_EXTRACTION_WORKERS}`)
    .optional(),
});

/** Knowledge-specific settings. */
export interface KnowledgeSettings {
  /**
   * `KNOWLEDGE_CHUNK_WAIT_MS`: how long an EXTRACT step's request waits for all of its document's
   * chunks before it fails with a reason naming them, in ms (100..86400000). @default 120000
   */
  chunkWaitMs: number;
  /**
   * `KNOWLEDGE_EXTRACTION_WORKERS`: extraction worker threads, and so documents extracted at once
   * (1..64). @default the cores (`os.availableParallelism()`)
   */
  extractionWorkers: number;
}

/**
 * Reads `KNOWLEDGE_CHUNK_WAIT_MS` (default 120000) and `KNOWLEDGE_EXTRACTION_WORKERS` (default
 * the cores); empty = default.
 * @throws Error naming the variable, what was expected and what arrived, when it is invalid
 */
export function parseKnowledgeSettings(env: Record<string, string | undefined>): KnowledgeSettings {
  const result = schema.safeParse({
    KNOWLEDGE_CHUNK_WAIT_MS: env.KNOWLEDGE_CHUNK_WAIT_MS || undefined,
    KNOWLEDGE_EXTRACTION_WORKERS: env.KNOWLEDGE_EXTRACTION_WORKERS || undefined,
  });
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.')} ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`);
    throw new Error(`Invalid knowledge configuration: ${issues.join('; ')}`);
  }
  return { chunkWaitMs: result.data.KNOWLEDGE_CHUNK_WAIT_MS, extractionWorkers: result.data.KNOWLEDGE_EXTRACTION_WORKERS ?? defaultExtractionWorkers() };
}
