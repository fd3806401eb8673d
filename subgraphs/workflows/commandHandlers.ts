/**
 * The write side of the workflows subgraph: turns requests (GraphQL mutations, the deadline
 * scanner) into commands, runs them through the deciders with `handleCommand` /
 * `handleRunCommand` (load, decide, append at the expected version, retry on conflict) and
 * returns the affected id. Integration events (issue 3's saga) go through saga/ instead, in
 * their inbox transaction. Inline projections have committed the read models when a handler
 * resolves.
 */
import { randomUUID } from 'node:crypto';
import { handleCommand, type EventMetadata, type EventStore } from '../../eventstore/index.ts';
import type { Clock } from './clock.ts';
import { BadUserInputError, NotFoundError } from './errors.ts';
import type { RunCommand, WorkflowSnapshot } from './run/commands.ts';
import { handleRunCommand, type RunCommandResult } from './run/handleRunCommand.ts';
import { runIdFor } from './run/runId.ts';
import { workflowDecider } from './workflow/decider.ts';
import { cutToCodePoints } from './text/cutText.ts';
import { workflowStreamId, type StepDefinition, type WorkflowEvent } from './workflow/events.ts';

/** Ids accepted for workflows (client-chosen or generated) and runs: 1..100 of `[A-Za-z0-9_.:-]`. */
export const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;
/** Longest idempotency key, in characters. */
export const MAX_IDEMPOTENCY_KEY_LENGTH = 200;
/** Longest cancel reason, in characters (code points; longer ones are cut, never inside a surrogate pair: text/cutText.ts). */
export const MAX_REASON_LENGTH = 2000;

/** Who asked, recorded as event metadata (`actor`, `correlationId`, `causationId`, `traceparent`). */
export type { RequestMetadata } from '../../federation/requestContext.ts';
import type { RequestMetadata } from '../../federation/requestContext.ts';

/** A workflow definition as the API receives it. */
export interface WorkflowDefinitionInput {
  name: string;
  steps: StepDefinition[];
}

/** The command handlers; each resolves with the affected aggregate's id. */
export interface CommandHandlers {
  /**
   * Defines a workflow (`id` given: client-chosen, else a random UUID).
   * @throws BadUserInputError invalid id or definition; AlreadyExistsError
   */
  defineWorkflow(input: WorkflowDefinitionInput & { id?: string | null }, meta: RequestMetadata): Promise<string>;
  /** Revises a workflow. @throws NotFoundError, BadUserInputError */
  reviseWorkflow(workflowId: string, input: WorkflowDefinitionInput, meta: RequestMetadata): Promise<string>;
  /**
   * Starts a run of the workflow's latest revision. With `idempotencyKey`, the run id is derived
   * from (workflowId, key): a repeated call returns the same run and appends nothing, also when
   * the calls race (the loser's `no_stream` append fails, it reloads and finds the run).
   * @throws NotFoundError unknown workflow; IdempotencyConflictError; BadUserInputError key too long
   */
  startRun(workflowId: string, input: unknown, idempotencyKey: string | null, meta: RequestMetadata): Promise<string>;
  /**
   * Completes the running attempt of a step as `source` reported it. Through the API
   * (`source` 'api') only EXTERNAL steps; INGEST and EXTRACT steps complete from the saga
   * (COMPLETION_SOURCES in run/decide.ts).
   * @throws NotFoundError, IllegalTransitionError (incl. a source not allowed for the step's kind)
   */
  completeStep(runId: string, stepName: string, output: unknown, source: string, meta: RequestMetadata): Promise<string>;
  /** Fails the running attempt of a step; same source rule as completeStep. @throws NotFoundError, IllegalTransitionError, BadUserInputError empty message */
  failStep(runId: string, stepName: string, error: string, source: string, meta: RequestMetadata): Promise<string>;
  /** @throws NotFoundError, IllegalTransitionError */
  retryStep(runId: string, stepName: string, meta: RequestMetadata): Promise<string>;
  /** Reason cut to MAX_REASON_LENGTH code points. @throws NotFoundError, IllegalTransitionError; BadUserInputError a reason holding an unpaired surrogate */
  cancelRun(runId: string, reason: string | null, meta: RequestMetadata): Promise<string>;
  /** Deadline scanner: times out attempt `attempt` if it is still running past its deadline. @returns events appended */
  timeoutStep(runId: string, stepName: string, attempt: number, meta: RequestMetadata): Promise<number>;
  /** Deadline scanner: starts scheduled attempt `attempt` if it is due. @returns events appended */
  startScheduledRetry(runId: string, stepName: string, attempt: number, meta: RequestMetadata): Promise<number>;
}

