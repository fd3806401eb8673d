/**
 * The DeadlineScanner fires step timeouts and scheduled retries. Timers live in the
 * `run_deadlines` read model (one row per running run, written by the runs projection in the
 * same transaction as the events that set or clear them), never only in memory: a restarted
 * service finds every pending deadline on its first scan (issue 2: "deadlines survive a
 * restart (kept in a read model and scanned), never held only in a timer").
 *
 * Several scanners (processes) may scan the same database: each due row becomes a command on
 * the run stream appended at the version it read, so when two scanners fire the same timer one
 * append wins and the other, on its retry, sees the attempt already ended and decides nothing.
 */
import type pg from 'pg';
import type { Logger } from '../../../eventstore/index.ts';
import type { Clock } from '../clock.ts';
import type { CommandHandlers, RequestMetadata } from '../commandHandlers.ts';
import type { DeadlineKind } from '../projections/runsProjection.ts';

/** Default pause between two scans, in ms. */
export const DEFAULT_DEADLINE_SCAN_INTERVAL_MS = 1000;

/** Actor recorded on events the scanner appends. */
export const DEADLINE_SCANNER_ACTOR = 'system:deadline-scanner';

/** Options of `startDeadlineScanner`. */
export interface DeadlineScannerOptions {
  pool: pg.Pool;
  commands: Pick<CommandHandlers, 'timeoutStep' | 'startScheduledRetry'>;
  clock: Clock;
  /** Pause between the end of a scan and the next one, in ms. @default 1000 */
  intervalMs?: number;
  /** Due rows handled per scan, earliest first. @default 100 */
  batchSize?: number;
  /** @default silent */
  logger?: Logger;
}

/** A running scanner. */
export interface DeadlineScanner {
  /** Fires every due timer once now; resolves with the number of timers that appended events. */
  scanOnce(): Promise<number>;
  /** Stops the loop and waits for a scan in progress. Idempotent. */
  close(): Promise<void>;
}

interface DueRow {
  run_id: string;
  step_name: string;
  attempt: number;
  kind: DeadlineKind;
  causation_id: string;
  correlation_id: string | null;
}

/**
 * Starts scanning at once, then every `intervalMs`. A failing scan is logged and retried at the
 * next tick; one failing timer does not stop the others.
 */
export function startDeadlineScanner(options: DeadlineScannerOptions): DeadlineScanner {
  const intervalMs = options.intervalMs ?? DEFAULT_DEADLINE_SCAN_INTERVAL_MS;
  const batchSize = options.batchSize ?? 100;
  const logger = options.logger;
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  async function fire(row: DueRow): Promise<number> {
    const meta: RequestMetadata = { actor: DEADLINE_SCANNER_ACTOR, causationId: row.causation_id };
    if (row.correlation_id !== null) meta.correlationId = row.correlation_id;
    const appended =
      row.kind === 'STEP_TIMEOUT'
        ? await options.commands.timeoutStep(row.run_id, row.step_name, row.attempt, meta)
        : await options.commands.startScheduledRetry(row.run_id, row.step_name, row.attempt, meta);
    if (appended === 0) {
      // The run's state says this timer is over (another scanner fired it, or the step ended):
      // drop the row unless a newer timer replaced it meanwhile (it has another causation id).
      await options.pool.query('DELETE FROM run_deadlines WHERE run_id = $1 AND causation_id = $2 AND due_at <= $3::timestamptz', [
        row.run_id,
        row.causation_id,
        options.clock().toISOString(),
      ]);
    }
    return appended > 0 ? 1 : 0;
  }

  async function scan(): Promise<number> {
    const now = options.clock();
    const { rows } = await options.pool.query<DueRow>(
      `SELECT run_id, step_name, attempt, kind, causation_id, correlation_id
         FROM run_deadlines WHERE due_at <= $1::timestamptz ORDER BY due_at LIMIT $2`,
      [now.toISOString(), batchSize],
    );
    let fired = 0;
    for (const row of rows) {
      if (closed) break;
      try {
        fired += await fire(row);
      } catch (error) {
        logger?.error({ err: error, runId: row.run_id, stepName: row.step_name, kind: row.kind }, 'deadline scanner: firing a timer failed');
      }
    }
    return fired;
  }

  function scanOnce(): Promise<number> {
    if (closed) return Promise.resolve(0);
    if (running) return running.then(() => scanOnce());
    const current = scan().finally(() => {
      running = undefined;
    });
    running = current;
    return current;
  }

  function schedule(delayMs: number): void {
    if (closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      scanOnce()
        .catch((error: unknown) => logger?.error({ err: error }, 'deadline scanner: scan failed'))
        .finally(() => schedule(intervalMs));
    }, delayMs);
  }
  schedule(0);

  let closing: Promise<void> | undefined;
  return {
    scanOnce,
    close() {
      closing ??= (async () => {
        closed = true;
        if (timer) clearTimeout(timer);
        timer = undefined;
        await running?.catch(() => {});
      })();
      return closing;
    },
  };
}
