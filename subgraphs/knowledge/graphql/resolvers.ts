/** Resolvers of subgraphs/knowledge/schema.graphql (read-only: knowledge's writes come from events). */
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { DateTimeScalar } from '../../../federation/scalars.ts';
import { createBatcher, perRequest, representationId } from '../../../federation/batch.ts';
import { BadUserInputError } from '../errors.ts';
import type { DocumentPageRequest, EntityRow, ReadModel, RelationRow } from '../readModel.ts';

/** Builds the resolver map for `buildSubgraphSchema`. */
export function createResolvers(readModel: ReadModel): GraphQLResolverMap<any> {
  // Loads of one request (every representation of an `_entities` call, a field of every document of it): one query per batch.
  const entitiesOf = (context: unknown) => perRequest(context, 'knowledge.entity', () => createBatcher<string, EntityRow | null>({ load: (ids) => readModel.entitiesById(ids) }));
  const pageKey = (r: DocumentPageRequest) => JSON.stringify([r.documentId, r.first]);
  const documentEntities = (context: unknown) =>
    perRequest(context, 'knowledge.documentEntities', () => createBatcher<DocumentPageRequest, EntityRow[]>({ load: (r) => readModel.documentEntitiesOf(r), keyOf: pageKey }));
  const documentRelations = (context: unknown) =>
    perRequest(context, 'knowledge.documentRelations', () => createBatcher<DocumentPageRequest, RelationRow[]>({ load: (r) => readModel.documentRelationsOf(r), keyOf: pageKey }));
  const invalid = (message: string) => new BadUserInputError(message, { field: 'id' });
  return {
    DateTime: DateTimeScalar,
    Query: {
      entity: (_: unknown, args: { id: string }) => readModel.entity(args.id),
      searchEntities: (_: unknown, args: { name: string; first: number }) => readModel.searchEntities(args.name, args.first),
      neighbors: (_: unknown, args: { entityId: string; depth: number; first: number }) => readModel.neighbors(args.entityId, args.depth, args.first),
    },
    Entity: {
      __resolveReference: async (reference: { id: string }, context: unknown) => entitiesOf(context).load(representationId(reference, 'Entity', invalid)),
    },
    Document: {
      // Any id is a document as far as knowledge knows: one without entities has none.
      __resolveReference: async (reference: { id: string }) => ({ id: representationId(reference, 'Document', invalid) }),
      entities: (document: { id: string }, args: { first: number }, context: unknown) => documentEntities(context).load({ documentId: document.id, first: args.first }),
      relations: (document: { id: string }, args: { first: number }, context: unknown) => documentRelations(context).load({ documentId: document.id, first: args.first }),
    },
  };
}
