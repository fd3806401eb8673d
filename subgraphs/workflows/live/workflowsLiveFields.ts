/**
 * The workflows subgraph's subscription fields (schema.graphql `Subscription`), served from its
 * event store by federation/live/ (DESIGN.md, "Subscriptions through the gateway"):
 *
 * - `runUpdated(runId)`: every event of stream `run-<runId>`, from the run's first event
 *   without `after`;
 * - `runs(filter)`: every run event of the whole log, from the log's head without `after`, of
 *   runs that match the filter before or after the event (so a client sees a run leave a status).
 *
 * Each update is `{ run, stepName }`: the run as of its event ({@link RunSnapshot}, the runs
 * projection's row folded from the stream up to and including the event) and the step the
 * event is about.
 *
 * ```ts
 * serveSubgraph({ ..., live: { store, fields: createWorkflowsLiveFields({ store }), codec } });
 * ```
 */
import type { EventStore, RecordedEvent } from '../../../eventstore/index.ts';
import type { LiveField, LiveProjector } from '../../../federation/live/liveField.ts';
import { BadUserInputError } from '../errors.ts';
import { RUN_EVENT_TYPES, runStreamId } from '../run/events.ts';
import { evolveRunSnapshot, foldRunSnapshot, type RunSnapshot } from '../run/runSnapshot.ts';

