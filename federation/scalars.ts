/** Custom scalars of the subgraphs: `JSON` and `DateTime`. */
import { GraphQLError, GraphQLScalarType, Kind, type ValueNode } from 'graphql';
import { describeInexactNumber, formatJsonPath, isExactNumberText, MAX_JSON_DEPTH, shortNumberText } from '../eventstore/index.ts';

/**
 * Any JSON value; literals are turned into plain values (variables inside them resolved).
 * Input nested deeper than `MAX_JSON_DEPTH` (64) levels of objects and arrays is refused with
 * `BAD_USER_INPUT`, the event store's own limit (eventstore/validate.ts).
 *
 * Numbers are IEEE-754 doubles and must be exact (eventstore/jsonNumbers.ts): a literal number
 * whose source text a double cannot hold (`9007199254740993`, `0.1000000000000000055`, `1e400`)
 * is refused with a GraphQLError naming its text and place in the literal (`extensions`: `code`
 * `BAD_USER_INPUT`, `reason` `INEXACT_NUMBER`, `value`, `jsonPath`). graphql-js reports it during
 * validation, so a subgraph's Apollo Server answers it as HTTP 400 `GRAPHQL_VALIDATION_FAILED`
 * with that message; the gateway refuses such literals itself, as `BAD_USER_INPUT`, before
 * planning (gateway/exactNumbers.ts). Variables arrive already parsed: their raw text is checked
 * where the request is read (`federation/httpServer.ts`, `ws/server.ts`). `-0` becomes `0` (the
 * same decimal value; the event store refuses `-0`, which JSON cannot keep).
 */
export const JSONScalar = new GraphQLScalarType({
  name: 'JSON',
  description: `Any JSON value (object, array, string, number, boolean or null), nested at most ${MAX_JSON_DEPTH} levels deep. Numbers are IEEE-754 doubles: one that a double cannot hold exactly (e.g. 9007199254740993) is refused; send it as a string.`,
  serialize: (value) => value,
  parseValue: (value) => withoutNegativeZero(checkDepth(value)),
  parseLiteral: (ast, variables) => withoutNegativeZero(checkDepth(literalValue(ast, variables ?? undefined, []))),
});

/** `value` with every `-0` replaced by `0`; `value` itself when it holds none. Called after `checkDepth`. */
function withoutNegativeZero(value: unknown): unknown {
  if (Object.is(value, -0)) return 0;
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) {
    const items = value.map(withoutNegativeZero);
    return items.some((item, i) => !Object.is(item, value[i])) ? items : value;
  }
  const entries = Object.entries(value);
  const mapped = entries.map(([key, item]) => [key, withoutNegativeZero(item)] as const);
  return mapped.some(([, item], i) => !Object.is(item, entries[i]![1])) ? Object.fromEntries(mapped) : value;
}

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

/** @throws GraphQLError BAD_USER_INPUT (reason INEXACT_NUMBER) for a number literal no double holds exactly */
function literalValue(ast: ValueNode, variables: Record<string, unknown> | undefined, path: (string | number)[]): unknown {
  switch (ast.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
    case Kind.ENUM:
      return ast.value;
    case Kind.INT:
    case Kind.FLOAT:
      if (!isExactNumberText(ast.value)) {
        const inexact = { path, text: ast.value };
        throw new GraphQLError(describeInexactNumber(inexact), {
          nodes: [ast],
          extensions: { code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: shortNumberText(ast.value), jsonPath: formatJsonPath(path) },
        });
      }
      return Number(ast.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return ast.values.map((v, i) => literalValue(v, variables, [...path, i]));
    case Kind.OBJECT:
      return Object.fromEntries(ast.fields.map((f) => [f.name.value, literalValue(f.value, variables, [...path, f.name.value])]));
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
