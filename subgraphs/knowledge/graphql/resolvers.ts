/** Resolvers of subgraphs/knowledge/schema.graphql (read-only: knowledge's writes come from events). */
import type { GraphQLResolverMap } from '@apollo/subgraph/dist/schema-helper/resolverMap.js';
import { DateTimeScalar } from '../../../federation/scalars.ts';
import type { ReadModel } from '../readModel.ts';

/** Builds the resolver map for `buildSubgraphSchema`. */
export function createResolvers(readModel: ReadModel): GraphQLResolverMap<any> {
  return {
    DateTime: DateTimeScalar,
    Query: {
      entity: (_: unknown, args: { id: string }) => readModel.entity(args.id),
      searchEntities: (_: unknown, args: { name: string; first: number }) => readModel.searchEntities(args.name, args.first),
      neighbors: (_: unknown, args: { entityId: string; depth: number; first: number }) => readModel.neighbors(args.entityId, args.depth, args.first),
    },
    Entity: {
      __resolveReference: (reference: { id: string }) => readModel.entity(reference.id),
    },
    Document: {
      // Any id is a document as far as knowledge knows: one without entities has none.
      __resolveReference: (reference: { id: string }) => ({ id: reference.id }),
      entities: (document: { id: string }, args: { first: number }) => readModel.documentEntities(document.id, args.first),
      relations: (document: { id: string }, args: { first: number }) => readModel.documentRelations(document.id, args.first),
    },
  };
}