/** Creates the command handlers on `store`; `clock` gives every command its `now`. */
export function createCommandHandlers(store: EventStore, clock: Clock): CommandHandlers {
  // Events of an existing run carry the run's correlation id, whoever asks (handleRunCommand).
  const onRun = (runId: string, command: RunCommand, meta: RequestMetadata): Promise<RunCommandResult> => handleRunCommand(store, runId, command, meta);
  const knownRunId = (runId: string): string => {
    if (!ID_PATTERN.test(runId)) throw new NotFoundError(`Run ${JSON.stringify(runId.slice(0, 120))} does not exist`, { runId });
    return runId;
  };

  return {
    async defineWorkflow(input, meta) {
      const workflowId = input.id ?? randomUUID();
      if (!ID_PATTERN.test(workflowId)) {
        throw new BadUserInputError(`Workflow id must be 1..100 characters of letters, digits, "_", ".", ":" or "-"`, { field: 'id' });
      }
      await handleCommand(store, {
        streamId: workflowStreamId(workflowId),
        decider: workflowDecider,
        command: { type: 'DefineWorkflow', workflowId, name: input.name, steps: input.steps, now: clock() },
        metadata: meta,
      });
      return workflowId;
    },

    async reviseWorkflow(workflowId, input, meta) {
      if (!ID_PATTERN.test(workflowId)) throw new NotFoundError(`Workflow ${JSON.stringify(workflowId.slice(0, 120))} does not exist`, { workflowId });
      await handleCommand(store, {
        streamId: workflowStreamId(workflowId),
        decider: workflowDecider,
        command: { type: 'ReviseWorkflow', workflowId, name: input.name, steps: input.steps, now: clock() },
        metadata: meta,
      });
      return workflowId;
    },

    async startRun(workflowId, input, idempotencyKey, meta) {
      if (idempotencyKey !== null && (idempotencyKey.length === 0 || idempotencyKey.length > MAX_IDEMPOTENCY_KEY_LENGTH)) {
        throw new BadUserInputError(`An idempotency key must have 1..${MAX_IDEMPOTENCY_KEY_LENGTH} characters`, { field: 'idempotencyKey' });
      }
      const workflow = ID_PATTERN.test(workflowId) ? await loadWorkflow(store, workflowId) : null;
      const runId = runIdFor(workflowId, idempotencyKey);
      await onRun(runId, { type: 'StartRun', runId, workflowId, workflow, input, idempotencyKey, now: clock() }, meta);
      return runId;
    },

    async completeStep(runId, stepName, output, source, meta) {
      await onRun(knownRunId(runId), { type: 'CompleteStep', runId, stepName, output, source, now: clock() }, meta);
      return runId;
    },

    async failStep(runId, stepName, error, source, meta) {
      await onRun(knownRunId(runId), { type: 'FailStep', runId, stepName, error, source, now: clock() }, meta);
      return runId;
    },

    async retryStep(runId, stepName, meta) {
      await onRun(knownRunId(runId), { type: 'RetryStep', runId, stepName, now: clock() }, meta);
      return runId;
    },

    async cancelRun(runId, reason, meta) {
      const trimmed = reason === null ? null : cutToCodePoints(reason, MAX_REASON_LENGTH);
      if (trimmed !== null && !trimmed.isWellFormed()) {
        throw new BadUserInputError('A cancel reason may not contain unpaired UTF-16 surrogates (not valid Unicode)', { field: 'reason' });
      }
      await onRun(knownRunId(runId), { type: 'CancelRun', runId, reason: trimmed, now: clock() }, meta);
      return runId;
    },

    async timeoutStep(runId, stepName, attempt, meta) {
      const { newEvents } = await onRun(runId, { type: 'TimeoutStep', runId, stepName, attempt, now: clock() }, meta);
      return newEvents.length;
    },

    async startScheduledRetry(runId, stepName, attempt, meta) {
      const { newEvents } = await onRun(runId, { type: 'StartScheduledRetry', runId, stepName, attempt, now: clock() }, meta);
      return newEvents.length;
    },
  };
}

/** The workflow's latest revision folded from its stream, or null when it does not exist. */
async function loadWorkflow(store: EventStore, workflowId: string): Promise<WorkflowSnapshot | null> {
  const events = await store.readStream(workflowStreamId(workflowId));
  const state = events.reduce((s, e) => workflowDecider.evolve(s, e as unknown as WorkflowEvent), workflowDecider.initialState());
  return state.exists ? { workflowId, revision: state.revision, steps: state.steps } : null;
}
