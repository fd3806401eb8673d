/**
 * Resolvers of subgraphs/monitoring/schema.graphql: read-only, over the read model.
 */
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { DateTimeScalar, JSONScalar } from '../../../federation/scalars.ts';
import type { FeedFilter, ObservedEventView, ReadModel, TraceView } from '../readModel.ts';
import type { CausalEntry } from '../trace/orderCausally.ts';

/** Builds the resolver map for `buildSubgraphSchema`. */
// `any` context: buildSubgraphSchema takes GraphQLResolverMap<any>; monitoring needs no context.
export function createResolvers(readModel: ReadModel): GraphQLResolverMap<any> {
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
    },
    WorkflowRun: {
      // A stub of the workflows-owned entity: monitoring knows runs only by id.
      __resolveReference: (ref: { id: string }) => ({ id: ref.id }),
      timeline: (run: { id: string }, args: { first?: number | null }) => readModel.runTimeline(run.id, args.first),
    },
  };
}
