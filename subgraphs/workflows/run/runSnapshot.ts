/**
 * A run as of one of its events: the row the runs projection (projections/runsProjection.ts)
 * would hold right after that event, folded in memory from the run's stream. Subscription
 * updates (live/) carry it, so each update shows the run as of its own event, never a later
 * read-model row.
 *
 * The fold mirrors the projection's SQL statement by statement (its parity test,
 * runSnapshot.int.spec.ts, compares the two after real commands): change one, change both.
 *
 * ```ts
 * const run = foldRunSnapshot(await store.readStream(runStreamId(id), { count: 4 })); // as of position 3
 * ```
 */
import type { RecordedEvent } from '../../../eventstore/index.ts';
import type { Prisma } from '../../../prisma/workflows/generated/client.ts';
import type { RunRow } from '../readModel.ts';
import { workflowsPublicEvents } from '../publicEvents.ts';
import type { RunEvent } from './events.ts';

/** A `step_runs` row as the read model serves it. */
export type StepRunRow = RunRow['steps'][number];

/** A run as of one event: a {@link RunRow} plus the positions that say which event. */
export interface RunSnapshot extends RunRow {
  /** Stream position of the event this state is as of (= `version`). */
  asOfVersion: number;
  /**
   * Stream position of the run's last event at or before `asOfVersion` that is published as an
   * integration event (publicEvents.ts: StepTimedOut and StepRetried are not), i.e. the last one
   * other services (monitoring's timeline) can have seen.
   */
  asOfPublishedVersion: number;
}

const PUBLISHED_TYPES: ReadonlySet<string> = new Set(Object.keys(workflowsPublicEvents));
/** Statuses a cancellation ends (the projection's `status IN (...)`). */
const CANCELLABLE: ReadonlySet<string> = new Set(['PENDING', 'RUNNING', 'RETRY_SCHEDULED']);

/**
 * The document an INGEST step's output names (`{ documentId, chunkCount }` from content): a
 * non-empty string `documentId`, else null. The same rule as decide.ts `documentIdFor`.
 */
export function producedDocumentId(output: unknown): string | null {
  const id = output !== null && typeof output === 'object' ? (output as { documentId?: unknown }).documentId : undefined;
  return typeof id === 'string' && id.length > 0 ? id : null;
}

/**
 * Folds a run's stream, in order from position 0, into the run as of its last event.
 * @returns null for an empty stream (or one that does not start with RunStarted)
 */
export function foldRunSnapshot(events: readonly RecordedEvent[]): RunSnapshot | null {
  let state: RunSnapshot | null = null;
  for (const event of events) state = evolveRunSnapshot(state, event);
  return state;
}

/**
 * The run as of `event`, given the run as of the event before it (null before RunStarted).
 * Pure: returns new objects and never changes `state` (earlier snapshots stay as they were).
 */
