/**
 * Checks on a subgraph's `_entities(representations:)` before any representation is resolved:
 * the gateway only ever sends representations of the subgraph's entity types (those with
 * `@key`, the `_Entity` union), and at most a page of pages of them. Anything else is refused
 * as a whole with `BAD_USER_INPUT` before a single `__resolveReference` runs, so a hostile or
 * broken call touches no database: today's `@apollo/subgraph` would instead resolve a non-entity
 * object type from the representation's own fields, or fail on an unknown type only after the
 * representations before it had queued their loads (federation/batch.ts).
 */
import { GraphQLError, type GraphQLFieldResolver, type GraphQLSchema, type GraphQLUnionType } from 'graphql';

/**
 * Most representations in one `_entities` call: 10,000, the most a query of the supergraph can
 * ask for in one fetch (100 runs of a page × 100 steps of a workflow, each with its document).
 */
export const MAX_REPRESENTATIONS = 10_000;

const refusal = (message: string, reason: string) => new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', reason } });

/**
 * Wraps the resolver of `Query._entities` of `schema` (built by `buildSubgraphSchema`) in place
 * with the checks above; a schema without entities is left as it is.
 * @returns the schema
 */
export function guardEntities(schema: GraphQLSchema, maxRepresentations = MAX_REPRESENTATIONS): GraphQLSchema {
  const field = schema.getQueryType()?.getFields()._entities;
  // Duck-typed, not `isUnionType`: graphql's CJS and ESM builds can both be loaded (e.g. under vitest).
  const union = schema.getType('_Entity') as Partial<GraphQLUnionType> | undefined;
  if (!field?.resolve || typeof union?.getTypes !== 'function') return schema;
  const entityTypes = new Set(union.getTypes().map((t: { name: string }) => t.name));
  const resolve: GraphQLFieldResolver<unknown, unknown> = field.resolve;
  field.resolve = (source, args: { representations?: unknown }, context, info) => {
    const representations = args.representations;
    if (Array.isArray(representations)) {
      if (representations.length > maxRepresentations) {
        throw refusal(`_entities takes at most ${maxRepresentations} representations, got ${representations.length}`, 'TOO_MANY_REPRESENTATIONS');
      }
      representations.forEach((representation: unknown, i) => {
        const typename = (representation as { __typename?: unknown } | null)?.__typename;
        if (typeof typename !== 'string' || !entityTypes.has(typename)) {
          const named = typeof typename === 'string' ? `"${typename.slice(0, 100)}"` : 'no __typename';
          throw refusal(`representations[${i}] has ${named}: it must be one of this subgraph's entity types (${[...entityTypes].join(', ')})`, 'INVALID_REPRESENTATION');
        }
      });
    }
    return resolve(source, args, context, info);
  };
  return schema;
}
