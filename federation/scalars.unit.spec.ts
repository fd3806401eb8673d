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

describe('JSONScalar numbers', () => {
  const refusal = (run: () => unknown): unknown => {
    try {
      run();
    } catch (error) {
      return error;
    }
    return undefined;
  };

  it('refuses a literal number a double cannot hold exactly with BAD_USER_INPUT naming its text and path', () => {
    for (const [literal, text, jsonPath] of [
      ['{ big: 9007199254740993 }', '9007199254740993', 'big'],
      ['[1, { n: 9223372036854775807 }]', '9223372036854775807', '[1].n'],
      ['0.1000000000000000055', '0.1000000000000000055', '$'],
      ['{ a: [1e400] }', '1e400', 'a[0]'],
    ] as const) {
      const error = refusal(() => JSONScalar.parseLiteral(parseValue(literal), undefined));
      expect(error, literal).toBeInstanceOf(GraphQLError);
      expect(error).toMatchObject({ extensions: { code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: text, jsonPath } });
      expect((error as Error).message).toContain(text);
    }
  });

  it('keeps exact literal numbers as written: 2^53, 1e300, 0.1, 123.456, -5, and turns -0 into 0', () => {
    expect(JSONScalar.parseLiteral(parseValue('{ a: 9007199254740992, b: 1e300, c: 0.1, d: 123.456, e: -5, f: 100.0 }'), undefined)).toEqual({ a: 2 ** 53, b: 1e300, c: 0.1, d: 123.456, e: -5, f: 100 });
    expect(Object.is(JSONScalar.parseLiteral(parseValue('-0'), undefined), 0)).toBe(true);
    expect(Object.is((JSONScalar.parseValue({ x: [-0] }) as { x: number[] }).x[0], 0)).toBe(true);
    const untouched = { x: [1, 'a'] };
    expect(JSONScalar.parseValue(untouched)).toBe(untouched);
  });
});