/** Longest id accepted by the subscription arguments, in characters. */
export const MAX_LIVE_ID_LENGTH = 200;
/** Runs whose latest snapshot a `runs` feed keeps to fold the next event onto. @default 1000 */
export const DEFAULT_MAX_CACHED_RUNS = 1000;
/** Values of `RunStatus`. */
export const RUN_STATUSES: readonly string[] = ['RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];

/** `extensions.reason` of the subscription arguments' BAD_USER_INPUT errors. */
export const LiveInputReason = {
  /** An id that is not 1..200 characters, or holds U+0000 or an unpaired surrogate. */
  InvalidId: 'INVALID_ID',
  /** A filter member of the wrong type or value. */
  InvalidFilter: 'INVALID_FILTER',
} as const;

/** Arguments of `runUpdated`, normalised. */
export type RunUpdatedArgs = { runId: string };
/** Arguments of `runs`, normalised: only the filter members given (not null), keys sorted. */
export type RunsArgs = { filter: { status?: string; workflowId?: string } };

/** The update of `runUpdated` and `runs` (the serving layer adds cursor, eventType, occurredAt). */
export interface RunUpdateValue {
  [key: string]: unknown;
  run: RunSnapshot;
  /** The step the event is about (StepStarted... RunFailed), else null. */
  stepName: string | null;
}

/** What the fields need. */
export interface WorkflowsLiveDeps {
  store: EventStore;
  /** Runs whose snapshot one `runs` feed caches (least recently updated dropped first). @default 1000 */
  maxCachedRuns?: number;
}

/** The subscription fields of the workflows subgraph. */
export function createWorkflowsLiveFields(deps: WorkflowsLiveDeps): LiveField<any>[] {
  const { store } = deps;
  const maxCachedRuns = deps.maxCachedRuns ?? DEFAULT_MAX_CACHED_RUNS;

  const runUpdated: LiveField<RunUpdatedArgs> = {
    name: 'runUpdated',
    start: 'stream',
    types: RUN_EVENT_TYPES,
    normalize: (args) => ({ runId: requireId(args.runId, 'runId') }),
    streamId: (args) => runStreamId(args.runId),
    createProjector(args): LiveProjector {
      const streamId = runStreamId(args.runId);
      const states = createRunStates(store, 1);
      return {
        async project(event) {
          if (event.streamId !== streamId) return null;
          const { after } = await states.advance(event);
          return after ? update(after, event) : null;
        },
      };
    },
  };

  const runs: LiveField<RunsArgs> = {
    name: 'runs',
    start: 'head',
    types: RUN_EVENT_TYPES,
    normalize: (args) => ({ filter: normalizeRunFilter(args.filter) }),
    createProjector({ filter }): LiveProjector {
      const states = createRunStates(store, maxCachedRuns);
      const matches = (run: RunSnapshot | null): boolean =>
        run !== null && (filter.status === undefined || run.status === filter.status) && (filter.workflowId === undefined || run.workflowId === filter.workflowId);
      return {
        async project(event) {
          if (!event.streamId.startsWith('run-')) return null;
          const { before, after } = await states.advance(event);
          if (after === null || !(matches(before) || matches(after))) return null;
          return update(after, event);
        },
      };
    },
  };

  return [runUpdated, runs];
}

function update(run: RunSnapshot, event: RecordedEvent): RunUpdateValue {
  const stepName = (event.data as { stepName?: unknown } | null)?.stepName;
  return { run, stepName: typeof stepName === 'string' ? stepName : null };
}

/** The run before and after one event. */
interface RunTransition {
  before: RunSnapshot | null;
  after: RunSnapshot | null;
}

/**
 * Run states of one projector: the last transition per run stream (at most `max` runs, least
 * recently updated evicted). An event that follows the cached state (stream position = its
 * version + 1) is folded onto it; any other (the first one seen, after an eviction, a replay
 * that starts mid-stream) re-reads the stream before it. The cache changes only once the
 * transition is computed, so a failed read retried for the same event starts over cleanly.
 */
function createRunStates(store: EventStore, max: number): { advance(event: RecordedEvent): Promise<RunTransition> } {
  const cache = new Map<string, RunTransition>();
  return {
    async advance(event) {
      const cached = cache.get(event.streamId);
      let transition: RunTransition;
      if (cached?.after && cached.after.version === event.streamPosition) {
        transition = cached; // the same event again
      } else {
        const before =
          cached?.after && cached.after.version + 1 === event.streamPosition
            ? cached.after
            : event.streamPosition === 0
              ? null
              : foldRunSnapshot(await store.readStream(event.streamId, { count: event.streamPosition }));
        transition = { before, after: evolveRunSnapshot(before, event) };
      }
      cache.delete(event.streamId);
      cache.set(event.streamId, transition);
      if (cache.size > max) cache.delete(cache.keys().next().value!);
      return transition;
    },
  };
}

/**
 * An id argument: 1..200 characters, no U+0000, no unpaired surrogate (the event store refuses it as a stream id).
 * @throws BadUserInputError reason INVALID_ID (`field` names the argument)
 */
export function requireId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LIVE_ID_LENGTH || value.includes('\u0000') || !value.isWellFormed()) {
    throw new BadUserInputError(`${field} must be 1..${MAX_LIVE_ID_LENGTH} characters of valid Unicode without U+0000`, { field, reason: LiveInputReason.InvalidId });
  }
  return value;
}

/**
 * `runs`' filter with null and absent members dropped, keys sorted.
 * @throws BadUserInputError reason INVALID_ID (workflowId), INVALID_FILTER (status not a RunStatus, filter not an object)
 */
export function normalizeRunFilter(filter: unknown): RunsArgs['filter'] {
  if (filter === null || filter === undefined) return {};
  if (typeof filter !== 'object' || Array.isArray(filter)) {
    throw new BadUserInputError('filter must be an object', { field: 'filter', reason: LiveInputReason.InvalidFilter });
  }
  const { status, workflowId } = filter as { status?: unknown; workflowId?: unknown };
  const normalized: RunsArgs['filter'] = {};
  if (status !== null && status !== undefined) {
    if (typeof status !== 'string' || !RUN_STATUSES.includes(status)) {
      throw new BadUserInputError(`filter.status must be one of ${RUN_STATUSES.join(', ')}`, { field: 'filter.status', reason: LiveInputReason.InvalidFilter });
    }
    normalized.status = status;
  }
  if (workflowId !== null && workflowId !== undefined) normalized.workflowId = requireId(workflowId, 'filter.workflowId');
  return normalized;
}
