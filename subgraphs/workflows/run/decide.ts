/**
 * Decisions of the run aggregate: the run state machine. Pure: time arrives in the command.
 *
 * Run:  RUNNING → COMPLETED | FAILED | CANCELLED;  FAILED → RUNNING (manual retryStep).
 * Step: PENDING → RUNNING → COMPLETED | FAILED | TIMED_OUT;  FAILED | TIMED_OUT → RETRY_SCHEDULED
 *       (policy or manual) → RUNNING;  PENDING | RUNNING | RETRY_SCHEDULED → CANCELLED (run
 *       cancelled).
 * Steps run one at a time, in definition order.
 */
import { addMs } from '../clock.ts';
import { BadUserInputError, IdempotencyConflictError, IllegalTransitionError, NotFoundError } from '../errors.ts';
import { cutToCodePoints } from '../text/cutText.ts';
import type { StepKind } from '../workflow/events.ts';
import type { CompleteStep, FailStep, RetryStep, RunCommand, StartRun } from './commands.ts';
import type { RunEvent, StepOutcomeSource } from './events.ts';
import { evolveRun, type ExistingRun, type RunState, type StepRunState } from './evolve.ts';

/** Source of outcomes reported through the GraphQL API (`completeStep`, `failStep`). */
export const API_SOURCE = 'api';
/** Source of outcomes read from content's integration events (DocumentProcessed, DocumentFailed). */
export const CONTENT_SOURCE = 'content';
/** Source of outcomes read from knowledge's integration events (DocumentEntitiesExtracted, ExtractionFailed). */
export const KNOWLEDGE_SOURCE = 'knowledge';

/**
 * Which sources may complete or fail a step of each kind (issue 3, "The saga": `completeStep`
 * is legal for EXTERNAL steps only; the other kinds complete from their services' events).
 * The same rule holds for failures: `failStep` through the API fails EXTERNAL steps only, an
 * INGEST or EXTRACT step fails from its service's failure event or its deadline (a stuck one
 * can be stopped with `cancelRun`). Any other source gets ILLEGAL_TRANSITION.
 */
export const COMPLETION_SOURCES: Readonly<Record<StepKind, readonly StepOutcomeSource[]>> = {
  INGEST: [CONTENT_SOURCE],
  EXTRACT: [KNOWLEDGE_SOURCE],
  EXTERNAL: [API_SOURCE],
};

/** Longest failure message kept, in characters (code points; longer ones are cut, never inside a surrogate pair: text/cutText.ts). */
export const MAX_ERROR_MESSAGE_LENGTH = 2000;

/**
 * Turns a command into events.
 * - StartRun → [RunStarted, StepStarted(first step, attempt 1, deadline now + timeoutMs)];
 *   [] when the run already exists with the same workflow, key and input (idempotent start).
 * - CompleteStep → [StepCompleted, StepStarted(next step) | RunCompleted]. Only the sources of
 *   `COMPLETION_SOURCES` may complete (or fail) a step of a kind.
 * - Every StepStarted carries the step's kind, the run's workflowId and input and, for EXTRACT
 *   steps, the document id of `documentIdFor`.
 * - FailStep → [StepFailed, ...retry policy]; TimeoutStep → [StepTimedOut, ...retry policy]
 *   (stale timers give []). Retry policy: while the attempts of the current budget are below
 *   maxAttempts, [StepRetried(retryAt = now + backoffMs)] plus StepStarted when backoffMs is 0;
 *   else [RunFailed].
 * - StartScheduledRetry → [StepStarted] when the retry is due (else []).
 * - RetryStep → see the RetryStep command; CancelRun → [RunCancelled].
 * @throws NotFoundError unknown workflow (StartRun), run or step name
 * @throws IllegalTransitionError a command the current status does not allow (e.g. completing
 *   a step of a cancelled run, completing a step that is not running, cancelling a finished run)
 * @throws IdempotencyConflictError StartRun repeated with the same key and a different input
 * @throws BadUserInputError a failure without a message, or one holding an unpaired surrogate
 */
