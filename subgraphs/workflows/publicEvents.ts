/**
 * The workflows service's integration events (issue 3 contract, schema version 1): the public
 * part of the run streams that the relay publishes on `workflows.<EventType>`. content consumes
 * StepStarted (kind INGEST), knowledge StepStarted (kind EXTRACT) and RunCancelled, monitoring
 * all of them. Private run events (StepTimedOut, StepRetried) and the workflow definition
 * events are not published: a timeout shows as the StepStarted of the next attempt or as
 * RunFailed. `toPublic` picks the declared fields from the stored event (payloads of stored
 * events may grow; the public ones change only with a new version).
 */
import { z } from 'zod';
import type { PublicEvents, RecordedEvent } from '../../eventstore/index.ts';
import type { RunEvent } from './run/events.ts';
import { STEP_KINDS } from './workflow/events.ts';

/** `source` of the workflows service's integration events (and its subject prefix). */
export const WORKFLOWS_SOURCE = 'workflows';

const isoTime = z.string().min(1);
const stepKind = z.enum(STEP_KINDS as unknown as ['INGEST', 'EXTRACT', 'EXTERNAL']);
const stepError = z.object({ message: z.string() });

/** RunStarted v1: a run of `workflowId` at `workflowRevision` started on `input`; its steps in order. */
export const RunStartedV1 = z.object({
  runId: z.string(),
  workflowId: z.string(),
  workflowRevision: z.number().int().positive(),
  input: z.json(),
  steps: z.array(z.object({ name: z.string(), kind: stepKind })),
  startedAt: isoTime,
});

/**
 * StepStarted v1: attempt `attempt` (from 1) of a step started; the service owning the step's
 * `kind` does the work. `runInput` is the run's input (content reads `corpusFile` or `text` and
 * `title`); `documentId` is set for EXTRACT steps when the run has a document (the INGEST
 * step's output, else the run input's `documentId`). `deadline`: when the attempt times out.
 */
export const StepStartedV1 = z.object({
  runId: z.string(),
  workflowId: z.string(),
  stepName: z.string(),
  kind: stepKind,
  attempt: z.number().int().positive(),
  runInput: z.json(),
  documentId: z.string().optional(),
  startedAt: isoTime,
  deadline: isoTime,
});

/** StepCompleted v1: the attempt succeeded with `output`, reported by `source` (`api`, `content`, `knowledge`). */
export const StepCompletedV1 = z.object({
  runId: z.string(),
  stepName: z.string(),
  attempt: z.number().int().positive(),
  output: z.json(),
  source: z.string(),
  completedAt: isoTime,
});

/** StepFailed v1: the attempt failed; the retry policy follows (a new StepStarted, or RunFailed). */
export const StepFailedV1 = z.object({
  runId: z.string(),
  stepName: z.string(),
  attempt: z.number().int().positive(),
  error: stepError,
  source: z.string(),
  failedAt: isoTime,
});

/** RunCompleted v1: every step completed; `output` is the last step's. */
export const RunCompletedV1 = z.object({ runId: z.string(), output: z.json(), completedAt: isoTime });

/** RunFailed v1: `stepName` ran out of attempts (failures or timeouts). */
export const RunFailedV1 = z.object({ runId: z.string(), stepName: z.string(), error: stepError, failedAt: isoTime });

/** RunCancelled v1: the run stopped; pending work for it should be dropped. `reason` may be null. */
export const RunCancelledV1 = z.object({ runId: z.string(), reason: z.string().nullable(), cancelledAt: isoTime });

type DataOf<T extends RunEvent['type']> = Extract<RunEvent, { type: T }>['data'];
const dataOf = <T extends RunEvent['type']>(event: RecordedEvent) => event.data as DataOf<T>;

/** Public event declarations of the workflows service, for `startRelay`. */
export const workflowsPublicEvents: PublicEvents = {
  RunStarted: {
    version: 1,
    schema: RunStartedV1,
    toPublic: (e) => {
      const d = dataOf<'RunStarted'>(e);
      return {
        runId: d.runId,
        workflowId: d.workflowId,
        workflowRevision: d.workflowRevision,
        input: d.input,
        steps: d.steps.map((s) => ({ name: s.name, kind: s.kind })),
        startedAt: d.startedAt,
      };
    },
  },
  StepStarted: {
    version: 1,
    schema: StepStartedV1,
    toPublic: (e) => {
      const d = dataOf<'StepStarted'>(e);
      return {
        runId: d.runId,
        workflowId: d.workflowId,
        stepName: d.stepName,
        kind: d.kind,
        attempt: d.attempt,
        runInput: d.runInput,
        ...(typeof d.documentId === 'string' ? { documentId: d.documentId } : {}),
        startedAt: d.startedAt,
        deadline: d.deadline,
      };
    },
  },
  StepCompleted: {
    version: 1,
    schema: StepCompletedV1,
    toPublic: (e) => {
      const d = dataOf<'StepCompleted'>(e);
      return { runId: d.runId, stepName: d.stepName, attempt: d.attempt, output: d.output, source: d.source, completedAt: d.completedAt };
    },
  },
  StepFailed: {
    version: 1,
    schema: StepFailedV1,
    toPublic: (e) => {
      const d = dataOf<'StepFailed'>(e);
      return { runId: d.runId, stepName: d.stepName, attempt: d.attempt, error: { message: d.error.message }, source: d.source, failedAt: d.failedAt };
    },
  },
  RunCompleted: {
    version: 1,
    schema: RunCompletedV1,
    toPublic: (e) => {
      const d = dataOf<'RunCompleted'>(e);
      return { runId: d.runId, output: d.output, completedAt: d.completedAt };
    },
  },
  RunFailed: {
    version: 1,
    schema: RunFailedV1,
    toPublic: (e) => {
      const d = dataOf<'RunFailed'>(e);
      return { runId: d.runId, stepName: d.stepName, error: { message: d.error.message }, failedAt: d.failedAt };
    },
  },
  RunCancelled: {
    version: 1,
    schema: RunCancelledV1,
    toPublic: (e) => {
      const d = dataOf<'RunCancelled'>(e);
      return { runId: d.runId, reason: d.reason, cancelledAt: d.cancelledAt };
    },
  },
};
