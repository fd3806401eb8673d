/**
 * The saga's decision (pure): what a service's report about a step (content's
 * DocumentProcessed/DocumentFailed, knowledge's DocumentEntitiesExtracted/ExtractionFailed)
 * does to a run. Either the run events that record it (StepCompleted or StepFailed, then the
 * next step, the retry policy or the end of the run, exactly as the run decider decides), or
 * a reason to ignore it: reports can arrive late (the run was cancelled, the step already
 * ended, another attempt runs) and must then change nothing.
 */
import type { RecordedEvent } from '../../../eventstore/index.ts';
import { WorkflowsError } from '../errors.ts';
import { decideRun } from '../run/decide.ts';
import type { RunEvent, StepOutcomeSource } from '../run/events.ts';
import type { RunState } from '../run/evolve.ts';
import type { StepKind } from '../workflow/events.ts';

/** A service's report about a step of a run. */
export interface StepOutcome {
  runId: string;
  stepName: string;
  /** The kind of step the reporting service runs (content: INGEST, knowledge: EXTRACT). */
  kind: StepKind;
  /** Recorded as the StepCompleted/StepFailed `source`. */
  source: StepOutcomeSource;
  result: { ok: true; output: unknown } | { ok: false; error: string };
}

/** Why a report changed nothing. */
export type IgnoredReason =
  /** No run with that id. */
  | 'RUN_NOT_FOUND'
  /** The run is COMPLETED, FAILED or CANCELLED. */
  | 'RUN_NOT_RUNNING'
  /** The run has no step of that name. */
  | 'STEP_NOT_FOUND'
  /** The step is of another kind than the reporting service runs. */
  | 'WRONG_STEP_KIND'
  /** The step is not running (pending, waiting for a retry, already ended). */
  | 'STEP_NOT_RUNNING'
  /** The report answers an earlier attempt of the step (its cause is an older StepStarted). */
  | 'STALE_ATTEMPT'
  /** The run decider refused it (e.g. a source not allowed for the kind). */
  | 'REJECTED';

/** Outcome of `decideStepOutcome`. */
export type StepOutcomeDecision = { apply: true; events: RunEvent[]; attempt: number } | { apply: false; reason: IgnoredReason; detail: string };

/**
 * Decides what `outcome` does to the run with `state` and `history`. `causationId` is the
 * report's own cause (the StepStarted the service answered, when it says so): when it names a
 * StepStarted of the run, the report applies only if that StepStarted started the step's
 * running attempt; when it names nothing of the run, the report applies to the running attempt.
 */
export function decideStepOutcome(
  state: RunState,
  history: readonly RecordedEvent[],
  outcome: StepOutcome,
  causationId: string | undefined,
  now: Date,
): StepOutcomeDecision {
  const ignore = (reason: IgnoredReason, detail: string): StepOutcomeDecision => ({ apply: false, reason, detail });
  if (!state.exists) return ignore('RUN_NOT_FOUND', `run ${outcome.runId} does not exist`);
  if (state.status !== 'RUNNING') return ignore('RUN_NOT_RUNNING', `run ${outcome.runId} is ${state.status}`);
  const step = state.steps.find((s) => s.name === outcome.stepName);
  if (!step) return ignore('STEP_NOT_FOUND', `run ${outcome.runId} has no step "${outcome.stepName}"`);
  if (step.kind !== outcome.kind) return ignore('WRONG_STEP_KIND', `step "${step.name}" is ${step.kind}, the report is about an ${outcome.kind} step`);
  if (step.status !== 'RUNNING') return ignore('STEP_NOT_RUNNING', `step "${step.name}" is ${step.status}`);
  const cause = causationId === undefined ? undefined : history.find((e) => e.eventId === causationId && e.type === 'StepStarted');
  if (cause) {
    const started = cause.data as { stepName: string; attempt: number };
    if (started.stepName !== step.name || started.attempt !== step.attempt) {
      return ignore('STALE_ATTEMPT', `the report answers attempt ${started.attempt} of "${started.stepName}"; attempt ${step.attempt} of "${step.name}" is running`);
    }
  }
  const base = { runId: outcome.runId, stepName: step.name, source: outcome.source, attempt: step.attempt, now };
  try {
    const events = outcome.result.ok
      ? decideRun({ type: 'CompleteStep', ...base, output: outcome.result.output }, state)
      : decideRun({ type: 'FailStep', ...base, error: outcome.result.error.trim() || `${outcome.source} reported a failure without a reason` }, state);
    return { apply: true, events, attempt: step.attempt };
  } catch (error) {
    if (error instanceof WorkflowsError) return ignore('REJECTED', error.message);
    throw error;
  }
}