export function decideRun(command: RunCommand, state: RunState): RunEvent[] {
  if (command.type === 'StartRun') return startRun(command, state);
  if (!state.exists) {
    if (command.type === 'TimeoutStep' || command.type === 'StartScheduledRetry') return [];
    throw new NotFoundError(`Run ${command.runId} does not exist`, { runId: command.runId });
  }
  switch (command.type) {
    case 'CompleteStep':
      return completeStep(command, state);
    case 'FailStep':
      return failStep(command, state);
    case 'RetryStep':
      return retryStep(command, state);
    case 'CancelRun':
      if (state.status !== 'RUNNING') throw illegal(state, command.type, `Cannot cancel a ${state.status} run`);
      return [{ type: 'RunCancelled', data: { runId: state.runId, reason: command.reason, cancelledAt: command.now.toISOString() } }];
    case 'TimeoutStep': {
      const step = state.steps.find((s) => s.name === command.stepName);
      if (state.status !== 'RUNNING' || !step || step.status !== 'RUNNING' || step.attempt !== command.attempt) return [];
      if (step.deadline === null || Date.parse(step.deadline) > command.now.getTime()) return [];
      const at = command.now.toISOString();
      return [
        { type: 'StepTimedOut', data: { runId: state.runId, stepName: step.name, attempt: step.attempt, deadline: step.deadline, timedOutAt: at } },
        ...afterFailedAttempt(state, step, { message: `Attempt ${step.attempt} timed out after ${step.timeoutMs} ms` }, command.now),
      ];
    }
    case 'StartScheduledRetry': {
      const step = state.steps.find((s) => s.name === command.stepName);
      if (state.status !== 'RUNNING' || !step || step.status !== 'RETRY_SCHEDULED' || step.attempt + 1 !== command.attempt) return [];
      if (step.retryAt !== null && Date.parse(step.retryAt) > command.now.getTime()) return [];
      return [stepStarted(state, step, command.attempt, command.now)];
    }
  }
}

function startRun(command: StartRun, state: RunState): RunEvent[] {
  const input = command.input === undefined ? {} : command.input;
  if (state.exists) {
    if (command.idempotencyKey !== null && state.idempotencyKey === command.idempotencyKey && state.workflowId === command.workflowId) {
      if (JSON.stringify(canonical(state.input)) === JSON.stringify(canonical(input))) return [];
      throw new IdempotencyConflictError(`Idempotency key "${command.idempotencyKey}" was already used to start run ${state.runId} with a different input`, {
        runId: state.runId,
        workflowId: command.workflowId,
      });
    }
    throw illegal(state, command.type, `Run ${state.runId} already exists`);
  }
  if (command.workflow === null) throw new NotFoundError(`Workflow ${command.workflowId} does not exist`, { workflowId: command.workflowId });
  const first = command.workflow.steps[0];
  if (!first) throw new BadUserInputError(`Workflow ${command.workflowId} has no steps`, { workflowId: command.workflowId });
  const now = command.now.toISOString();
  return [
    {
      type: 'RunStarted',
      data: {
        runId: command.runId,
        workflowId: command.workflowId,
        workflowRevision: command.workflow.revision,
        input,
        idempotencyKey: command.idempotencyKey,
        steps: command.workflow.steps,
        startedAt: now,
      },
    },
    {
      type: 'StepStarted',
      data: {
        runId: command.runId,
        workflowId: command.workflowId,
        stepName: first.name,
        kind: first.kind,
        attempt: 1,
        startedAt: now,
        deadline: addMs(command.now, first.timeoutMs),
        runInput: input,
        // An EXTRACT first step can only take its document from the run input.
        ...documentIdOf(first.kind === 'EXTRACT' ? documentIdInInput(input) : undefined),
      },
    },
  ];
}

function completeStep(command: CompleteStep, state: ExistingRun): RunEvent[] {
  const step = runningStep(command, state);
  const at = command.now.toISOString();
  const completed: RunEvent = {
    type: 'StepCompleted',
    data: { runId: state.runId, stepName: step.name, attempt: step.attempt, output: command.output ?? null, source: command.source, completedAt: at },
  };
  const events: RunEvent[] = [completed];
  // The next step sees this step's output (an EXTRACT step takes the INGEST step's document).
  const after = evolveRun(state, completed) as ExistingRun;
  const next = after.steps[state.steps.indexOf(step) + 1];
  if (next) events.push(stepStarted(after, next, 1, command.now));
  else events.push({ type: 'RunCompleted', data: { runId: state.runId, output: command.output ?? null, completedAt: at } });
  return events;
}

function failStep(command: FailStep, state: ExistingRun): RunEvent[] {
  const message = cutToCodePoints(command.error.trim(), MAX_ERROR_MESSAGE_LENGTH);
  if (message.length === 0) throw new BadUserInputError('A step failure needs a non-empty error message', { field: 'error' });
  if (!message.isWellFormed()) throw new BadUserInputError('A step failure message may not contain unpaired UTF-16 surrogates (not valid Unicode)', { field: 'error' });
  const step = runningStep(command, state);
  const error = { message };
  return [
    {
      type: 'StepFailed',
      data: { runId: state.runId, stepName: step.name, attempt: step.attempt, error, source: command.source, failedAt: command.now.toISOString() },
    },
    ...afterFailedAttempt(state, step, error, command.now),
  ];
}

function retryStep(command: RetryStep, state: ExistingRun): RunEvent[] {
  const step = findStep(state, command.stepName);
  if (state.status === 'FAILED' && state.failedStep === step.name) {
    const attempt = step.attempt + 1;
    return [
      { type: 'StepRetried', data: { runId: state.runId, stepName: step.name, attempt, retryAt: command.now.toISOString(), reason: 'MANUAL' } },
      stepStarted(state, step, attempt, command.now),
    ];
  }
  if (state.status === 'RUNNING' && step.status === 'RETRY_SCHEDULED') {
    return [stepStarted(state, step, step.attempt + 1, command.now)];
  }
  throw illegal(
    state,
    command.type,
    `Step "${step.name}" of a ${state.status} run is ${step.status}: only the step that failed a FAILED run, or a step waiting for its retry, can be retried`,
    step,
  );
}

