/** State of the run aggregate and how events change it. */
import type { RetryPolicy, StepDefinition, StepKind } from '../workflow/events.ts';
import type { RunEvent, StepError } from './events.ts';

export type RunStatus = 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
export type StepRunStatus = 'PENDING' | 'RUNNING' | 'RETRY_SCHEDULED' | 'COMPLETED' | 'FAILED' | 'TIMED_OUT' | 'CANCELLED';

/** A step within a run. */
export interface StepRunState {
  name: string;
  kind: StepKind;
  retryPolicy: RetryPolicy;
  timeoutMs: number;
  status: StepRunStatus;
  /** Last started attempt (0 before the first StepStarted). */
  attempt: number;
  /** First attempt of the current retry budget: 1, or the attempt a manual retry started. */
  budgetStart: number;
  deadline: string | null;
  retryAt: string | null;
  output: unknown;
  error: StepError | null;
}

/** A run as the decider sees it; `exists: false` before RunStarted. */
export type RunState =
  | { exists: false }
  | {
      exists: true;
      runId: string;
      workflowId: string;
      workflowRevision: number;
      input: unknown;
      idempotencyKey: string | null;
      status: RunStatus;
      steps: StepRunState[];
      /** The step whose failure failed the run (status FAILED), else null. */
      failedStep: string | null;
    };

export type ExistingRun = Extract<RunState, { exists: true }>;

/** The state of a stream with no events. */
export function initialRunState(): RunState {
  return { exists: false };
}

function stepFromDefinition(def: StepDefinition): StepRunState {
  return {
    name: def.name,
    kind: def.kind,
    retryPolicy: def.retryPolicy,
    timeoutMs: def.timeoutMs,
    status: 'PENDING',
    attempt: 0,
    budgetStart: 1,
    deadline: null,
    retryAt: null,
    output: null,
    error: null,
  };
}

/** Applies one event. Pure; events that do not fit the state leave it unchanged. */
export function evolveRun(state: RunState, event: RunEvent): RunState {
  if (event.type === 'RunStarted') {
    const d = event.data;
    return {
      exists: true,
      runId: d.runId,
      workflowId: d.workflowId,
      workflowRevision: d.workflowRevision,
      input: d.input,
      idempotencyKey: d.idempotencyKey,
      status: 'RUNNING',
      steps: d.steps.map(stepFromDefinition),
      failedStep: null,
    };
  }
  if (!state.exists) return state;
  const step = (name: string, patch: (s: StepRunState) => Partial<StepRunState>): StepRunState[] =>
    state.steps.map((s) => (s.name === name ? { ...s, ...patch(s) } : s));
  switch (event.type) {
    case 'StepStarted':
      return {
        ...state,
        steps: step(event.data.stepName, () => ({
          status: 'RUNNING',
          attempt: event.data.attempt,
          deadline: event.data.deadline,
          retryAt: null,
          error: null,
        })),
      };
    case 'StepCompleted':
      return { ...state, steps: step(event.data.stepName, () => ({ status: 'COMPLETED', output: event.data.output, deadline: null })) };
    case 'StepFailed':
      return { ...state, steps: step(event.data.stepName, () => ({ status: 'FAILED', error: event.data.error, deadline: null })) };
    case 'StepTimedOut':
      return {
        ...state,
        steps: step(event.data.stepName, () => ({ status: 'TIMED_OUT', error: { message: `Attempt ${event.data.attempt} timed out` }, deadline: null })),
      };
    case 'StepRetried': {
      const manual = event.data.reason === 'MANUAL';
      return {
        ...state,
        status: 'RUNNING',
        failedStep: manual ? null : state.failedStep,
        steps: step(event.data.stepName, (s) => ({
          status: 'RETRY_SCHEDULED',
          retryAt: event.data.retryAt,
          budgetStart: manual ? event.data.attempt : s.budgetStart,
        })),
      };
    }
    case 'RunCompleted':
      return { ...state, status: 'COMPLETED' };
    case 'RunFailed':
      return { ...state, status: 'FAILED', failedStep: event.data.stepName };
    case 'RunCancelled':
      return {
        ...state,
        status: 'CANCELLED',
        steps: state.steps.map((s) =>
          s.status === 'PENDING' || s.status === 'RUNNING' || s.status === 'RETRY_SCHEDULED' ? { ...s, status: 'CANCELLED', deadline: null, retryAt: null } : s,
        ),
      };
    default:
      return state;
  }
}
