/**
 * `WorkflowRun.timeline` as of a run event: on a subscription update the workflows subgraph
 * sends the run as of one of its events (`asOfVersion`, the event's stream position;
 * `asOfPublishedVersion`, the last one of those published to other services; `updatedAt`, the
 * event's time), and the timeline a client sees with it is the one of that moment: the entries
 * that occurred at or before that event (ties of other services included), without the run's own
 * later events (its stream orders them even within one millisecond).
 *
 * Monitoring observes workflows' events a little after they happen, so it first waits (bounded:
 * `waitMs`) until it has observed the run's published event at `asOfPublishedVersion` (or a later
 * one: per-stream order then proves every earlier one is in). It wakes on its store's append
 * hints plus a short poll. Past `waitMs` it answers with what it has observed and logs a warning.
 * Without `asOfVersion` (queries) it is today's timeline, the current one.
 */
import type { EventStore, Logger } from '../../../eventstore/index.ts';
import { BadUserInputError } from '../errors.ts';
import { TRACE_MAX_ENTRIES, type ReadModel, type TimelineEntryView } from '../readModel.ts';

/** How long a timeline as of an event waits for monitoring to observe that event, in ms. @default 5000 */
export const DEFAULT_AS_OF_WAIT_MS = 5_000;
/** Poll interval of that wait besides the append hints, in ms. */
export const AS_OF_POLL_MS = 100;

/** The WorkflowRun representation monitoring receives (`@requires(fields: "asOfVersion asOfPublishedVersion updatedAt")`). */
export interface RunRepresentation {
  id: string;
  asOfVersion?: number | null;
  asOfPublishedVersion?: number | null;
  /** ISO-8601 (representations carry the DateTime scalar's serialized form). */
  updatedAt?: string | Date | null;
}

/** Options of {@link createTimelineAsOf}. */
export interface TimelineAsOfOptions {
  readModel: Pick<ReadModel, 'runTimeline' | 'observedRunEvent'>;
  /** Monitoring's store: its append hints wake the wait. */
  store: Pick<EventStore, 'onAppended'>;
  logger: Logger;
  /** @default DEFAULT_AS_OF_WAIT_MS */
  waitMs?: number;
  /** @default AS_OF_POLL_MS */
  pollMs?: number;
}

/** Serves `WorkflowRun.timeline` for a representation. */
export interface TimelineAsOf {
  /**
   * The run's timeline (at most `first` entries), as of the representation's event when it names one.
   * @throws BadUserInputError `first` out of range (readModel.runTimeline), an asOf field that is not a
   *   stream position, or an `updatedAt` that is not a time
   * @param timelines reads the timeline itself (e.g. through the request's batch: graphql/resolvers.ts) @default the read model's `runTimeline`
   */
  timeline(run: RunRepresentation, first?: number | null, timelines?: Pick<ReadModel, 'runTimeline'>): Promise<TimelineEntryView[]>;
}

/** Creates the as-of timeline on the read model. */
export function createTimelineAsOf(options: TimelineAsOfOptions): TimelineAsOf {
  const { readModel, store, logger } = options;
  const waitMs = options.waitMs ?? DEFAULT_AS_OF_WAIT_MS;
  const pollMs = options.pollMs ?? AS_OF_POLL_MS;

  async function waitForObservation(runId: string, streamPosition: number): Promise<{ occurredAt: Date; streamPosition: number } | null> {
    const deadline = Date.now() + waitMs;
    let found = await readModel.observedRunEvent(runId, streamPosition);
    if (found || waitMs <= 0) return found;
    let wake: (() => void) | undefined;
    const stop = store.onAppended(() => wake?.());
    try {
      while (Date.now() < deadline) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(1, Math.min(pollMs, deadline - Date.now())));
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
        found = await readModel.observedRunEvent(runId, streamPosition);
        if (found) return found;
      }
      return null;
    } finally {
      wake = undefined;
      stop();
    }
  }

  return {
    async timeline(run, first, timelines = readModel) {
      if (run.asOfVersion === null || run.asOfVersion === undefined) return timelines.runTimeline(run.id, first);
      const asOfVersion = streamPosition(run.asOfVersion, 'asOfVersion');
      const target = run.asOfPublishedVersion === null || run.asOfPublishedVersion === undefined ? asOfVersion : streamPosition(run.asOfPublishedVersion, 'asOfPublishedVersion');
      const at = run.updatedAt === null || run.updatedAt === undefined ? null : new Date(run.updatedAt);
      if (at !== null && Number.isNaN(at.getTime())) throw new BadUserInputError('updatedAt must be an ISO-8601 time', { field: 'updatedAt' });
      // `first` is checked before waiting, not after (the read model's rule and error).
      if (first !== null && first !== undefined && (!Number.isInteger(first) || first < 1 || first > TRACE_MAX_ENTRIES)) return timelines.runTimeline(run.id, first);
      const started = Date.now();
      const observed = await waitForObservation(run.id, target);
      if (observed === null) {
        logger.warn(
          { runId: run.id, asOfVersion, asOfPublishedVersion: target, waitedMs: Date.now() - started },
          'monitoring: the run event a timeline is as of was not observed in time; answering with what is observed',
        );
      }
      // The event's own time; without it, the observed event's when that is the one asked for.
      const until = at ?? (observed !== null && observed.streamPosition === asOfVersion ? observed.occurredAt : null);
      return timelines.runTimeline(run.id, first, { until, runStreamPositionAtMost: asOfVersion });
    },
  };
}

function streamPosition(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
    throw new BadUserInputError(`${field} must be a stream position (an integer ≥ 0)`, { field });
  }
  return value;
}
