/**
 * Resolvers of subgraphs/content/schema.graphql. `ingestDocument` goes through the command
 * handlers (event store) and then reads the projected document (inline projection: the
 * mutation returns its own write).
 */
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import type { CommandHandlers } from '../commandHandlers.ts';
import { createBatcher, perRequest, representationId } from '../../../federation/batch.ts';
import { BadUserInputError, ContentRejectionReason, NotFoundError } from '../errors.ts';
import type { ChunkRow, DocumentRow, ReadModel } from '../readModel.ts';
import type { RequestContext } from '../../../federation/requestContext.ts';
import { DateTimeScalar } from '../../../federation/scalars.ts';

/** What the resolvers need. */
export interface ResolverDeps {
  commands: CommandHandlers;
  readModel: ReadModel;
}

/** Builds the resolver map for `buildSubgraphSchema`. */
// `any` context: buildSubgraphSchema takes GraphQLResolverMap<any>; resolvers type theirs as RequestContext.
export function createResolvers({ commands, readModel }: ResolverDeps): GraphQLResolverMap<any> {
  // Documents of one request (every representation of an `_entities` call, `document` of every chunk of a list): one query per batch.
  const documentsOf = (context: unknown) => perRequest(context, 'content.document', () => createBatcher<string, DocumentRow | null>({ load: (ids) => readModel.documentsById(ids) }));
  const invalid = (message: string) => new BadUserInputError(ContentRejectionReason.InvalidRepresentation, message, { field: 'id' });
  return {
    DateTime: DateTimeScalar,
    Query: {
      document: (_: unknown, args: { id: string }) => readModel.document(args.id),
      documents: (_: unknown, args: { first?: number | null; after?: string | null }) => readModel.documents(args.first, args.after),
      searchChunks: (_: unknown, args: { query: string; first?: number | null; documentId?: string | null }) =>
        readModel.searchChunks(args.query, args.first, args.documentId),
    },
    Mutation: {
      async ingestDocument(_: unknown, args: { title: string; text?: string | null; corpusFile?: string | null }, ctx: RequestContext) {
        const id = await commands.ingestDocument(args, ctx.meta);
        const document = await readModel.document(id);
        if (!document) throw new NotFoundError(`Document ${id} does not exist`, { documentId: id });
        return document;
      },
    },
    Document: {
      __resolveReference: async (ref: { id: string }, context: unknown) => documentsOf(context).load(representationId(ref, 'Document', invalid)),
      source: (doc: DocumentRow) => doc.sourceKind,
      failure: (doc: DocumentRow) => (doc.failureCode ? { code: doc.failureCode, reason: doc.failureReason ?? '' } : null),
      // A subscription's document as of an event serves the chunks stored by then (asOfChunks).
      async chunks(doc: DocumentRow & { asOfChunks?: number }, args: { first?: number | null; after?: string | null }) {
        const page = await readModel.chunks(doc.id, args.first, args.after, doc.asOfChunks);
        return { ...page, totalCount: () => readModel.chunkTotal(doc.id, doc.asOfChunks) };
      },
    },
    Chunk: {
      id: (chunk: ChunkRow) => `${chunk.documentId}:${chunk.chunkIndex}`,
      index: (chunk: ChunkRow) => chunk.chunkIndex,
      async document(chunk: ChunkRow & { asOfDocument?: DocumentRow }, _: unknown, context: unknown) {
        // The chunk of a documentProgress update belongs to the document as of that update.
        if (chunk.asOfDocument) return chunk.asOfDocument;
        const document = await documentsOf(context).load(chunk.documentId);
        if (!document) throw new NotFoundError(`Document ${chunk.documentId} does not exist`, { documentId: chunk.documentId });
        return document;
      },
    },
  };
}
