/**
 * Resolvers of subgraphs/workflows/schema.graphql. Mutations go through the command handlers
 * (write side, event store) and then read the projected state (read side, Prisma): inline
 * projections committed with the events, so a mutation returns its own write.
 */
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { EventStore } from '../../../eventstore/index.ts';
import type { CommandHandlers } from '../commandHandlers.ts';
import { createBatcher, perRequest, representationId } from '../../../federation/batch.ts';
import { BadUserInputError, NotFoundError } from '../errors.ts';
import type { ReadModel, RunFilter, RunRow, WorkflowRow } from '../readModel.ts';
import { API_SOURCE } from '../run/decide.ts';
import { runStreamId } from '../run/events.ts';
import type { StepRunRow } from '../run/runSnapshot.ts';
import type { StepDefinition, StepKind } from '../workflow/events.ts';
import type { RequestContext } from '../../../federation/requestContext.ts';
import { DateTimeScalar, JSONScalar } from '../../../federation/scalars.ts';

/** What the resolvers need. */
export interface ResolverDeps {
  commands: CommandHandlers;
  readModel: ReadModel;
  store: EventStore;
}

interface StepInput {
  name: string;
  kind: StepKind;
  retryPolicy?: { maxAttempts?: number | null; backoffMs?: number | null } | null;
  timeoutMs: number;
}
interface DefinitionInput {
  id?: string | null;
  name: string;
  steps: StepInput[];
}

function toSteps(steps: StepInput[]): StepDefinition[] {
  return steps.map((s) => ({
    name: s.name,
    kind: s.kind,
    retryPolicy: { maxAttempts: s.retryPolicy?.maxAttempts ?? 1, backoffMs: s.retryPolicy?.backoffMs ?? 0 },
    timeoutMs: s.timeoutMs,
  }));
}

type StepColumns = { maxAttempts: number; backoffMs: number };
const retryPolicy = (row: StepColumns) => ({ maxAttempts: row.maxAttempts, backoffMs: row.backoffMs });

/** Builds the resolver map for `buildSubgraphSchema`. */
// `any` context: buildSubgraphSchema takes GraphQLResolverMap<any>; resolvers type theirs as RequestContext.
export function createResolvers({ commands, readModel, store }: ResolverDeps): GraphQLResolverMap<any> {
  async function mustRun(id: string): Promise<RunRow> {
    const run = await readModel.run(id);
    if (!run) throw new NotFoundError(`Run ${id} does not exist`, { runId: id });
    return run;
  }
  async function mustWorkflow(id: string): Promise<WorkflowRow> {
    const workflow = await readModel.workflow(id);
    if (!workflow) throw new NotFoundError(`Workflow ${id} does not exist`, { workflowId: id });
    return workflow;
  }

  // Entity loads of one request (every representation of an `_entities` call, `workflow` of every run of a list): one query per batch.
  const workflowsOf = (context: unknown) => perRequest(context, 'workflows.workflow', () => createBatcher<string, WorkflowRow | null>({ load: (ids) => readModel.workflowsById(ids) }));
  const runsOf = (context: unknown) => perRequest(context, 'workflows.run', () => createBatcher<string, RunRow | null>({ load: (ids) => readModel.runsById(ids) }));
  const invalid = (message: string) => new BadUserInputError(message, { field: 'id' });

  return {
    JSON: JSONScalar,
    DateTime: DateTimeScalar,
    Query: {
      workflow: (_: unknown, args: { id: string }) => readModel.workflow(args.id),
      workflows: (_: unknown, args: { first?: number | null }) => readModel.workflows(args.first),
      run: (_: unknown, args: { id: string }) => readModel.run(args.id),
      runs: (_: unknown, args: { filter?: RunFilter | null; first?: number | null; after?: string | null }) =>
        readModel.runs(args.filter ?? {}, args.first, args.after),
      async runHistory(_: unknown, args: { runId: string }) {
        const events = await store.readStream(runStreamId(args.runId)).catch((error: unknown) => {
          // An id that cannot be a stream id cannot name a run.
          if ((error as { code?: string }).code === 'INVALID_STREAM_ID') return [];
          throw error;
        });
        if (events.length === 0) throw new NotFoundError(`Run ${args.runId} does not exist`, { runId: args.runId });
        return events;
      },
    },
    Mutation: {
      async defineWorkflow(_: unknown, args: { input: DefinitionInput }, ctx: RequestContext) {
        const id = await commands.defineWorkflow({ id: args.input.id, name: args.input.name, steps: toSteps(args.input.steps) }, ctx.meta);
        return mustWorkflow(id);
      },
      async reviseWorkflow(_: unknown, args: { id: string; input: DefinitionInput }, ctx: RequestContext) {
        const id = await commands.reviseWorkflow(args.id, { name: args.input.name, steps: toSteps(args.input.steps) }, ctx.meta);
        return mustWorkflow(id);
      },
      async startRun(_: unknown, args: { workflowId: string; input?: unknown; idempotencyKey?: string | null }, ctx: RequestContext) {
        const id = await commands.startRun(args.workflowId, args.input ?? {}, args.idempotencyKey ?? null, ctx.meta);
        return mustRun(id);
      },
      async completeStep(_: unknown, args: { runId: string; stepName: string; output?: unknown }, ctx: RequestContext) {
        return mustRun(await commands.completeStep(args.runId, args.stepName, args.output ?? null, API_SOURCE, ctx.meta));
      },
      async failStep(_: unknown, args: { runId: string; stepName: string; error: string }, ctx: RequestContext) {
        return mustRun(await commands.failStep(args.runId, args.stepName, args.error, API_SOURCE, ctx.meta));
      },
      async retryStep(_: unknown, args: { runId: string; stepName: string }, ctx: RequestContext) {
        return mustRun(await commands.retryStep(args.runId, args.stepName, ctx.meta));
      },
      async cancelRun(_: unknown, args: { runId: string; reason?: string | null }, ctx: RequestContext) {
        return mustRun(await commands.cancelRun(args.runId, args.reason ?? null, ctx.meta));
      },
    },
    Workflow: {
      __resolveReference: async (ref: { id: string }, context: unknown) => workflowsOf(context).load(representationId(ref, 'Workflow', invalid)),
      runs: (workflow: WorkflowRow, args: { first?: number | null; after?: string | null }) =>
        readModel.runs({ workflowId: workflow.id }, args.first, args.after),
    },
    WorkflowStep: {
      retryPolicy,
    },
    WorkflowRun: {
      __resolveReference: async (ref: { id: string }, context: unknown) => runsOf(context).load(representationId(ref, 'WorkflowRun', invalid)),
      workflow: (run: RunRow, _: unknown, context: unknown) => workflowsOf(context).load(run.workflowId),
      // Set on subscription snapshots (run/runSnapshot.ts); read-model rows are the current state.
      asOfVersion: (run: RunRow & { asOfVersion?: number }) => run.asOfVersion ?? null,
      asOfPublishedVersion: (run: RunRow & { asOfPublishedVersion?: number }) => run.asOfPublishedVersion ?? null,
    },
    StepRun: {
      retryPolicy,
      document: (step: StepRunRow) => (step.documentId ? { __typename: 'Document', id: step.documentId } : null),
    },
  };
}
