/**
 * Events of the run aggregate (stream `run-<id>`). Times are ISO-8601 UTC strings; `attempt`
 * numbers start at 1 and only grow within a step.
 */
import type { StepDefinition, StepKind } from '../workflow/events.ts';

/** Why a step failed, as recorded in events and read models. */
export interface StepError {
  message: string;
}

/**
 * Who reported a step's outcome: `api` (the GraphQL mutations, EXTERNAL steps), `content`
 * (INGEST steps, from content's integration events) or `knowledge` (EXTRACT steps). See
 * `COMPLETION_SOURCES` in decide.ts.
 */
export type StepOutcomeSource = string;

/** A run started; `steps` pins the workflow's definition at `workflowRevision`. */
export interface RunStarted {
  type: 'RunStarted';
  data: {
    runId: string;
    workflowId: string;
    workflowRevision: number;
    input: unknown;
    idempotencyKey: string | null;
    steps: StepDefinition[];
    startedAt: string;
  };
}

/**
 * An attempt of a step started; it times out at `deadline` (= startedAt + timeoutMs). It also
 * carries what the services that run the step need (issue 3: it is a public event, see
 * publicEvents.ts): the step's `kind`, the run's `workflowId` and input (`runInput`), and for
 * EXTRACT steps the `documentId` to extract from (see `documentIdFor` in decide.ts; absent when
 * the run has none).
 */
export interface StepStarted {
  type: 'StepStarted';
  data: {
    runId: string;
    workflowId: string;
    stepName: string;
    kind: StepKind;
    attempt: number;
    startedAt: string;
    deadline: string;
    runInput: unknown;
    documentId?: string;
  };
}

/** The running attempt of a step succeeded with `output`. */
export interface StepCompleted {
  type: 'StepCompleted';
  data: { runId: string; stepName: string; attempt: number; output: unknown; source: StepOutcomeSource; completedAt: string };
}

/** The running attempt of a step failed. The retry policy follows (StepRetried or RunFailed). */
export interface StepFailed {
  type: 'StepFailed';
  data: { runId: string; stepName: string; attempt: number; error: StepError; source: StepOutcomeSource; failedAt: string };
}

/** The running attempt passed its deadline. The retry policy follows (StepRetried or RunFailed). */
export interface StepTimedOut {
  type: 'StepTimedOut';
  data: { runId: string; stepName: string; attempt: number; deadline: string; timedOutAt: string };
}

/**
 * Attempt `attempt` of a step is scheduled for `retryAt`: by the retry policy (`POLICY`, after
 * backoffMs) or by `retryStep` (`MANUAL`, at once; it also reopens a FAILED run). A StepStarted
 * follows at `retryAt` (in the same batch when retryAt is now).
 */
export interface StepRetried {
  type: 'StepRetried';
  data: { runId: string; stepName: string; attempt: number; retryAt: string; reason: 'POLICY' | 'MANUAL' };
}

/** Every step completed; `output` is the last step's output. */
export interface RunCompleted {
  type: 'RunCompleted';
  data: { runId: string; output: unknown; completedAt: string };
}

/** A step ran out of attempts. `retryStep` can reopen the run. */
export interface RunFailed {
  type: 'RunFailed';
  data: { runId: string; stepName: string; error: StepError; failedAt: string };
}

/** The run was cancelled; terminal. */
export interface RunCancelled {
  type: 'RunCancelled';
  data: { runId: string; reason: string | null; cancelledAt: string };
}

export type RunEvent =
  | RunStarted
  | StepStarted
  | StepCompleted
  | StepFailed
  | StepTimedOut
  | StepRetried
  | RunCompleted
  | RunFailed
  | RunCancelled;

export const RUN_EVENT_TYPES: readonly RunEvent['type'][] = [
  'RunStarted',
  'StepStarted',
  'StepCompleted',
  'StepFailed',
  'StepTimedOut',
  'StepRetried',
  'RunCompleted',
  'RunFailed',
  'RunCancelled',
];

/** Stream id of a run. */
export function runStreamId(runId: string): string {
  return `run-${runId}`;
}
