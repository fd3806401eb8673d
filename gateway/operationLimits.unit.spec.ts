/**
 * The operation limits without a server: how depth, aliases, directives and cost are measured
 * (page sizes from literals, variables and schema defaults; fragments as if inlined), the
 * iterative JSON depth, inline value depth, the `GATEWAY_MAX_*` variables and the token-limit error.
 */
import { createRequire } from 'node:module';
import { parse, type OperationDefinitionNode } from 'graphql';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../config/env.ts';
import { MAX_JSON_DEPTH } from '../eventstore/index.ts';
import {
  ASSUMED_PAGE_SIZE,
  DEFAULT_OPERATION_LIMITS,
  MAX_INLINE_LIST_DEPTH,
  checkDocumentSize,
  checkInlineValueDepth,
  checkOperationLimits,
  checkVariableDepth,
  createOperationLimitsCheck,
  formatTokenLimitError,
  jsonDepth,
  operationLimitsFromEnv,
  type OperationLimits,
} from './operationLimits.ts';

// The graphql-js instance the gateway's schemas come from (see the top of operationLimits.ts).
const { GraphQLError, buildSchema } = createRequire(import.meta.url)('graphql') as typeof import('graphql');
type GraphQLError = InstanceType<typeof GraphQLError>;

const schema = buildSchema(/* GraphQL */ `
  type Query {
    documents(first: Int, after: String): DocumentConnection!
    document(id: ID!): Document
    neighbors(entityId: ID!, depth: Int = 1, first: Int = 50): [Neighbor!]!
    runs(last: Int, first: Int): [Run!]!
  }
  type DocumentConnection { edges: [DocumentEdge!]! }
  type DocumentEdge { node: Document! }
  type Document { id: ID! title: String! chunks(first: Int): ChunkConnection! }
  type ChunkConnection { edges: [ChunkEdge!]! }
  type ChunkEdge { node: Chunk! }
  type Chunk { index: Int! document: Document! }
  type Neighbor { depth: Int! name: String! }
  type Run { id: ID! }
`);

const NO_LIMITS: OperationLimits = { maxDepth: 0, maxAliases: 0, maxDirectives: 0, maxTokens: 0, maxCost: 0, maxVariableDepth: 0, maxDocumentBytes: 0 };

/** The error `checkOperationLimits` throws for `source`, or undefined when it passes. */
function rejection(source: string, limits: Partial<OperationLimits>, variables: Record<string, unknown> = {}): GraphQLError | undefined {
  const document = parse(source);
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition')!;
  try {
    checkOperationLimits(schema, document, operation, variables, { ...NO_LIMITS, ...limits });
    return undefined;
  } catch (error) {
    if (error instanceof GraphQLError) return error;
    throw error;
  }
}

/** The cost GraphQL Armor found for `source` (read from the rejection with a limit of 1). */
function cost(source: string, variables: Record<string, unknown> = {}): number {
  const message = rejection(source, { maxCost: 1 }, variables)?.message ?? '';
  const found = /^Query Cost limit of 1 exceeded, found (\d+)\.$/.exec(message);
  if (!found) throw new Error(`no cost in ${JSON.stringify(message)}`);
  return Number(found[1]);
}

