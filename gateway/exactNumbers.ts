/**
 * Exact numbers at the gateway (eventstore/jsonNumbers.ts has the rule). The federation query
 * planner turns an operation's inline values into JavaScript values and prints them again
 * (`@apollo/federation-internals` `valueFromASTUntyped`, then `String(value)`), so a literal
 * `9007199254740993` would reach the subgraph as `9007199254740992`: every Int and Float literal
 * of the document (arguments, variable defaults, directive arguments) is checked before
 * planning. Variables are checked on their raw text where the request is read
 * (`gateway/server.ts`, `ws/server.ts`).
 */
import { createRequire } from 'node:module';
import type { ApolloServerPlugin } from '@apollo/server';
import type { DocumentNode, GraphQLError as GraphQLErrorInstance, GraphQLSchema } from 'graphql';
import { describeInexactNumber, formatJsonPath, isExactNumberText, shortNumberText } from '../eventstore/jsonNumbers.ts';

// Apollo's schema and errors come from the CommonJS graphql instance (see operationLimits.ts).
const { BREAK, GraphQLError, TypeInfo, getNamedType, visit, visitWithTypeInfo } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

/**
 * Refuses the first Int or Float literal of `document` that a double cannot hold exactly, except
 * where an `ID` is expected (the planner keeps an ID's text: `valueFromAST` returns it as a
 * string). `jsonPath` is the literal's place inside its argument's value (`$` for the value itself).
 * @param schema the schema `document` was validated against (the gateway's API schema)
 * @throws GraphQLError `BAD_USER_INPUT` (HTTP 400), `reason: 'INEXACT_NUMBER'`, `value` (its text)
 */
export function checkInlineNumbers(schema: GraphQLSchema, document: DocumentNode): void {
  const typeInfo = new TypeInfo(schema);
  let rejection: GraphQLErrorInstance | undefined;
  const check = (node: { value: string }, _key: unknown, parent: unknown, _path: unknown, ancestors: readonly unknown[]) => {
    if (isExactNumberText(node.value)) return undefined;
    const expected = typeInfo.getInputType();
    if (expected && getNamedType(expected).name === 'ID') return undefined;
    // graphql-js's `ancestors` stop before `parent`.
    const path = valuePath([...ancestors, parent], node);
    rejection = new GraphQLError(describeInexactNumber({ path, text: node.value }), {
      nodes: [node as never],
      extensions: { code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: shortNumberText(node.value), jsonPath: formatJsonPath(path), http: { status: 400 } },
    });
    return BREAK;
  };
  visit(document, visitWithTypeInfo(typeInfo, { IntValue: check, FloatValue: check }));
  if (rejection) throw rejection;
}

/** The Apollo Server plugin running {@link checkInlineNumbers} once the operation is known, before it is planned. */
export function exactNumbersPlugin<TContext extends Record<string, any>>(): ApolloServerPlugin<TContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document }) {
          checkInlineNumbers(schema, document);
        },
      };
    },
  };
}

/** Object field names and list indices from the outermost value (an argument's) down to `leaf`. */
function valuePath(ancestors: readonly unknown[], leaf: unknown): (string | number)[] {
  const path: (string | number)[] = [];
  const chain = [...ancestors, leaf].filter((node) => node !== null && typeof node === 'object' && !Array.isArray(node)) as { kind?: string; name?: { value: string }; values?: unknown[] }[];
  for (let i = 0; i < chain.length; i++) {
    const node = chain[i]!;
    const next = chain[i + 1];
    if (node.kind === 'ObjectField' && node.name) path.push(node.name.value);
    else if (node.kind === 'ListValue' && next && node.values) path.push(node.values.indexOf(next));
  }
  return path;
}
