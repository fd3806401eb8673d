/**
 * Settings of the workflows service that come from the environment, parsed once at the
 * composition root (bin/start.ts, config/services.ts) and passed to `startWorkflowsService`.
 * The database URL, pool limits, host and port are the shared ones (README configuration
 * table); this file only adds the service's own.
 */
import { z } from 'zod';
import { DEFAULT_DEADLINE_SCAN_INTERVAL_MS } from './deadlines/DeadlineScanner.ts';

const schema = z.object({
  WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS: z.coerce
    .number()
    .int()
    .min(10, 'must be at least 10 ms')
    .max(3_600_000, 'must be at most 3600000 ms (1 h)')
    .default(DEFAULT_DEADLINE_SCAN_INTERVAL_MS),
});

/** The workflows service's own settings. */
export interface WorkflowsSettings {
  /** Pause between two scans of `run_deadlines`, in ms (10..3600000). @default 1000 */
  deadlineScanIntervalMs: number;
}

/**
 * Reads `WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS` (default 1000).
 * @throws Error naming the variable, what was expected and what arrived, when it is invalid
 */
export function parseWorkflowsSettings(env: Record<string, string | undefined>): WorkflowsSettings {
  const result = schema.safeParse({ WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS: env.WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS || undefined });
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.')} ${i.message} (got ${JSON.stringify(env[String(i.path[0])])})`);
    throw new Error(`Invalid workflows configuration: ${issues.join('; ')}`);
  }
  return { deadlineScanIntervalMs: result.data.WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS };
}