describe('operation depth, aliases and directives', () => {
  const depth12 = '{ documents { edges { node { chunks { edges { node { document { chunks { edges { node { document { title } } } } } } } } } } } }';

  it('accepts an operation exactly at the depth limit and rejects one level more, naming the limit', () => {
    expect(rejection(depth12, { maxDepth: 12 })).toBeUndefined();
    const error = rejection(depth12, { maxDepth: 11 });
    expect(error?.message).toBe('Query depth limit of 11 exceeded, found 12.');
    expect(error?.extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDepth', http: { status: 400 } });
  });

  it('counts fragments and inline fragments as if their fields were inlined', () => {
    const withFragments = `
      { documents { edges { node { ...D } } } }
      fragment D on Document { chunks { edges { node { ... on Chunk { document { title } } } } } }
    `;
    // documents edges node chunks edges node document title = 8 levels.
    expect(rejection(withFragments, { maxDepth: 8 })).toBeUndefined();
    expect(rejection(withFragments, { maxDepth: 7 })?.message).toBe('Query depth limit of 7 exceeded, found 8.');
  });

  it('does not count introspection (Sandbox) for depth or cost', () => {
    const introspection = '{ __schema { types { fields { type { ofType { ofType { ofType { ofType { name } } } } } } } } }';
    expect(rejection(introspection, { maxDepth: 2, maxCost: 1 })).toBeUndefined();
  });

  it('limits aliases (__typename aside) and directives', () => {
    const aliased = (n: number) => `{ ${Array.from({ length: n }, (_, i) => `n${i}: neighbors(entityId: "e", depth: 3) { depth }`).join(' ')} t: __typename }`;
    expect(rejection(aliased(3), { maxAliases: 3 })).toBeUndefined();
    expect(rejection(aliased(4), { maxAliases: 3 })).toMatchObject({
      message: 'Aliases limit of 3 exceeded, found 4.',
      extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxAliases' },
    });
    const directives = '{ a: __typename @include(if: true) b: __typename @skip(if: false) c: __typename @include(if: true) }';
    expect(rejection(directives, { maxDirectives: 3 })).toBeUndefined();
    expect(rejection(directives, { maxDirectives: 2 })).toMatchObject({
      message: 'Directives limit of 2 exceeded, found 3.',
      extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDirectives' },
    });
  });

  it('measures only the operation that runs', () => {
    const document = parse(`query Small { document(id: "1") { title } } query Deep ${depth12}`);
    const [small, deep] = document.definitions as OperationDefinitionNode[];
    const limits = { ...NO_LIMITS, maxDepth: 2 };
    expect(() => checkOperationLimits(schema, document, small!, {}, limits)).not.toThrow();
    expect(() => checkOperationLimits(schema, document, deep!, {}, limits)).toThrow('Query depth limit of 2 exceeded, found 12.');
  });
});

describe('operation cost', () => {
  it('costs 2 per object and 1 per leaf, multiplied by the page size of each paginated field', () => {
    // documents(10): (2 + edges(2 + node(2 + id 1))) × 10
    expect(cost('{ documents(first: 10) { edges { node { id } } } }')).toBe(70);
    // Nested pages multiply: (2 + (2 + (2 + (2 + (2 + (2 + 1)) × 5))) × 10
    expect(cost('{ documents(first: 10) { edges { node { chunks(first: 5) { edges { node { index } } } } } } }')).toBe(10 * (6 + 5 * 7));
    expect(cost('{ document(id: "1") { title } }')).toBe(3);
  });

  it('takes the page size from a variable, the variable default, the schema default or the assumed size', () => {
    const paged = 'query($n: Int) { documents(first: $n) { edges { node { id } } } }';
    expect(cost(paged, { n: 100 })).toBe(700);
    expect(cost('query($n: Int = 7) { documents(first: $n) { edges { node { id } } } }')).toBe(49);
    expect(cost('query($n: Int = 7) { documents(first: $n) { edges { node { id } } } }', { n: 3 })).toBe(21);
    // neighbors(first: Int = 50); documents(first: Int) has no default.
    expect(cost('{ neighbors(entityId: "e") { depth } }')).toBe(50 * 3);
    expect(cost('{ documents { edges { node { id } } } }')).toBe(ASSUMED_PAGE_SIZE * 7);
    expect(cost(paged, { n: null })).toBe(ASSUMED_PAGE_SIZE * 7);
    // The larger of first and last.
    expect(cost('{ runs(first: 2, last: 9) { id } }')).toBe(9 * 3);
  });

  it('rejects the nested-pages query of the report, with literals or with variables', () => {
    const literal = '{ documents(first:100){ edges{ node{ chunks(first:100){ edges{ node{ document{ chunks(first:100){ edges{ node{ index }}}}}}}}}}}';
    const variables = 'query($n: Int){ documents(first:$n){ edges{ node{ chunks(first:$n){ edges{ node{ document{ chunks(first:$n){ edges{ node{ index }}}}}}}}}}}';
    const limit = { maxCost: DEFAULT_OPERATION_LIMITS.maxCost };
    expect(rejection(literal, limit)).toMatchObject({
      message: 'Query Cost limit of 500000 exceeded, found 7080600.',
      extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxCost', http: { status: 400 } },
    });
    expect(rejection(variables, limit, { n: 100 })?.message).toBe('Query Cost limit of 500000 exceeded, found 7080600.');
    expect(rejection(variables, limit, { n: 5 })).toBeUndefined();
  });
});

describe('variable depth', () => {
  const nested = (levels: number) => JSON.parse('['.repeat(levels) + ']'.repeat(levels)) as unknown;

  it('measures nesting: 0 for scalars, 1 for a flat object or array', () => {
    expect(jsonDepth(null)).toBe(0);
    expect(jsonDepth('x')).toBe(0);
    expect(jsonDepth({})).toBe(1);
    expect(jsonDepth([1, 2])).toBe(1);
    expect(jsonDepth({ a: [{ b: 1 }], c: 2 })).toBe(3);
    expect(jsonDepth(nested(64))).toBe(64);
  });

  it('measures a value nested a million levels without recursion, stopping past the limit', () => {
    const deep = nested(1_000_000);
    expect(jsonDepth(deep, 64)).toBe(65);
    expect(jsonDepth(deep)).toBe(1_000_000);
  });

  it('rejects a variable nested deeper than the limit with BAD_USER_INPUT', () => {
    expect(() => checkVariableDepth({ input: nested(64), other: 'x' }, 64)).not.toThrow();
    let thrown: unknown;
    try {
      checkVariableDepth({ ok: 1, input: { a: nested(64) } }, 64);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(GraphQLError);
    expect(thrown).toMatchObject({
      message: 'Variable "$input" is too deep: JSON values may nest objects and arrays at most 64 levels deep',
      extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
    });
    expect(() => checkVariableDepth({ input: nested(1000) }, 0)).not.toThrow();
  });
});

describe('inline value depth', () => {
  const list = (levels: number) => '['.repeat(levels) + '1' + ']'.repeat(levels);
  const object = (levels: number) => '{a:'.repeat(levels) + '1' + '}'.repeat(levels);
  const rejection = (source: string, limit: number): unknown => {
    try {
      checkInlineValueDepth(parse(source), limit);
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it(`accepts lists nested ${MAX_INLINE_LIST_DEPTH} levels and objects nested to the limit, in arguments and variable defaults`, () => {
    expect(rejection(`mutation { startRun(workflowId: "w", input: ${list(MAX_INLINE_LIST_DEPTH)}) { id } }`, 64)).toBeUndefined();
    expect(rejection(`mutation { startRun(workflowId: "w", input: ${object(64)}) { id } }`, 64)).toBeUndefined();
    expect(rejection(`query($v: JSON = ${object(63)}) { a(x: [${object(63)}]) }`, 64)).toBeUndefined();
  });

  it('rejects deeper lists (exponential in the query planner) and deeper objects with BAD_USER_INPUT, wherever they are written', () => {
    for (const [source, message] of [
      [`mutation { completeStep(runId: "x", stepName: "y", output: ${list(MAX_INLINE_LIST_DEPTH + 1)}) { id } }`, /lists at most 10 levels/],
      [`mutation { completeStep(runId: "x", stepName: "y", output: ${list(27)}) { id } }`, /lists at most 10 levels/],
      [`mutation { startRun(workflowId: "w", input: ${object(65)}) { id } }`, /at most 64 levels/],
      [`query($v: JSON = ${object(65)}) { a }`, /at most 64 levels/],
      [`query { a @include(if: true) b(x: {y: ${list(11)}}) }`, /lists at most 10 levels/],
    ] as const) {
      const error = rejection(source, 64);
      expect(error, source.slice(0, 60)).toBeInstanceOf(GraphQLError);
      expect(error).toMatchObject({ message: expect.stringMatching(message), extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
    }
  });

  it('keeps the list limit when the depth limit is off', () => {
    expect(rejection(`{ a(x: ${object(500)}) }`, 0)).toBeUndefined();
    expect(rejection(`{ a(x: ${list(11)}) }`, 0)).toBeInstanceOf(GraphQLError);
  });
});

describe('document size', () => {
  const refusal = (query: unknown, max: number) => {
    try {
      checkDocumentSize(query, max);
      return undefined;
    } catch (error) {
      return error as GraphQLError;
    }
  };

  it('refuses a document of comments and whitespace over maxDocumentBytes, which the token limit does not count', () => {
    const query = `{ a }${' '.repeat(70_000)}#${'x'.repeat(10)}`;
    const error = refusal(query, DEFAULT_OPERATION_LIMITS.maxDocumentBytes);
    expect(error).toBeInstanceOf(GraphQLError);
    expect(error?.message).toBe('Document exceeds the limit of 65536 bytes; pass large values as variables.');
    expect(error?.extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDocumentBytes', max: 65_536, http: { status: 413 } });
  });

  it('counts bytes of UTF-8, not UTF-16 units: 100 × "😀" (200 units) is 400 bytes (407 with the rest)', () => {
    const query = `#${'😀'.repeat(100)}\n{ a }`;
    expect(refusal(query, 407)).toBeUndefined();
    expect(refusal(query, 406)?.extensions.limit).toBe('maxDocumentBytes');
  });

  it('lets anything through with 0, and leaves a missing or non-string query to Apollo Server', () => {
    expect(refusal('x'.repeat(1_000_000), 0)).toBeUndefined();
    expect(refusal(undefined, 10)).toBeUndefined();
    expect(refusal({ not: 'a string'.repeat(10) }, 10)).toBeUndefined();
  });
});

describe('configuration', () => {
  it('defaults every limit, reads GATEWAY_MAX_* (empty = default, 0 = off)', () => {
    expect(operationLimitsFromEnv({})).toEqual(DEFAULT_OPERATION_LIMITS);
    // The subgraphs' JSON scalar refuses deeper values with BAD_USER_INPUT too: one answer for clients.
    expect(DEFAULT_OPERATION_LIMITS.maxVariableDepth).toBe(MAX_JSON_DEPTH);
    expect(DEFAULT_OPERATION_LIMITS).toEqual({ maxDepth: 12, maxAliases: 20, maxDirectives: 50, maxTokens: 2000, maxCost: 500_000, maxVariableDepth: 64, maxDocumentBytes: 65_536 });
    expect(
      operationLimitsFromEnv({
        GATEWAY_MAX_DEPTH: '8',
        GATEWAY_MAX_ALIASES: '',
        GATEWAY_MAX_DIRECTIVES: '5',
        GATEWAY_MAX_TOKENS: '0',
        GATEWAY_MAX_COST: '250000',
        GATEWAY_MAX_VARIABLE_DEPTH: '32',
        GATEWAY_MAX_DOCUMENT_BYTES: '4096',
      }),
    ).toEqual({ maxDepth: 8, maxAliases: 20, maxDirectives: 5, maxTokens: 0, maxCost: 250_000, maxVariableDepth: 32, maxDocumentBytes: 4096 });
  });

  it('refuses a value that is not a non-negative integer, naming the variable', () => {
    expect(() => operationLimitsFromEnv({ GATEWAY_MAX_DEPTH: 'deep', GATEWAY_MAX_COST: '-1' })).toThrow(ConfigError);
    expect(() => operationLimitsFromEnv({ GATEWAY_MAX_DEPTH: 'deep', GATEWAY_MAX_COST: '-1' })).toThrow(/GATEWAY_MAX_DEPTH[\s\S]*GATEWAY_MAX_COST/);
    expect(() => operationLimitsFromEnv({ GATEWAY_MAX_VARIABLE_DEPTH: '1.5' })).toThrow(/GATEWAY_MAX_VARIABLE_DEPTH/);
  });
});

describe('token limit error', () => {
  it("turns graphql-js's token-limit parse error into OPERATION_LIMIT_EXCEEDED and leaves other errors alone", () => {
    let parseError: GraphQLError | undefined;
    try {
      parse(`{ ${'a '.repeat(20)} }`, { maxTokens: 10 });
    } catch (error) {
      parseError = error as GraphQLError;
    }
    expect(parseError).toBeDefined();
    expect(formatTokenLimitError({ message: parseError!.message, extensions: { code: 'GRAPHQL_PARSE_FAILED' } })).toEqual({
      message: 'Token limit of 10 exceeded.',
      extensions: { code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxTokens' },
    });
    const other = { message: 'Syntax Error: Expected Name, found <EOF>.', extensions: { code: 'GRAPHQL_PARSE_FAILED' } };
    expect(formatTokenLimitError(other)).toBe(other);
  });
});

describe('remembered verdicts (createOperationLimitsCheck)', () => {
  const limits: OperationLimits = { ...NO_LIMITS, maxDepth: 4, maxCost: 5_000, maxVariableDepth: 3 };
  const outcome = (check: ReturnType<typeof createOperationLimitsCheck>, document: ReturnType<typeof parse>, variables?: Record<string, unknown>, operationName?: string) => {
    const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === 'OperationDefinition' && (operationName === undefined || d.name?.value === operationName))!;
    try {
      check(schema, document, operation, variables);
      return 'ok';
    } catch (error) {
      return error as GraphQLError;
    }
  };

  it('gives the same verdicts as the uncached checks, request after request, with a fresh error each time', () => {
    const check = createOperationLimitsCheck(limits);
    const deep = parse('{ documents { edges { node { chunks { edges { node { index } } } } } } }');
    const first = outcome(check, deep);
    const second = outcome(check, deep);
    expect(first).toBeInstanceOf(GraphQLError);
    expect(second).toBeInstanceOf(GraphQLError);
    expect(second).not.toBe(first);
    expect((second as GraphQLError).message).toBe((first as GraphQLError).message);
    expect((second as GraphQLError).extensions).toEqual({ code: 'OPERATION_LIMIT_EXCEEDED', limit: 'maxDepth', http: { status: 400 } });
    const shallow = parse('{ document(id: "1") { title } }');
    expect(outcome(check, shallow)).toBe('ok');
    expect(outcome(check, shallow)).toBe('ok');
  });

  it('decides the cost again for other page-size variable values, and remembers each', () => {
    const check = createOperationLimitsCheck(limits);
    const paged = parse('query Page($n: Int, $after: String) { documents(first: $n, after: $after) { edges { node { id title } } } }');
    expect(outcome(check, paged, { n: 10, after: 'a' })).toBe('ok');
    const tooMany = outcome(check, paged, { n: 100_000, after: 'a' });
    expect(tooMany).toBeInstanceOf(GraphQLError);
    expect((tooMany as GraphQLError).extensions.limit).toBe('maxCost');
    // Another cursor (not a page size) with the small page: still passes.
    expect(outcome(check, paged, { n: 10, after: 'b' })).toBe('ok');
    expect((outcome(check, paged, { n: 100_000, after: 'b' }) as GraphQLError).extensions.limit).toBe('maxCost');
    // More distinct values than are remembered per operation: older ones are decided afresh.
    for (let n = 1; n <= 200; n += 1) {
      const result = outcome(check, paged, { n: n % 3 === 0 ? 100_000 + n : n });
      if (n % 3 === 0) expect((result as GraphQLError).extensions.limit).toBe('maxCost');
      else expect(result).toBe('ok');
    }
    expect(outcome(check, paged, { n: 10, after: 'a' })).toBe('ok');
  });

  it('checks each operation of a document apart, and every request\'s variables for depth', () => {
    const check = createOperationLimitsCheck(limits);
    const two = parse('query Small { document(id: "1") { id } } query Deep { documents { edges { node { chunks { edges { node { index } } } } } } }');
    expect(outcome(check, two, {}, 'Small')).toBe('ok');
    expect(outcome(check, two, {}, 'Deep')).toBeInstanceOf(GraphQLError);
    expect(outcome(check, two, {}, 'Small')).toBe('ok');
    const withVariable = parse('query V($x: String) { document(id: $x) { id } }');
    expect(outcome(check, withVariable, { x: '1' })).toBe('ok');
    const nested = outcome(check, withVariable, { x: [[[['too deep']]]] });
    expect((nested as GraphQLError).extensions.code).toBe('BAD_USER_INPUT');
    const inline = parse('{ document(id: "1") { id } runs(first: 1) { id } } query Q { document(id: [[[[["x"]]]]]) { id } }');
    expect((outcome(check, inline, {}, 'Q') as GraphQLError).extensions.code).toBe('BAD_USER_INPUT');
    expect((outcome(check, inline, {}, 'Q') as GraphQLError).extensions.code).toBe('BAD_USER_INPUT');
  });
});
