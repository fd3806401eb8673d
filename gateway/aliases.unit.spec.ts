import { GraphQLError, parse, print } from 'graphql';
import { describe, expect, it } from 'vitest';
import { createAliasRewriter, restoreData, restoreErrorPath, restorePath, rewriteAliases, SAFE_ALIAS_PREFIX } from './aliases.ts';

const printed = (query: string) => print(rewriteAliases(parse(query))!.document);
const same = (query: string) => print(parse(query));

describe('rewriteAliases', () => {
  it('replaces an alias named like a key field by a reserved one', () => {
    expect(printed('{ run(id: "1") { id: workflowId timeline { at } } }')).toBe(same('{ run(id: "1") { __fg_alias_id: workflowId timeline { at } } }'));
  });

  it('replaces an alias of a key field and aliases of and named __typename', () => {
    expect(printed('{ run { rid: id __typename: status t: __typename } }')).toBe(
      same('{ run { __fg_alias_rid: id __fg_alias___typename: status __fg_alias_t: __typename } }'),
    );
  });

  it('rewrites aliases inside inline and named fragments the same way', () => {
    expect(printed('{ run { ... on Run { id: status } ...F } } fragment F on Run { id: status }')).toBe(
      same('{ run { ... on Run { __fg_alias_id: status } ...F } } fragment F on Run { __fg_alias_id: status }'),
    );
  });

  it('leaves a document without aliases, or with aliases equal to their field, alone', () => {
    expect(rewriteAliases(parse('{ run { id name: name } }'))).toBeUndefined();
  });

  it('does not modify the client document', () => {
    const document = parse('{ run { id: status } }');
    rewriteAliases(document);
    expect(print(document)).toBe(same('{ run { id: status } }'));
  });

  it('rewrites a client alias that starts with the reserved prefix so it is restored exactly', () => {
    const rewrite = rewriteAliases(parse(`{ run { ${SAFE_ALIAS_PREFIX}x: status } }`))!;
    const data = { run: { [`${SAFE_ALIAS_PREFIX}${SAFE_ALIAS_PREFIX}x`]: 'RUNNING' } };
    expect(restoreData(data, rewrite.restoreFor(undefined))).toEqual({ run: { [`${SAFE_ALIAS_PREFIX}x`]: 'RUNNING' } });
  });
});

describe('restoreData', () => {
  it('puts the client aliases back in field order, through lists and nested objects', () => {
    const rewrite = rewriteAliases(parse('{ runs { edges { node { id: status timeline { kind: type } n: id } } } }'))!;
    const result = {
      runs: {
        edges: [
          { node: { __fg_alias_id: 'RUNNING', timeline: [{ __fg_alias_kind: 'StepStarted' }], __fg_alias_n: 'r1' } },
          { node: null },
        ],
      },
    };
    const restored = restoreData(result, rewrite.restoreFor(undefined)) as typeof result;
    expect(restored).toEqual({ runs: { edges: [{ node: { id: 'RUNNING', timeline: [{ kind: 'StepStarted' }], n: 'r1' } }, { node: null }] } });
    expect(Object.keys(restored.runs.edges[0]!.node!)).toEqual(['id', 'timeline', 'n']);
  });

  it('restores an alias named __proto__ as an own field (not the prototype)', () => {
    const rewrite = rewriteAliases(parse('{ __proto__: __typename run { __proto__: workflowId } }'))!;
    const restored = restoreData({ __fg_alias___proto__: 'Query', run: { __fg_alias___proto__: 'w1' } }, rewrite.restoreFor(undefined)) as Record<string, any>;
    expect(JSON.parse(JSON.stringify(restored))).toEqual(JSON.parse('{"__proto__":"Query","run":{"__proto__":"w1"}}'));
    expect(Object.keys(restored)).toEqual(['__proto__', 'run']);
    expect(Object.getPrototypeOf(restored)).toBe(Object.prototype);
  });

  it('restores fields selected through named fragments spread at several places', () => {
    const rewrite = rewriteAliases(parse('{ a: run(id: "1") { ...F } b: run(id: "2") { ...F } } fragment F on Run { id: status }'))!;
    const restored = restoreData({ __fg_alias_a: { __fg_alias_id: 'X' }, __fg_alias_b: { __fg_alias_id: 'Y' } }, rewrite.restoreFor(undefined));
    expect(restored).toEqual({ a: { id: 'X' }, b: { id: 'Y' } });
  });

  it('restores the operation named, not another of the document', () => {
    const rewrite = rewriteAliases(parse('query A { run { id: status } } query B { run { s: status } }'))!;
    expect(restoreData({ run: { __fg_alias_s: 'X' } }, rewrite.restoreFor('B'))).toEqual({ run: { s: 'X' } });
    expect(restoreData({ run: { __fg_alias_id: 'X' } }, rewrite.restoreFor('A'))).toEqual({ run: { id: 'X' } });
  });

  it('leaves a JSON scalar value whose keys look like rewritten aliases untouched', () => {
    const rewrite = rewriteAliases(parse('{ run { id: status input } }'))!;
    const input = { __fg_alias_id: 1 };
    expect(restoreData({ run: { __fg_alias_id: 'X', input } }, rewrite.restoreFor(undefined))).toEqual({ run: { id: 'X', input: { __fg_alias_id: 1 } } });
  });
});

describe('restoring error paths', () => {
  const rewrite = rewriteAliases(parse('{ runs { edges { node { id: status timeline { kind: type } } } } }'))!;
  const restore = rewrite.restoreFor(undefined);

  it('replaces rewritten names in a path and keeps list indices', () => {
    expect(restorePath(['runs', 'edges', 1, 'node', 'timeline', 0, '__fg_alias_kind'], restore)).toEqual(['runs', 'edges', 1, 'node', 'timeline', 0, 'kind']);
  });

  it('returns a GraphQLError with the restored path, its code and original error kept', () => {
    const original = new Error('boom');
    const error = new GraphQLError('Status unavailable', { path: ['runs', 'edges', 0, 'node', '__fg_alias_id'], originalError: original, extensions: { code: 'NOT_FOUND' } });
    const restored = restoreErrorPath(error, restore);
    expect(restored).toBeInstanceOf(GraphQLError);
    expect(restored.toJSON()).toEqual({ message: 'Status unavailable', path: ['runs', 'edges', 0, 'node', 'id'], extensions: { code: 'NOT_FOUND' } });
    expect(restored.originalError).toBe(original);
    expect(error.path).toEqual(['runs', 'edges', 0, 'node', '__fg_alias_id']);
  });
});

describe('createAliasRewriter', () => {
  it('rewrites a repeated document once', () => {
    const rewriter = createAliasRewriter();
    const document = parse('{ run { id: status } }');
    expect(rewriter(document)).toBe(rewriter(document));
    expect(rewriter(parse('{ run { id } }'))).toBeUndefined();
  });
});
