/**
 * Commands of the run aggregate. `now` is injected by the caller (a `Clock`), never read in
 * decide.
 */
import type { StepDefinition } from '../workflow/events.ts';
import type { StepOutcomeSource } from './events.ts';

/** The workflow a run starts from, loaded by the caller from the workflow stream. */
export interface WorkflowSnapshot {
  workflowId: string;
  revision: number;
  steps: StepDefinition[];
}

/**
 * Start a run. `runId` is derived from (workflowId, idempotencyKey) when a key is given (see
 * `runIdFor`), so a repeated start lands on the same stream. `workflow` is null when the
 * workflow does not exist.
 */
export interface StartRun {
  type: 'StartRun';
  runId: string;
  workflowId: string;
  workflow: WorkflowSnapshot | null;
  input: unknown;
  idempotencyKey: string | null;
  now: Date;
}

/** Report success of a step's running attempt (`attempt`, when given, must be the running one). */
export interface CompleteStep {
  type: 'CompleteStep';
  runId: string;
  stepName: string;
  output: unknown;
  source: StepOutcomeSource;
  attempt?: number;
  now: Date;
}

/** Report failure of a step's running attempt; the retry policy decides what follows. */
export interface FailStep {
  type: 'FailStep';
  runId: string;
  stepName: string;
  error: string;
  source: StepOutcomeSource;
  attempt?: number;
  now: Date;
}

/**
 * Manual retry. Allowed when (a) the run is FAILED and `stepName` is the step that failed it:
 * the run reopens and the step gets a fresh `maxAttempts` budget; or (b) the run is RUNNING and
 * the step waits for a scheduled retry: it starts now instead of after its backoff.
 */
export interface RetryStep {
  type: 'RetryStep';
  runId: string;
  stepName: string;
  now: Date;
}

/** Cancel a RUNNING run. */
export interface CancelRun {
  type: 'CancelRun';
  runId: string;
  reason: string | null;
  now: Date;
}

/**
 * Issued by the DeadlineScanner for a step whose deadline passed. A no-op ([]) when the timer
 * is stale (the attempt already ended, or `now` is before the deadline).
 */
export interface TimeoutStep {
  type: 'TimeoutStep';
  runId: string;
  stepName: string;
  attempt: number;
  now: Date;
}

/**
 * Issued by the DeadlineScanner when a scheduled retry is due: starts attempt `attempt`. A
 * no-op ([]) when stale.
 */
export interface StartScheduledRetry {
  type: 'StartScheduledRetry';
  runId: string;
  stepName: string;
  attempt: number;
  now: Date;
}

export type RunCommand = StartRun | CompleteStep | FailStep | RetryStep | CancelRun | TimeoutStep | StartScheduledRetry;
