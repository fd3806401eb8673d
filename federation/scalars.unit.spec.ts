import { GraphQLError, Kind, parseValue } from 'graphql';
import { describe, expect, it } from 'vitest';
import { MAX_JSON_DEPTH } from '../eventstore/index.ts';
import { JSONScalar } from './scalars.ts';

/** `[[...[1]...]]` with `levels` arrays. */
const nested = (levels: number): unknown => {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = [value];
  return value;
};

describe('JSONScalar', () => {
  it(`accepts values nested ${MAX_JSON_DEPTH} levels deep, as variables and as literals`, () => {
    expect(JSONScalar.parseValue(nested(MAX_JSON_DEPTH))).toEqual(nested(MAX_JSON_DEPTH));
    const literal = parseValue(JSON.stringify(nested(MAX_JSON_DEPTH)));
    expect(JSONScalar.parseLiteral(literal, undefined)).toEqual(nested(MAX_JSON_DEPTH));
    expect(JSONScalar.parseLiteral(parseValue('{ a: $v, b: [1, "x", null, true] }'), { v: { c: 2 } })).toEqual({ a: { c: 2 }, b: [1, 'x', null, true] });
  });

  it('refuses deeper values with BAD_USER_INPUT, even a million levels deep', () => {
    for (const value of [nested(MAX_JSON_DEPTH + 1), nested(1_000_000), { ok: 1, deep: nested(MAX_JSON_DEPTH) }]) {
      const error = (() => {
        try {
          JSONScalar.parseValue(value);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(GraphQLError);
      expect(error).toMatchObject({ extensions: { code: 'BAD_USER_INPUT' } });
    }
    expect(() => JSONScalar.parseLiteral({ kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: 'v' } }, { v: nested(MAX_JSON_DEPTH + 1) })).toThrow(/at most 64 levels/);
  });
});