/** The retry policy after StepFailed or StepTimedOut of `step`'s current attempt. */
function afterFailedAttempt(state: ExistingRun, step: StepRunState, error: { message: string }, now: Date): RunEvent[] {
  const used = step.attempt - step.budgetStart + 1;
  if (used < step.retryPolicy.maxAttempts) {
    const attempt = step.attempt + 1;
    const retried: RunEvent = {
      type: 'StepRetried',
      data: { runId: state.runId, stepName: step.name, attempt, retryAt: addMs(now, step.retryPolicy.backoffMs), reason: 'POLICY' },
    };
    return step.retryPolicy.backoffMs === 0 ? [retried, stepStarted(state, step, attempt, now)] : [retried];
  }
  return [{ type: 'RunFailed', data: { runId: state.runId, stepName: step.name, error, failedAt: now.toISOString() } }];
}

function stepStarted(state: ExistingRun, step: StepRunState, attempt: number, now: Date): RunEvent {
  return {
    type: 'StepStarted',
    data: {
      runId: state.runId,
      workflowId: state.workflowId,
      stepName: step.name,
      kind: step.kind,
      attempt,
      startedAt: now.toISOString(),
      deadline: addMs(now, step.timeoutMs),
      runInput: state.input,
      ...documentIdOf(step.kind === 'EXTRACT' ? documentIdFor(state, step) : undefined),
    },
  };
}

/**
 * The document an EXTRACT step works on: the `documentId` output of the nearest COMPLETED
 * INGEST step before it (content completes INGEST steps with `{ documentId, chunkCount }`),
 * else the run input's `documentId` (a string, to extract from a document ingested earlier),
 * else undefined (knowledge then fails the step with ExtractionFailed).
 */
export function documentIdFor(state: ExistingRun, step: StepRunState): string | undefined {
  const before = state.steps.slice(0, state.steps.findIndex((s) => s.name === step.name));
  for (const candidate of before.reverse()) {
    if (candidate.kind !== 'INGEST' || candidate.status !== 'COMPLETED') continue;
    const id = (candidate.output as { documentId?: unknown } | null)?.documentId;
    if (typeof id === 'string' && id.length > 0) return id;
  }
  return documentIdInInput(state.input);
}

function documentIdInInput(input: unknown): string | undefined {
  const id = input !== null && typeof input === 'object' ? (input as { documentId?: unknown }).documentId : undefined;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

/** `{ documentId }` when defined, else `{}` (stored events leave the field out rather than store null). */
function documentIdOf(documentId: string | undefined): { documentId?: string } {
  return documentId === undefined ? {} : { documentId };
}

function runningStep(command: CompleteStep | FailStep, state: ExistingRun): StepRunState {
  if (state.status !== 'RUNNING') throw illegal(state, command.type, `Run ${state.runId} is ${state.status}: its steps can no longer change`);
  const step = findStep(state, command.stepName);
  const allowed = COMPLETION_SOURCES[step.kind];
  if (!allowed.includes(command.source)) {
    throw illegal(
      state,
      command.type,
      command.source === API_SOURCE
        ? `Step "${step.name}" is an ${step.kind} step: it completes or fails from ${allowed.join(', ')} events, not through the API (only EXTERNAL steps do)`
        : `Step "${step.name}" of kind ${step.kind} cannot be reported by source "${command.source}"`,
      step,
      { stepKind: step.kind, source: command.source, allowedSources: allowed },
    );
  }
  if (step.status !== 'RUNNING') throw illegal(state, command.type, `Step "${step.name}" is ${step.status}, not RUNNING`, step);
  if (command.attempt !== undefined && command.attempt !== step.attempt) {
    throw illegal(state, command.type, `Attempt ${command.attempt} of step "${step.name}" is over: attempt ${step.attempt} is running`, step);
  }
  return step;
}

function findStep(state: ExistingRun, name: string): StepRunState {
  const step = state.steps.find((s) => s.name === name);
  if (!step) throw new NotFoundError(`Run ${state.runId} has no step "${name}"`, { runId: state.runId, stepName: name });
  return step;
}

function illegal(state: ExistingRun, command: string, message: string, step?: StepRunState, extra: Record<string, unknown> = {}): IllegalTransitionError {
  return new IllegalTransitionError(message, {
    runId: state.runId,
    command,
    runStatus: state.status,
    ...(step ? { stepName: step.name, stepStatus: step.status } : {}),
    ...extra,
  });
}

/** JSON with object keys sorted, so that `{a,b}` and `{b,a}` compare equal. */
function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value as object)
        .sort()
        .map((k) => [k, canonical((value as Record<string, unknown>)[k])]),
    );
  }
  return value;
}