export function evolveRunSnapshot(state: RunSnapshot | null, recorded: RecordedEvent): RunSnapshot | null {
  const event = recorded as unknown as RunEvent;
  const published = PUBLISHED_TYPES.has(recorded.type);
  if (event.type === 'RunStarted') {
    const d = event.data;
    return {
      id: d.runId,
      workflowId: d.workflowId,
      workflowRevision: d.workflowRevision,
      status: 'RUNNING',
      input: json(d.input),
      output: null,
      error: null,
      cancelReason: null,
      idempotencyKey: d.idempotencyKey,
      currentStep: null,
      seq: BigInt(recorded.globalPosition),
      version: recorded.streamPosition,
      startedAt: new Date(d.startedAt),
      updatedAt: recorded.recordedAt,
      endedAt: null,
      steps: d.steps.map((step, position) => ({
        runId: d.runId,
        position,
        name: step.name,
        kind: step.kind,
        status: 'PENDING',
        attempt: 0,
        maxAttempts: step.retryPolicy.maxAttempts,
        backoffMs: step.retryPolicy.backoffMs,
        timeoutMs: step.timeoutMs,
        deadline: null,
        retryAt: null,
        output: null,
        error: null,
        startedAt: null,
        endedAt: null,
        documentId: null,
      })),
      asOfVersion: recorded.streamPosition,
      asOfPublishedVersion: recorded.streamPosition,
    };
  }
  if (state === null) return null;

  // Every later event moves the run's version.
  let run: RunSnapshot = {
    ...state,
    version: recorded.streamPosition,
    updatedAt: recorded.recordedAt,
    asOfVersion: recorded.streamPosition,
    asOfPublishedVersion: published ? recorded.streamPosition : state.asOfPublishedVersion,
  };
  const step = (name: string, change: (s: StepRunRow) => Partial<StepRunRow>): void => {
    run = { ...run, steps: run.steps.map((s) => (s.name === name ? { ...s, ...change(s) } : s)) };
  };
  switch (event.type) {
    case 'StepStarted': {
      const d = event.data;
      step(d.stepName, (s) => ({
        status: 'RUNNING',
        attempt: d.attempt,
        deadline: new Date(d.deadline),
        retryAt: null,
        error: null,
        startedAt: new Date(d.startedAt),
        endedAt: null,
        documentId: s.kind === 'EXTRACT' ? (d.documentId ?? null) : s.documentId,
      }));
      run = { ...run, currentStep: d.stepName };
      return run;
    }
    case 'StepCompleted': {
      const d = event.data;
      step(d.stepName, (s) => ({
        ...endStep(s, 'COMPLETED', d.completedAt, { output: d.output }),
        documentId: s.kind === 'INGEST' ? producedDocumentId(d.output) : s.documentId,
      }));
      return run;
    }
    case 'StepFailed': {
      const d = event.data;
      step(d.stepName, (s) => endStep(s, 'FAILED', d.failedAt, { error: d.error }));
      return run;
    }
    case 'StepTimedOut': {
      const d = event.data;
      step(d.stepName, (s) => endStep(s, 'TIMED_OUT', d.timedOutAt, { error: { message: `Attempt ${d.attempt} timed out at ${d.deadline}` } }));
      return run;
    }
    case 'StepRetried': {
      const d = event.data;
      step(d.stepName, () => ({ status: 'RETRY_SCHEDULED', retryAt: new Date(d.retryAt) }));
      // A manual retry reopens a FAILED run.
      return { ...run, status: 'RUNNING', currentStep: d.stepName, error: null, endedAt: null };
    }
    case 'RunCompleted': {
      const d = event.data;
      return { ...run, status: 'COMPLETED', output: d.output === undefined ? null : json(d.output), currentStep: null, endedAt: new Date(d.completedAt) };
    }
    case 'RunFailed': {
      const d = event.data;
      return { ...run, status: 'FAILED', error: { stepName: d.stepName, message: d.error.message }, currentStep: null, endedAt: new Date(d.failedAt) };
    }
    case 'RunCancelled': {
      const d = event.data;
      const at = new Date(d.cancelledAt);
      return {
        ...run,
        status: 'CANCELLED',
        cancelReason: d.reason,
        currentStep: null,
        endedAt: at,
        steps: run.steps.map((s) =>
          CANCELLABLE.has(s.status) ? { ...s, status: 'CANCELLED', deadline: null, retryAt: null, endedAt: s.status === 'PENDING' ? null : at } : s,
        ),
      };
    }
    default:
      return run;
  }
}

/** The projection's `endStep`: output kept unless given, error replaced (null unless given). */
function endStep(s: StepRunRow, status: string, at: string, result: { output?: unknown; error?: unknown }): Partial<StepRunRow> {
  return {
    status,
    deadline: null,
    endedAt: new Date(at),
    output: result.output === undefined ? s.output : json(result.output),
    error: result.error === undefined ? null : json(result.error),
  };
}

/** Event payloads are JSON already (the store refuses anything else); this only narrows the type. */
function json(value: unknown): Prisma.JsonValue {
  return value as Prisma.JsonValue;
}
