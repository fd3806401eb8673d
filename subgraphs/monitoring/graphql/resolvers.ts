/**
 * Resolvers of subgraphs/monitoring/schema.graphql: read-only, over the read model.
 */
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { DateTimeScalar, JSONScalar } from '../../../federation/scalars.ts';
import { createBatcher, perRequest, representationId } from '../../../federation/batch.ts';
import { BadUserInputError } from '../errors.ts';
import type { FeedFilter, ObservedEventView, ReadModel, TimelineEntryView, TimelineRequest, TraceView } from '../readModel.ts';
import type { RunRepresentation, TimelineAsOf } from '../timeline/timelineAsOf.ts';
import type { CausalEntry } from '../trace/orderCausally.ts';

/** Builds the resolver map for `buildSubgraphSchema`. `timelineAsOf` serves `WorkflowRun.timeline` (default: the current timeline only). */
// `any` context: buildSubgraphSchema takes GraphQLResolverMap<any>; monitoring needs no context.
export function createResolvers(readModel: ReadModel, timelineAsOf?: TimelineAsOf): GraphQLResolverMap<any> {
  // `WorkflowRun.timeline` of every run of a request's `_entities` call: one statement (readModel.runTimelines).
  const timelinesOf = (context: unknown): Pick<ReadModel, 'runTimeline'> => {
    const batch = perRequest(context, 'monitoring.timeline', () =>
      createBatcher<TimelineRequest, TimelineEntryView[]>({
        load: (requests) => readModel.runTimelines(requests),
        keyOf: ({ runId, first, options }) =>
          JSON.stringify([runId, first ?? null, options?.until?.toISOString() ?? null, options?.runStreamPositionAtMost ?? null]),
      }),
    );
    return { runTimeline: (runId, first, options) => batch.load({ runId, first, options }) };
  };
  return {
    JSON: JSONScalar,
    DateTime: DateTimeScalar,
    Query: {
      trace: async (_: unknown, args: { correlationId: string; first?: number | null }) => readModel.trace(args.correlationId, args.first),
      runTimeline: (_: unknown, args: { runId: string; first?: number | null }) => readModel.runTimeline(args.runId, args.first),
      eventFeed: (_: unknown, args: { after?: string | null; first?: number | null; filter?: FeedFilter | null }) =>
        readModel.eventFeed(args.filter ?? {}, args.first, args.after),
      eventCounters: (_: unknown, args: { source?: string | null }) => readModel.counters(args.source),
    },
    Trace: {
      events: (trace: TraceView) =>
        trace.entries.map((entry: CausalEntry<ObservedEventView>) => ({
          event: entry.event,
          depth: entry.depth,
          causeEventId: entry.cause?.eventId ?? null,
          durationSinceCauseMs: entry.durationSinceCauseMs,
          sinceTraceStartMs: entry.event.occurredAt.getTime() - trace.startedAt.getTime(),
        })),
    },
    ObservedEvent: {
      lagMs: (event: ObservedEventView) => event.observedAt.getTime() - event.occurredAt.getTime(),
      run: (event: ObservedEventView) => (event.runId ? { __typename: 'WorkflowRun', id: event.runId } : null),
    },
    WorkflowRun: {
      // A stub of the workflows-owned entity: monitoring knows runs by id, plus the as-of fields
      // the gateway fetched from workflows for `timeline` (@requires).
      // async: a bad key rejects this entity only (a synchronous throw would fail the whole `_entities` call).
      __resolveReference: async (ref: RunRepresentation) => ({
        id: representationId(ref, 'WorkflowRun', (message) => new BadUserInputError(message, { field: 'id' })),
        asOfVersion: ref.asOfVersion ?? null,
        asOfPublishedVersion: ref.asOfPublishedVersion ?? null,
        updatedAt: ref.updatedAt ?? null,
      }),
      timeline: (run: RunRepresentation, args: { first?: number | null }, context: unknown) =>
        timelineAsOf ? timelineAsOf.timeline(run, args.first, timelinesOf(context)) : timelinesOf(context).runTimeline(run.id, args.first),
    },
  };
}
