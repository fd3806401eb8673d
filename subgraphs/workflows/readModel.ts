/**
 * The read side: queries on the read models through Prisma Client (generated from
 * prisma/workflows/schema.prisma into prisma/workflows/generated). Rows come back in the shape
 * the GraphQL resolvers serve.
 */
import { BadUserInputError, WorkflowsError, WorkflowsErrorCode } from './errors.ts';
import type { Prisma, PrismaClient } from '../../prisma/workflows/generated/client.ts';

/** Page size of `runs` when `first` is not given. */
export const DEFAULT_PAGE_SIZE = 20;
/** Largest `first` accepted by `runs` and `workflows`. */
export const MAX_PAGE_SIZE = 100;

/** A `workflows` row with its `workflow_steps`. */
export type WorkflowRow = Prisma.WorkflowGetPayload<{ include: { steps: true } }>;
/** A `workflow_runs` row with its `step_runs`. */
export type RunRow = Prisma.WorkflowRunGetPayload<{ include: { steps: true } }>;

/** Filter of `runs`. */
export interface RunFilter {
  workflowId?: string | null;
  status?: string | null;
}

/** A Relay connection page of runs, newest first. */
export interface RunPage {
  edges: { cursor: string; node: RunRow }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** Queries of the read models. */
export interface ReadModel {
  /** A workflow with its steps in order, or null. */
  workflow(id: string): Promise<WorkflowRow | null>;
  /** Workflows by creation time (oldest first), at most `first` (default and max 100). */
  workflows(first?: number | null): Promise<WorkflowRow[]>;
  /** A run with its steps in order, or null. */
  run(id: string): Promise<RunRow | null>;
  /** `workflow` of each id, in one query (and one of their steps), in the order of `ids`. */
  workflowsById(ids: readonly string[]): Promise<(WorkflowRow | null)[]>;
  /** `run` of each id, in one query (and one of their steps), in the order of `ids`. */
  runsById(ids: readonly string[]): Promise<(RunRow | null)[]>;
  /**
   * A page of runs, newest first (by `seq`, the global position of RunStarted).
   * @param first page size, 0..100, default 20
   * @param after an `endCursor` of a previous page
   * @throws BadUserInputError `first` out of range; WorkflowsError INVALID_CURSOR for a cursor this server did not produce
   */
  runs(filter: RunFilter, first?: number | null, after?: string | null): Promise<RunPage>;
}

/** Creates the read model queries on a Prisma client (the caller owns and disconnects it). */
export function createReadModel(prisma: PrismaClient): ReadModel {
  const withSteps = { steps: { orderBy: { position: 'asc' as const } } };
  return {
    workflow: (id) => prisma.workflow.findUnique({ where: { id }, include: withSteps }),
    async workflows(first) {
      const take = pageSize(first, MAX_PAGE_SIZE);
      return prisma.workflow.findMany({ include: withSteps, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take });
    },
    run: (id) => prisma.workflowRun.findUnique({ where: { id }, include: withSteps }),
    async workflowsById(ids) {
      const rows = await prisma.workflow.findMany({ where: { id: { in: [...ids] } }, include: withSteps });
      return inOrder(ids, rows);
    },
    async runsById(ids) {
      const rows = await prisma.workflowRun.findMany({ where: { id: { in: [...ids] } }, include: withSteps });
      return inOrder(ids, rows);
    },
    async runs(filter, first, after) {
      const take = pageSize(first, DEFAULT_PAGE_SIZE);
      const before = after ? decodeRunCursor(after) : undefined;
      const rows = await prisma.workflowRun.findMany({
        where: {
          ...(filter.workflowId ? { workflowId: filter.workflowId } : {}),
          ...(filter.status ? { status: filter.status } : {}),
          ...(before !== undefined ? { seq: { lt: before } } : {}),
        },
        include: withSteps,
        orderBy: { seq: 'desc' },
        take: take + 1,
      });
      const page = rows.slice(0, take);
      const edges = page.map((node) => ({ cursor: encodeRunCursor(node.seq), node }));
      return { edges, pageInfo: { hasNextPage: rows.length > take, endCursor: edges.at(-1)?.cursor ?? null } };
    },
  };
}

/** The row of each id (null when none), in the order of `ids`. */
function inOrder<T extends { id: string }>(ids: readonly string[], rows: readonly T[]): (T | null)[] {
  const byId = new Map(rows.map((row) => [row.id, row]));
  return ids.map((id) => byId.get(id) ?? null);
}

function pageSize(first: number | null | undefined, fallback: number): number {
  if (first === null || first === undefined) return fallback;
  if (!Number.isInteger(first) || first < 0 || first > MAX_PAGE_SIZE) {
    throw new BadUserInputError(`first must be an integer in 0..${MAX_PAGE_SIZE}, got ${first}`, { field: 'first' });
  }
  return first;
}

/** Opaque cursor of a run: base64url of `run:<seq>`. */
export function encodeRunCursor(seq: bigint): string {
  return Buffer.from(`run:${seq}`, 'utf8').toString('base64url');
}

/** @throws WorkflowsError INVALID_CURSOR when `cursor` is not one `encodeRunCursor` made */
export function decodeRunCursor(cursor: string): bigint {
  const match = /^run:(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  // seq is a bigint column: a larger number was never produced here.
  if (!match || BigInt(match[1]!) > 9223372036854775807n) {
    throw new WorkflowsError(WorkflowsErrorCode.InvalidCursor, 'Invalid cursor: pass back an endCursor the server returned', { field: 'after' });
  }
  return BigInt(match[1]!);
}
