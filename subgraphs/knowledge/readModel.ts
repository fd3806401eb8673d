/**
 * The read side: queries on the entity graph (prisma/knowledge/schema.prisma). Simple lookups go
 * through Prisma Client; the graph walk is a recursive CTE (PostgreSQL) through `$queryRaw`.
 */
import type { LogPosition } from '../../eventstore/index.ts';
import type { PrismaClient } from '../../prisma/knowledge/generated/client.ts';
import { BadUserInputError, NotFoundError } from './errors.ts';

/** An entity as served. */
export interface EntityRow {
  id: string;
  name: string;
  kind: string;
  mentionCount: number;
}
/** A neighbour as served. */
export interface NeighborRow {
  entity: EntityRow;
  depth: number;
  weight: number;
}
/** A document relation as served. */
export interface RelationRow {
  from: EntityRow;
  to: EntityRow;
  weight: number;
}

/** One document's page of `documentEntitiesOf` / `documentRelationsOf`: the arguments of `documentEntities` / `documentRelations`. */
export interface DocumentPageRequest {
  documentId: string;
  first: number;
}

/** Largest `depth` of `neighbors` (issue 3: depth ≤ 3). */
export const MAX_NEIGHBOR_DEPTH = 3;
/** Longest search text, in characters. */
export const MAX_SEARCH_LENGTH = 200;

/** Queries of the read model. Every method validates its arguments first. */
export interface ReadModel {
  entity(id: string): Promise<EntityRow | null>;
  /** `entity` of each id, in one query, in the order of `ids`. */
  entitiesById(ids: readonly string[]): Promise<(EntityRow | null)[]>;
  /** @throws BadUserInputError (empty or > 200 characters; first outside 1..100) */
  searchEntities(name: string, first: number): Promise<EntityRow[]>;
  /** @throws BadUserInputError (depth outside 1..3, first outside 1..200); NotFoundError (unknown entity) */
  neighbors(entityId: string, depth: number, first: number): Promise<NeighborRow[]>;
  /**
   * The entity as of a log position: its `mentionCount` sums the mentions (over every document)
   * recorded at or before `position` (mentions projected before positions were kept count as
   * before every position); null when the entity does not exist.
   */
  entityAsOf(id: string, position: LogPosition): Promise<EntityRow | null>;
  /** @throws BadUserInputError (first outside 1..100) */
  documentEntities(documentId: string, first: number): Promise<EntityRow[]>;
  /** @throws BadUserInputError (first outside 1..100) */
  documentRelations(documentId: string, first: number): Promise<RelationRow[]>;
  /** `documentEntities` of each request in one query: its rows, or the BadUserInputError it would throw (not queried), in request order. */
  documentEntitiesOf(requests: readonly DocumentPageRequest[]): Promise<(EntityRow[] | Error)[]>;
  /** `documentRelations` of each request in one query, like `documentEntitiesOf`. */
  documentRelationsOf(requests: readonly DocumentPageRequest[]): Promise<(RelationRow[] | Error)[]>;
}

function checkFirst(first: number, max: number): void {
  if (!Number.isInteger(first) || first < 1 || first > max) throw new BadUserInputError(`first must be between 1 and ${max}, got ${first}`, { field: 'first' });
}

interface RawEntity {
  id: string;
  name: string;
  kind: string;
  mention_count: number;
}
const entityOf = (r: RawEntity): EntityRow => ({ id: r.id, name: r.name, kind: r.kind, mentionCount: r.mention_count });

