/** Custom scalar of the content schema: `DateTime` (same serialisation as the workflows subgraph). */
import { GraphQLError, GraphQLScalarType, Kind } from 'graphql';

/** A Date (or ISO string) served as an ISO-8601 UTC string with milliseconds. */
export const DateTimeScalar = new GraphQLScalarType({
  name: 'DateTime',
  description: 'A point in time as an ISO-8601 UTC string with milliseconds.',
  serialize(value) {
    const date = value instanceof Date ? value : new Date(String(value));
    if (Number.isNaN(date.getTime())) throw new GraphQLError(`DateTime cannot represent ${String(value)}`);
    return date.toISOString();
  },
  parseValue(value) {
    const date = new Date(String(value));
    if (typeof value !== 'string' || Number.isNaN(date.getTime())) {
      throw new GraphQLError(`DateTime expects an ISO-8601 string, got ${JSON.stringify(value)}`, { extensions: { code: 'BAD_USER_INPUT' } });
    }
    return date;
  },
  parseLiteral(ast) {
    if (ast.kind !== Kind.STRING || Number.isNaN(new Date(ast.value).getTime())) {
      throw new GraphQLError('DateTime expects an ISO-8601 string', { extensions: { code: 'BAD_USER_INPUT' } });
    }
    return new Date(ast.value);
  },
});
