/**
 * Resolvers of subgraphs/monitoring/schema.graphql: read-only, over the read model.
 */
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { DateTimeScalar, JSONScalar } from '../../../federation/scalars.ts';
import type { FeedFilter, ObservedEventView, ReadModel, TraceView } from '../readModel.ts';
import type { RunRepresentation, TimelineAsOf } from '../timeline/timelineAsOf.ts';
import type { CausalEntry } from '../trace/orderCausally.ts';

/** Builds the resolver map for `buildSubgraphSchema`. `timelineAsOf` serves `WorkflowRun.timeline` (default: the current timeline only). */
// `any` context: buildSubgraphSchema takes GraphQLResolverMap<any>; monitoring needs no context.
export function createResolvers(readModel: ReadModel, timelineAsOf?: TimelineAsOf): GraphQLResolverMap<any> {
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
      __resolveReference: (ref: RunRepresentation) => ({
        id: ref.id,
        asOfVersion: ref.asOfVersion ?? null,
        asOfPublishedVersion: ref.asOfPublishedVersion ?? null,
        updatedAt: ref.updatedAt ?? null,
      }),
      timeline: (run: RunRepresentation, args: { first?: number | null }) =>
        timelineAsOf ? timelineAsOf.timeline(run, args.first) : readModel.runTimeline(run.id, args.first),
    },
  };
}