/** Creates the read model on a Prisma client. */
export function createReadModel(prisma: PrismaClient): ReadModel {
  /**
   * Runs `query` for the requests whose `first` is valid (1..100), as arrays of document ids
   * and limits; the rows carry `request`, the 1-based index among those; errors for the others.
   */
  async function perDocument<R extends { request: number }, T>(
    requests: readonly DocumentPageRequest[],
    query: (documentIds: string[], limits: number[]) => Promise<R[]>,
    map: (row: R) => T,
  ): Promise<(T[] | Error)[]> {
    const answers: (T[] | Error)[] = new Array(requests.length);
    const valid: number[] = [];
    requests.forEach((r, i) => {
      try {
        checkFirst(r.first, 100);
        valid.push(i);
        answers[i] = [];
      } catch (error) {
        answers[i] = error as Error;
      }
    });
    if (valid.length === 0) return answers;
    const rows = await query(valid.map((i) => requests[i]!.documentId), valid.map((i) => requests[i]!.first));
    for (const row of rows) (answers[valid[row.request - 1]!] as T[]).push(map(row));
    return answers;
  }
  const single = async <T>(answer: Promise<(T[] | Error)[]>): Promise<T[]> => {
    const [rows] = await answer;
    if (rows instanceof Error) throw rows;
    return rows!;
  };

  const readModel: ReadModel = {
    async entity(id) {
      return prisma.entity.findUnique({ where: { id }, select: { id: true, name: true, kind: true, mentionCount: true } });
    },

    async entitiesById(ids) {
      const rows = await prisma.entity.findMany({ where: { id: { in: [...ids] } }, select: { id: true, name: true, kind: true, mentionCount: true } });
      const byId = new Map(rows.map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    },

    async searchEntities(name, first) {
      const text = name.trim();
      if (text.length === 0 || text.length > MAX_SEARCH_LENGTH) {
        throw new BadUserInputError(`name must be 1..${MAX_SEARCH_LENGTH} characters after trimming`, { field: 'name' });
      }
      checkFirst(first, 100);
      return prisma.entity.findMany({
        // Prisma passes `contains` to ILIKE as it is: escape LIKE's wildcards so `%` and `_` match themselves.
        where: { name: { contains: text.replace(/[\\%_]/g, '\\$&'), mode: 'insensitive' } },
        orderBy: [{ mentionCount: 'desc' }, { name: 'asc' }, { id: 'asc' }],
        take: first,
        select: { id: true, name: true, kind: true, mentionCount: true },
      });
    },

    async neighbors(entityId, depth, first) {
      if (!Number.isInteger(depth) || depth < 1 || depth > MAX_NEIGHBOR_DEPTH) {
        throw new BadUserInputError(`depth must be between 1 and ${MAX_NEIGHBOR_DEPTH}, got ${depth}`, { field: 'depth' });
      }
      checkFirst(first, 200);
      if (!(await prisma.entity.findUnique({ where: { id: entityId }, select: { id: true } }))) {
        throw new NotFoundError(`Entity ${entityId} does not exist`, { entityId });
      }
      // Edges are undirected: a relation row links its two ends in both directions (summed over
      // documents for the weight). UNION (not ALL) keeps one row per (entity, depth), so each
      // level only expands new rows; MIN(depth) is the hop distance.
      const rows = await prisma.$queryRaw<(RawEntity & { depth: number; weight: number })[]>`
        WITH RECURSIVE walk(id, depth) AS (
          SELECT ${entityId}::text, 0
          UNION
          SELECT CASE WHEN r.from_entity_id = w.id THEN r.to_entity_id ELSE r.from_entity_id END, w.depth + 1
            FROM walk w JOIN relations r ON r.from_entity_id = w.id OR r.to_entity_id = w.id
           WHERE w.depth < ${depth}
        ), nearest AS (
          SELECT id, min(depth) AS depth FROM walk GROUP BY id
        ), weights AS (
          SELECT n.id, sum(r.weight)::int AS weight
            FROM nearest n
            JOIN relations r ON r.from_entity_id = n.id OR r.to_entity_id = n.id
            JOIN nearest p ON p.depth = n.depth - 1
                          AND p.id = CASE WHEN r.from_entity_id = n.id THEN r.to_entity_id ELSE r.from_entity_id END
           WHERE n.depth > 0
           GROUP BY n.id
        )
        SELECT ent.id, ent.name, ent.kind, ent.mention_count, n.depth::int AS depth, wt.weight
          FROM nearest n JOIN weights wt ON wt.id = n.id JOIN entities ent ON ent.id = n.id
         ORDER BY n.depth, wt.weight DESC, ent.name, ent.id
         LIMIT ${first}`;
      return rows.map((r) => ({ entity: entityOf(r), depth: r.depth, weight: r.weight }));
    },

    async entityAsOf(id, position) {
      // Two sums, each an index range of entity_mentions (entity_id, log_transaction_id, log_position).
      const rows = await prisma.$queryRaw<RawEntity[]>`
        SELECT e.id, e.name, e.kind,
               (COALESCE((SELECT sum(m.count) FROM entity_mentions m
                           WHERE m.entity_id = e.id
                             AND (m.log_transaction_id, m.log_position) <= (${position.transactionId}::bigint, ${position.globalPosition}::bigint)), 0)
              + COALESCE((SELECT sum(m.count) FROM entity_mentions m WHERE m.entity_id = e.id AND m.log_transaction_id IS NULL), 0))::int AS mention_count
          FROM entities e WHERE e.id = ${id}`;
      return rows[0] ? entityOf(rows[0]) : null;
    },

    documentEntities: (documentId, first) => single(readModel.documentEntitiesOf([{ documentId, first }])),

    documentRelations: (documentId, first) => single(readModel.documentRelationsOf([{ documentId, first }])),

    documentEntitiesOf: (requests) =>
      perDocument(
        requests,
        // Each document's page is its own LIMITed lateral query (the index on document_id), ranked in its order.
        (documentIds, limits) => prisma.$queryRaw<(RawEntity & { request: number })[]>`
          SELECT q.request::int AS request, x.id, x.name, x.kind, x.mention_count
            FROM unnest(${documentIds}::text[], ${limits}::int[]) WITH ORDINALITY AS q(document_id, lim, request)
            CROSS JOIN LATERAL (
              SELECT e.id, e.name, e.kind, e.mention_count, row_number() OVER (ORDER BY sum(m.count) DESC, e.name, e.id) AS rank
                FROM entity_mentions m JOIN entities e ON e.id = m.entity_id
               WHERE m.document_id = q.document_id
               GROUP BY e.id ORDER BY sum(m.count) DESC, e.name, e.id LIMIT q.lim) x
           ORDER BY q.request, x.rank`,
        (r: RawEntity & { request: number }) => entityOf(r),
      ),

    documentRelationsOf: (requests) =>
      perDocument(
        requests,
        (documentIds, limits) => prisma.$queryRaw<{ request: number; weight: number; f: RawEntity; t: RawEntity }[]>`
          SELECT q.request::int AS request, x.weight, x.f, x.t
            FROM unnest(${documentIds}::text[], ${limits}::int[]) WITH ORDINALITY AS q(document_id, lim, request)
            CROSS JOIN LATERAL (
              SELECT r.weight, to_jsonb(f) AS f, to_jsonb(t) AS t, row_number() OVER (ORDER BY r.weight DESC, f.name, t.name) AS rank
                FROM relations r JOIN entities f ON f.id = r.from_entity_id JOIN entities t ON t.id = r.to_entity_id
               WHERE r.document_id = q.document_id
               ORDER BY r.weight DESC, f.name, t.name LIMIT q.lim) x
           ORDER BY q.request, x.rank`,
        (r) => ({ from: entityOf(r.f), to: entityOf(r.t), weight: r.weight }),
      ),
  };
  return readModel;
}
