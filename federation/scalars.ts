/** Custom scalars of the subgraphs: `JSON` and `DateTime`. */
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { MAX_JSON_DEPTH } from '../eventstore/index.ts';

/**
 * Any JSON value; literals are turned into plain values (variables inside them resolved).
 * Input nested deeper than `MAX_JSON_DEPTH` (64) levels of objects and arrays is refused with
 * `BAD_USER_INPUT`, the event store's own limit (eventstore/validate.ts).
 */
export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: `Any JSON value (object, array, string, number, boolean or null), nested at most ${MAX_JSON_DEPTH} levels deep.`,
  serialize: (value) => value,
  parseValue: (value) => checkDepth(value),
  parseLiteral: (ast, variables) => checkDepth(literalValue(ast, variables ?? undefined)),
});

/**
 * Returns `value` when its objects and arrays nest at most `MAX_JSON_DEPTH` levels.
 * Stops descending at the limit, so a value nested a million levels deep costs no deep stack.
 * @throws GraphQLError BAD_USER_INPUT naming the limit
 */
function checkDepth(value: unknown): unknown {
  const tooDeep = (v: unknown, depth: number): boolean => {
    if (v === null || typeof v !== 'object') return false;
    if (depth > MAX_JSON_DEPTH) return true;
    return (Array.isArray(v) ? v : Object.values(v)).some((item) => tooDeep(item, depth + 1));
  };
  if (tooDeep(value, 1)) {
    throw new GraphQLError(`JSON values may nest objects and arrays at most ${MAX_JSON_DEPTH} levels deep`, { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return value;
}

function literalValue(ast: ValueNode, variables: Record<string, unknown> | undefined): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
    case Kind.ENUM:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((v) => literalValue(v, variables));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literalValue(f.value, variables)]));
    case Kind.VARIABLE:
      return variables?.[ast.name.value];
  }
}

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
