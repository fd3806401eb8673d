/**
 * The read side: queries on `documents` and `chunks` through Prisma Client (generated from
 * prisma/content/schema.prisma into prisma/content/generated), and full-text search in SQL
 * (Prisma cannot express `tsvector`): PostgreSQL's `websearch_to_tsquery`, `ts_rank` and
 * `ts_headline` (PostgreSQL manual, "Full Text Search", §12.3).
 */
import type pg from 'pg';
import type { Chunk, Document, PrismaClient } from '../../prisma/content/generated/client.ts';
import { BadUserInputError, ContentError, ContentErrorCode, ContentRejectionReason } from './errors.ts';
import { SEARCH_CONFIG } from './projections/documentsProjection.ts';

/** Page sizes of `documents` and `Document.chunks` (default 20, max 100) and of `searchChunks` (default 10, 1..100). */
export const PAGE_LIMITS = { defaultPageSize: 20, maxPageSize: 100, defaultSearchSize: 10, maxQueryLength: 500 } as const;

export type DocumentRow = Document;
export type ChunkRow = Chunk;

/** A Relay connection page. */
export interface Page<T> {
  edges: { cursor: string; node: T }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/** One search result. */
export interface SearchHit {
  chunk: ChunkRow;
  rank: number;
  headline: string;
}

/** Queries of the read models. */
export interface ReadModel {
  document(id: string): Promise<DocumentRow | null>;
  /** `document` of each id, in one query, in the order of `ids`. */
  documentsById(ids: readonly string[]): Promise<(DocumentRow | null)[]>;
  /**
   * Documents newest first (by `seq`, the global position of the stream's first event).
   * @throws BadUserInputError INVALID_PAGE_SIZE; ContentError INVALID_CURSOR
   */
  documents(first?: number | null, after?: string | null): Promise<Page<DocumentRow>>;
  /**
   * A document's chunks in index order; with `below`, only those of index < `below` (a document as
   * of an earlier event, when fewer chunks were stored: see document/documentSnapshot.ts).
   * @throws BadUserInputError INVALID_PAGE_SIZE; ContentError INVALID_CURSOR
   */
  chunks(documentId: string, first?: number | null, after?: string | null, below?: number | null): Promise<Page<ChunkRow>>;
  /** Number of stored chunks of a document (of index < `below` when given). */
  chunkTotal(documentId: string, below?: number | null): Promise<number>;
  /**
   * Full-text search over every chunk (or one document's), best `ts_rank` first, ties by
   * document then chunk index.
   * @param first 1..100, default 10
   * @throws BadUserInputError INVALID_QUERY (empty or > 500 characters), INVALID_PAGE_SIZE
   */
  searchChunks(query: string, first?: number | null, documentId?: string | null): Promise<SearchHit[]>;
}

/** Creates the queries on a Prisma client and a pool of the same database (the caller owns both). */
export function createReadModel(prisma: PrismaClient, pool: pg.Pool): ReadModel {
  return {
    document: (id) => prisma.document.findUnique({ where: { id } }),
    async documentsById(ids) {
      const byId = new Map((await prisma.document.findMany({ where: { id: { in: [...ids] } } })).map((row) => [row.id, row]));
      return ids.map((id) => byId.get(id) ?? null);
    },
    async documents(first, after) {
      const take = pageSize(first, PAGE_LIMITS.defaultPageSize, 0);
      const before = after ? BigInt(decodeCursor('document', after)) : undefined;
      const rows = await prisma.document.findMany({
        where: before !== undefined ? { seq: { lt: before } } : {},
        orderBy: { seq: 'desc' },
        take: take + 1,
      });
      return page(rows, take, (row) => encodeCursor('document', row.seq.toString()));
    },
    async chunks(documentId, first, after, below) {
      const take = pageSize(first, PAGE_LIMITS.defaultPageSize, 0);
      const from = after ? Number(decodeCursor('chunk', after)) : -1;
      const rows = await prisma.chunk.findMany({
        where: { documentId, chunkIndex: { gt: from, ...(below !== null && below !== undefined ? { lt: below } : {}) } },
        orderBy: { chunkIndex: 'asc' },
        take: take + 1,
      });
      return page(rows, take, (row) => encodeCursor('chunk', String(row.chunkIndex)));
    },
    chunkTotal: (documentId, below) =>
      prisma.chunk.count({ where: { documentId, ...(below !== null && below !== undefined ? { chunkIndex: { lt: below } } : {}) } }),
    async searchChunks(query, first, documentId) {
      const trimmed = query.trim();
      if (trimmed.length === 0 || query.length > PAGE_LIMITS.maxQueryLength) {
        throw new BadUserInputError(ContentRejectionReason.InvalidQuery, `A search query needs 1..${PAGE_LIMITS.maxQueryLength} characters`, { field: 'query' });
      }
      const limit = pageSize(first, PAGE_LIMITS.defaultSearchSize, 1);
      // Rank and limit first, then build headlines for the few rows kept (ts_headline re-parses the text).
      const { rows } = await pool.query<{
        document_id: string;
        chunk_index: number;
        text: string;
        start_offset: number;
        end_offset: number;
        rank: number;
        headline: string;
      }>(
        `SELECT hit.*, ts_headline('${SEARCH_CONFIG}', hit.text, q, 'MaxWords=35, MinWords=15, MaxFragments=2, FragmentDelimiter=" … "') AS headline
           FROM (SELECT c.document_id, c.chunk_index, c.text, c.start_offset, c.end_offset, ts_rank(c.search, q) AS rank
                   FROM chunks c, websearch_to_tsquery('${SEARCH_CONFIG}', $1) q
                  WHERE c.search @@ q AND ($3::text IS NULL OR c.document_id = $3)
                  ORDER BY rank DESC, c.document_id, c.chunk_index
                  LIMIT $2) hit,
                websearch_to_tsquery('${SEARCH_CONFIG}', $1) q
          ORDER BY hit.rank DESC, hit.document_id, hit.chunk_index`,
        [trimmed, limit, documentId ?? null],
      );
      return rows.map((r) => ({
        chunk: { documentId: r.document_id, chunkIndex: r.chunk_index, text: r.text, startOffset: r.start_offset, endOffset: r.end_offset },
        rank: Number(r.rank),
        headline: r.headline,
      }));
    },
  };
}

function page<T>(rows: T[], take: number, cursorOf: (row: T) => string): Page<T> {
  const edges = rows.slice(0, take).map((node) => ({ cursor: cursorOf(node), node }));
  return { edges, pageInfo: { hasNextPage: rows.length > take, endCursor: edges.at(-1)?.cursor ?? null } };
}

function pageSize(first: number | null | undefined, fallback: number, min: number): number {
  if (first === null || first === undefined) return fallback;
  if (!Number.isInteger(first) || first < min || first > PAGE_LIMITS.maxPageSize) {
    throw new BadUserInputError(ContentRejectionReason.InvalidPageSize, `first must be an integer in ${min}..${PAGE_LIMITS.maxPageSize}, got ${first}`, { field: 'first' });
  }
  return first;
}

/** Opaque cursor: base64url of `<kind>:<decimal>` (a document's bigint position, a chunk's int index). */
export function encodeCursor(kind: 'document' | 'chunk', value: string): string {
  return Buffer.from(`${kind}:${value}`, 'utf8').toString('base64url');
}

/** @throws ContentError INVALID_CURSOR when `cursor` is not one `encodeCursor(kind, …)` made */
export function decodeCursor(kind: 'document' | 'chunk', cursor: string): string {
  const match = new RegExp(`^${kind}:(\\d{1,18})$`).exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  // A document cursor is a bigint position (18 digits always fit); a chunk cursor is a chunk
  // index, an int column.
  if (!match || (kind === 'chunk' && Number(match[1]) > 2_147_483_647)) throw new ContentError(ContentErrorCode.InvalidCursor, 'Invalid cursor: pass back an endCursor the server returned', { field: 'after' });
  return match[1]!;
}
