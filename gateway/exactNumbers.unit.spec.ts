import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { checkInlineNumbers } from './exactNumbers.ts';

const { buildSchema, parse } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

const schema = buildSchema(`
  scalar JSON
  directive @weight(by: Float) on FIELD
  type Query { run(id: ID!): String, ids(list: [ID!]): String, score(min: Float): String, echo(value: JSON, n: Int): String }
  type Subscription { feed(filter: JSON): String }
`);

const refusal = (document: string): unknown => {
  try {
    checkInlineNumbers(schema, parse(document));
  } catch (error) {
    return error;
  }
  return undefined;
};

describe('checkInlineNumbers (the gateway, before the query planner rounds literals)', () => {
  it('refuses inexact JSON and Float literals anywhere in the document with BAD_USER_INPUT (HTTP 400), naming the text and its place', () => {
    for (const [document, value, jsonPath] of [
      ['{ echo(value: { a: [1, { big: 9007199254740993 }] }) }', '9007199254740993', 'a[1].big'],
      ['{ score(min: 0.1000000000000000055) }', '0.1000000000000000055', '$'],
      ['query($v: JSON = [9223372036854775807]) { echo(value: $v) }', '9223372036854775807', '[0]'],
      ['{ echo @weight(by: 1e400) }', '1e400', '$'],
      ['subscription { feed(filter: { min: 12345678901234567890 }) }', '12345678901234567890', 'min'],
    ] as const) {
      expect(refusal(document), document).toMatchObject({
        extensions: { code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value, jsonPath, http: { status: 400 } },
        message: expect.stringContaining(value),
      });
    }
  });

  it('lets exact numbers through, and IDs written as long integers (the planner keeps their text)', () => {
    for (const document of [
      '{ echo(value: { a: 9007199254740992, b: 1e300, c: 0.1, d: 123.456, e: -5 }, n: 3) }',
      '{ score(min: 0.30000000000000004) }',
      '{ run(id: 9007199254740993) ids(list: [12345678901234567890]) }',
    ]) {
      expect(refusal(document), document).toBeUndefined();
    }
  });
});
