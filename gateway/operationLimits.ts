/**
 * Operation limits of the gateway (DESIGN.md, "gateway/ … operation limits"): what one GraphQL
 * request may ask for before anything is planned or sent to a subgraph.
 *
 * - **document size**: a document (the request's `query` text) longer than `maxDocumentBytes`
 *   bytes of UTF-8 is refused before it is parsed (HTTP 413), so comments and whitespace, which
 *   the token limit does not count, cannot make the gateway read and parse megabytes;
 * - **tokens**: the parser stops after `maxTokens` lexical tokens (graphql-js `maxTokens`), so a
 *   huge document costs no more than that to parse and validate;
 * - **depth**, **aliases**, **directives** and **cost** of the operation being executed, measured
 *   with the rules of GraphQL Armor (`@escape.tech/graphql-armor-*`); fragments count as if
 *   inlined. Introspection (`__schema`) counts for neither depth nor cost;
 * - **variable depth**: no variable value may nest objects and arrays more than
 *   `maxVariableDepth` levels (64 by default: the subgraphs' `JSON` limit `MAX_JSON_DEPTH`,
 *   answered with `BAD_USER_INPUT` there too). Without it a variable nested some thousands of
 *   levels deep overflowed the stack where Apollo's `RemoteGraphQLDataSource` serialises the
 *   subgraph request (`JSON.stringify`): HTTP 200 with `INTERNAL_SERVER_ERROR`.
 *
 * Cost is an estimate of the size of the response: 2 per object field, 1 per leaf field, and
 * the whole selection of a field that takes `first`/`last` counted that many times (nested
 * pages multiply). The page size is the argument's literal, else the request's variable, else
 * the argument's default in the schema, else {@link ASSUMED_PAGE_SIZE}.
 *
 * Rejections are HTTP 400 with one GraphQL error: `OPERATION_LIMIT_EXCEEDED` (with
 * `extensions.limit`, e.g. `maxDepth`) for the document limits, `BAD_USER_INPUT` for a variable
 * nested too deep. The plugin also answers a document whose operation cannot be chosen (several
 * operations and no `operationName`, or an unknown one) with HTTP 400
 * `OPERATION_RESOLUTION_FAILURE`, as Apollo Server does without a gateway, where the gateway's
 * executor would have thrown (HTTP 500).
 */
import { createRequire } from 'node:module';
import type { ApolloServerPlugin } from '@apollo/server';
import { costLimitRule } from '@escape.tech/graphql-armor-cost-limit';
import { maxAliasesRule } from '@escape.tech/graphql-armor-max-aliases';
import { maxDepthRule } from '@escape.tech/graphql-armor-max-depth';
import { maxDirectivesRule } from '@escape.tech/graphql-armor-max-directives';
import type {
  ArgumentNode,
  DocumentNode,
  GraphQLError as GraphQLErrorInstance,
  GraphQLFormattedError,
  GraphQLSchema,
  OperationDefinitionNode,
  ValidationRule,
  ValueNode,
} from 'graphql';
import { z } from 'zod';
import { parseEnv } from '../config/env.ts';
import { GatewayErrorCode } from './errors.ts';

/**
 * graphql-js as Apollo Server, Apollo Gateway and GraphQL Armor load it (CommonJS
 * `graphql/index.js`, what Node resolves `graphql` to). The schema checked here is theirs, and
 * `validate`/`TypeInfo` refuse a schema of another graphql-js instance; vitest resolves an
 * `import 'graphql'` of our own files to the package's ESM build (`index.mjs`), a second one.
 */
const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');
const { BREAK, GraphQLError, Kind, TypeInfo, validate, visit, visitWithTypeInfo } = graphql;

/** The limits; 0 turns one off. */
export interface OperationLimits {
  /** Most nested field levels of an operation (`GATEWAY_MAX_DEPTH`). */
  maxDepth: number;
  /** Most aliased fields of an operation, `__typename` aside (`GATEWAY_MAX_ALIASES`). */
  maxAliases: number;
  /** Most directive uses of an operation (`GATEWAY_MAX_DIRECTIVES`). */
  maxDirectives: number;
  /** Most lexical tokens of a document (`GATEWAY_MAX_TOKENS`). */
  maxTokens: number;
  /** Highest estimated cost of an operation (`GATEWAY_MAX_COST`; see the module comment). */
  maxCost: number;
  /** Deepest nesting of objects and arrays in one variable's value (`GATEWAY_MAX_VARIABLE_DEPTH`). */
  maxVariableDepth: number;
  /**
   * Largest document (the `query` text) in bytes of UTF-8, checked before parsing
   * (`GATEWAY_MAX_DOCUMENT_BYTES`; see {@link checkDocumentSize}).
   */
  maxDocumentBytes: number;
}

/**
 * The defaults. Every query of the repository passes them, with room: the deepest
 * (`eventFeed { edges { node { … } } }`, `trace { events { event { … } } }`) are 4 to 5
 * levels; the costliest is `client/trace.ts`'s `trace(first: 10000)` (200 000, `npm run demo`);
 * `trace(first: 10000)` asking for every field of `Trace`, `TraceEntry` and `ObservedEvent`
 * costs 310 000; `run { timeline(first: 10000) { event { type source } } }` 60 002; `trace`
 * with its default 1000 entries 20 000.
 *
 * `maxDocumentBytes` is 64 KiB: 32 bytes for each of the `maxTokens` tokens, so a document the
 * token limit lets through is not refused for its size unless it is mostly comments, whitespace
 * or long inline strings (large values go in variables, which it does not count). The largest
 * documents of the repository are far below: graphql-js's full introspection query (every
 * option on, as Apollo Sandbox sends it) is 2 068 bytes, the largest query of `client/`,
 * `bench/` and `bin/` 261 bytes.
 */
export const DEFAULT_OPERATION_LIMITS: Readonly<OperationLimits> = Object.freeze({
  maxDepth: 12,
  maxAliases: 20,
  maxDirectives: 50,
  maxTokens: 2000,
  maxCost: 500_000,
  maxVariableDepth: 64,
  maxDocumentBytes: 65_536,
});

/** The environment variable of each limit. */
export const OPERATION_LIMIT_VARIABLES = {
  maxDepth: 'GATEWAY_MAX_DEPTH',
  maxAliases: 'GATEWAY_MAX_ALIASES',
  maxDirectives: 'GATEWAY_MAX_DIRECTIVES',
  maxTokens: 'GATEWAY_MAX_TOKENS',
  maxCost: 'GATEWAY_MAX_COST',
  maxVariableDepth: 'GATEWAY_MAX_VARIABLE_DEPTH',
  maxDocumentBytes: 'GATEWAY_MAX_DOCUMENT_BYTES',
} as const satisfies Record<keyof OperationLimits, string>;

/** Page size assumed for a `first`/`last` argument that is absent and has no default in the schema. */
export const ASSUMED_PAGE_SIZE = 20;

/**
 * Most list literals nested in one inline value of a document (`[[[1]]]` is 3). Apollo
 * Federation's query planner walks an inline array twice per level (`collectVariablesInValue`
 * in `@apollo/federation-internals` 2.14, `dist/values.js`), so its work doubles with every
 * level: 27 levels held the gateway's CPU for seconds, 64 for minutes. Deeper arrays go in
 * variables, which the planner does not walk (and which `maxVariableDepth` bounds).
 */
export const MAX_INLINE_LIST_DEPTH = 10;

/** Cost weights given to GraphQL Armor's cost rule. */
const COST_WEIGHTS = { objectCost: 2, scalarCost: 1, depthCostFactor: 1 } as const;
const PAGE_SIZE_ARGUMENTS = new Set(['first', 'last']);

const limitVar = (defaultValue: number) =>
  z.preprocess((value) => (value === '' ? undefined : value), z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(defaultValue));

/**
 * Reads the limits from `GATEWAY_MAX_*` (README, "Configuration"); unset or empty = default,
 * `0` = no limit.
 * @throws ConfigError naming each variable that is not a non-negative integer
 */
export function operationLimitsFromEnv(env: NodeJS.ProcessEnv): OperationLimits {
  const v = parseEnv(env, {
    GATEWAY_MAX_DEPTH: limitVar(DEFAULT_OPERATION_LIMITS.maxDepth),
    GATEWAY_MAX_ALIASES: limitVar(DEFAULT_OPERATION_LIMITS.maxAliases),
    GATEWAY_MAX_DIRECTIVES: limitVar(DEFAULT_OPERATION_LIMITS.maxDirectives),
    GATEWAY_MAX_TOKENS: limitVar(DEFAULT_OPERATION_LIMITS.maxTokens),
    GATEWAY_MAX_COST: limitVar(DEFAULT_OPERATION_LIMITS.maxCost),
    GATEWAY_MAX_VARIABLE_DEPTH: limitVar(DEFAULT_OPERATION_LIMITS.maxVariableDepth),
    GATEWAY_MAX_DOCUMENT_BYTES: limitVar(DEFAULT_OPERATION_LIMITS.maxDocumentBytes),
  });
  return {
    maxDepth: v.GATEWAY_MAX_DEPTH,
    maxAliases: v.GATEWAY_MAX_ALIASES,
    maxDirectives: v.GATEWAY_MAX_DIRECTIVES,
    maxTokens: v.GATEWAY_MAX_TOKENS,
    maxCost: v.GATEWAY_MAX_COST,
    maxVariableDepth: v.GATEWAY_MAX_VARIABLE_DEPTH,
    maxDocumentBytes: v.GATEWAY_MAX_DOCUMENT_BYTES,
  };
}

/**
 * How deep `value` nests objects and arrays: 0 for a scalar or null, 1 for `{}`, `[]` or
 * `{"a": 1}`, 2 for `[[1]]`... Iterative, so any depth is measured without recursion; stops
 * as soon as the depth exceeds `stopAbove` (and returns that depth).
 */
export function jsonDepth(value: unknown, stopAbove = Number.POSITIVE_INFINITY): number {
  let deepest = 0;
  const pending: Array<{ value: object; depth: number }> = [];
  if (value !== null && typeof value === 'object') pending.push({ value, depth: 1 });
  while (pending.length > 0) {
    const { value: current, depth } = pending.pop()!;
    if (depth > deepest) {
      deepest = depth;
      if (deepest > stopAbove) return deepest;
    }
    for (const child of Array.isArray(current) ? current : Object.values(current)) {
      if (child !== null && typeof child === 'object') pending.push({ value: child, depth: depth + 1 });
    }
  }
  return deepest;
}

/** The error of an exceeded document limit: HTTP 400, `OPERATION_LIMIT_EXCEEDED`. */
function limitExceeded(message: string, limit: keyof OperationLimits): GraphQLErrorInstance {
  return new GraphQLError(message, {
    extensions: { code: GatewayErrorCode.OperationLimitExceeded, limit, http: { status: 400 } },
  });
}

/** HTTP status of a document over `maxDocumentBytes`: 413 Content Too Large (RFC 9110, section 15.5.14). */
export const DOCUMENT_TOO_LARGE_STATUS = 413;

/**
 * Checks the size of a request's document before it is parsed: `query` (when a string) may take
 * at most `maxDocumentBytes` bytes in UTF-8 (0 = no limit). Anything else (no `query`, a
 * non-string) passes: Apollo Server answers those itself.
 * @throws GraphQLError `OPERATION_LIMIT_EXCEEDED` with `extensions.limit: 'maxDocumentBytes'` and
 *   `extensions.max` (the limit), HTTP status 413
 */
export function checkDocumentSize(query: unknown, maxDocumentBytes: number): void {
  if (typeof query !== 'string' || maxDocumentBytes <= 0) return;
  // A UTF-16 unit is 1 to 3 bytes of UTF-8: most documents are decided without measuring.
  if (query.length * 3 <= maxDocumentBytes) return;
  if (query.length <= maxDocumentBytes && Buffer.byteLength(query, 'utf8') <= maxDocumentBytes) return;
  throw new GraphQLError(`Document exceeds the limit of ${maxDocumentBytes} bytes; pass large values as variables.`, {
    extensions: {
      code: GatewayErrorCode.OperationLimitExceeded,
      limit: 'maxDocumentBytes',
      max: maxDocumentBytes,
      http: { status: DOCUMENT_TOO_LARGE_STATUS },
    },
  });
}

/**
 * Checks each variable's nesting depth.
 * @throws GraphQLError `BAD_USER_INPUT` (HTTP 400) naming the first variable nested too deep
 */
export function checkVariableDepth(variables: Readonly<Record<string, unknown>> | undefined, maxVariableDepth: number): void {
  if (!variables || maxVariableDepth <= 0) return;
  for (const [name, value] of Object.entries(variables)) {
    if (jsonDepth(value, maxVariableDepth) > maxVariableDepth) {
      throw new GraphQLError(`Variable "$${name}" is too deep: JSON values may nest objects and arrays at most ${maxVariableDepth} levels deep`, {
        extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
      });
    }
  }
}

/**
 * Checks the values written inline in `document` (arguments, variable defaults, directive
 * arguments): objects and lists nest at most `maxValueDepth` levels (the `maxVariableDepth`
 * limit; 0 = no limit), and lists at most {@link MAX_INLINE_LIST_DEPTH} levels whatever the
 * limits. graphql-js's `visit` keeps its own stack, so any depth is walked without recursion.
 * @throws GraphQLError `BAD_USER_INPUT` (HTTP 400) for the first value nested too deep
 */
export function checkInlineValueDepth(document: DocumentNode, maxValueDepth: number): void {
  let depth = 0;
  let lists = 0;
  let rejection: GraphQLErrorInstance | undefined;
  const tooDeep = (message: string) => {
    rejection = new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });
    return BREAK;
  };
  visit(document, {
    ObjectValue: {
      enter() {
        depth++;
        if (maxValueDepth > 0 && depth > maxValueDepth) return tooDeep(`Inline values may nest objects and arrays at most ${maxValueDepth} levels deep`);
        return undefined;
      },
      leave() {
        depth--;
      },
    },
    ListValue: {
      enter() {
        depth++;
        lists++;
        if (maxValueDepth > 0 && depth > maxValueDepth) return tooDeep(`Inline values may nest objects and arrays at most ${maxValueDepth} levels deep`);
        if (lists > MAX_INLINE_LIST_DEPTH) {
          return tooDeep(`Inline values may nest lists at most ${MAX_INLINE_LIST_DEPTH} levels deep; pass deeper values as variables`);
        }
        return undefined;
      },
      leave() {
        depth--;
        lists--;
      },
    },
  });
  if (rejection) throw rejection;
}

/**
 * Checks depth, aliases, directives and cost of `operation` (with the fragments of `document`).
 * @throws GraphQLError `OPERATION_LIMIT_EXCEEDED` (HTTP 400) for the first limit exceeded
 */
export function checkOperationLimits(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
  limits: OperationLimits,
): void {
  const selected = selectedDocument(document, operation);
  const rejection = staticLimitsRejection(schema, selected, limits) ?? costRejection(schema, selected, operation, variables ?? {}, limits, new Set());
  if (rejection) throw rejection;
}

/** Only the operation that runs, and the fragments it may use. */
function selectedDocument(document: DocumentNode, operation: OperationDefinitionNode): DocumentNode {
  return {
    kind: Kind.DOCUMENT,
    definitions: document.definitions.filter((definition) => definition === operation || definition.kind === Kind.FRAGMENT_DEFINITION),
  };
}

/** GraphQL Armor's rule options reporting their first rejection through `reject`. */
function armorOptions(limit: keyof OperationLimits, reject: (error: GraphQLErrorInstance) => void) {
  return {
    exposeLimits: true,
    propagateOnRejection: false,
    onReject: [
      (_context: unknown, error: GraphQLErrorInstance) => {
        // GraphQL Armor prefixes its messages with "Syntax Error: ", which this is not.
        reject(limitExceeded(error.message.replace(/^Syntax Error:\s*/, ''), limit));
      },
    ],
  };
}

/** The error of the first of depth, aliases and directives `selected` exceeds (they depend on the document alone), or undefined. */
function staticLimitsRejection(schema: GraphQLSchema, selected: DocumentNode, limits: OperationLimits): GraphQLErrorInstance | undefined {
  let rejection: GraphQLErrorInstance | undefined;
  const reject = (error: GraphQLErrorInstance) => void (rejection ??= error);
  const rules: ValidationRule[] = [];
  if (limits.maxDepth > 0) rules.push(maxDepthRule({ ...armorOptions('maxDepth', reject), n: limits.maxDepth, flattenFragments: true, ignoreIntrospection: true }));
  if (limits.maxAliases > 0) rules.push(maxAliasesRule({ ...armorOptions('maxAliases', reject), n: limits.maxAliases }));
  if (limits.maxDirectives > 0) rules.push(maxDirectivesRule({ ...armorOptions('maxDirectives', reject), n: limits.maxDirectives }));
  if (rules.length > 0) validate(schema, selected, rules);
  return rejection;
}

/**
 * The cost error of `selected` with these `variables`, or undefined. `consulted` receives the
 * names of the variables its page sizes read (the cost depends on those values and nothing else).
 */
function costRejection(
  schema: GraphQLSchema,
  selected: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>>,
  limits: OperationLimits,
  consulted: Set<string>,
): GraphQLErrorInstance | undefined {
  if (limits.maxCost <= 0) return undefined;
  let rejection: GraphQLErrorInstance | undefined;
  const sized = withPageSizes(schema, selected, operation, variables, consulted);
  validate(schema, sized, [
    costLimitRule({ ...armorOptions('maxCost', (error) => void (rejection ??= error)), ...COST_WEIGHTS, maxCost: limits.maxCost, flattenFragments: true, ignoreIntrospection: true }),
  ]);
  return rejection;
}

/** A remembered verdict: null passes, else the error to throw again (a fresh instance each time). */
type Verdict = { message: string; extensions: Readonly<Record<string, unknown>> } | null;

const verdictOf = (error: GraphQLErrorInstance | undefined): Verdict => (error ? { message: error.message, extensions: error.extensions } : null);

function throwVerdict(verdict: Verdict): void {
  if (verdict) throw new GraphQLError(verdict.message, { extensions: { ...verdict.extensions } });
}

/** Cost verdicts of one operation kept per distinct page-size variable values: 64 at most, oldest dropped. */
const MAX_COST_VERDICTS_PER_OPERATION = 64;

interface OperationVerdicts {
  staticLimits: Verdict;
  /** The variables the cost reads (known after its first check). */
  pageVariables: readonly string[] | undefined;
  costByValues: Map<string, Verdict>;
}

interface DocumentVerdicts {
  inlineValueDepth: Verdict;
  operations: Map<OperationDefinitionNode, OperationVerdicts>;
}

/**
 * The checks of {@link operationLimitsPlugin} with their verdicts remembered per parsed document
 * (issue 13: validating every request's document twice was 12 % of the gateway's CPU). Apollo
 * Server hands the same `DocumentNode` for the same query text (its document store), so a
 * repeated operation costs a map lookup: the inline value depth, depth, aliases and directives
 * depend on the document alone; the cost also on the values of the variables that set page
 * sizes, so it is remembered per those values ({@link MAX_COST_VERDICTS_PER_OPERATION} per
 * operation). Variable depth depends on every request's variables and is always checked.
 * Verdicts live as long as their document (a WeakMap).
 * @returns `check(schema, document, operation, variables)`, throwing what
 *   {@link checkVariableDepth}, {@link checkInlineValueDepth} and {@link checkOperationLimits} throw
 */
export function createOperationLimitsCheck(limits: OperationLimits): (
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>> | undefined,
) => void {
  const verdicts = new WeakMap<DocumentNode, DocumentVerdicts>();
  return (schema, document, operation, variables) => {
    checkVariableDepth(variables, limits.maxVariableDepth);
    let forDocument = verdicts.get(document);
    if (!forDocument) {
      let inline: GraphQLErrorInstance | undefined;
      try {
        checkInlineValueDepth(document, limits.maxVariableDepth);
      } catch (error) {
        inline = error as GraphQLErrorInstance;
      }
      forDocument = { inlineValueDepth: verdictOf(inline), operations: new Map() };
      verdicts.set(document, forDocument);
    }
    throwVerdict(forDocument.inlineValueDepth);
    let forOperation = forDocument.operations.get(operation);
    const selected = forOperation ? undefined : selectedDocument(document, operation);
    if (!forOperation) {
      forOperation = { staticLimits: verdictOf(staticLimitsRejection(schema, selected!, limits)), pageVariables: undefined, costByValues: new Map() };
      forDocument.operations.set(operation, forOperation);
    }
    throwVerdict(forOperation.staticLimits);
    if (limits.maxCost <= 0) return;
    const values = variables ?? {};
    if (forOperation.pageVariables) {
      const key = JSON.stringify(forOperation.pageVariables.map((name) => (Object.hasOwn(values, name) ? values[name] : null)));
      const known = forOperation.costByValues.get(key);
      if (known !== undefined) return throwVerdict(known);
    }
    const consulted = new Set<string>();
    const verdict = verdictOf(costRejection(schema, selected ?? selectedDocument(document, operation), operation, values, limits, consulted));
    forOperation.pageVariables ??= [...consulted].sort();
    const key = JSON.stringify(forOperation.pageVariables.map((name) => (Object.hasOwn(values, name) ? values[name] : null)));
    if (forOperation.costByValues.size >= MAX_COST_VERDICTS_PER_OPERATION) forOperation.costByValues.delete(forOperation.costByValues.keys().next().value!);
    forOperation.costByValues.set(key, verdict);
    throwVerdict(verdict);
  };
}

/**
 * `document` with the page size of every field that takes `first`/`last` written as an `Int`
 * literal `first` argument, the form GraphQL Armor's cost rule multiplies by: the literal, else
 * the variable's value (or its default in the operation), else the argument's default in the
 * schema, else {@link ASSUMED_PAGE_SIZE}; the largest of `first` and `last`.
 */
function withPageSizes(
  schema: GraphQLSchema,
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Readonly<Record<string, unknown>>,
  consulted: Set<string>,
): DocumentNode {
  const variableDefaults = new Map<string, ValueNode>();
  for (const definition of operation.variableDefinitions ?? []) {
    if (definition.defaultValue) variableDefaults.set(definition.variable.name.value, definition.defaultValue);
  }
  const valueOf = (node: ValueNode | undefined): unknown => {
    if (node === undefined) return undefined;
    if (node.kind === Kind.INT || node.kind === Kind.FLOAT) return Number(node.value);
    if (node.kind === Kind.VARIABLE) {
      const name = node.name.value;
      consulted.add(name);
      return Object.hasOwn(variables, name) ? variables[name] : valueOf(variableDefaults.get(name));
    }
    return undefined;
  };
  const typeInfo = new TypeInfo(schema);
  return visit(
    document,
    visitWithTypeInfo(typeInfo, {
      Field(node) {
        const pageArguments = typeInfo.getFieldDef()?.args.filter((argument) => PAGE_SIZE_ARGUMENTS.has(argument.name)) ?? [];
        if (pageArguments.length === 0) return undefined;
        let pageSize = 0;
        for (const argument of pageArguments) {
          const given = valueOf(node.arguments?.find((a) => a.name.value === argument.name)?.value);
          const size = typeof given === 'number' ? given : typeof argument.defaultValue === 'number' ? argument.defaultValue : ASSUMED_PAGE_SIZE;
          if (Number.isFinite(size)) pageSize = Math.max(pageSize, Math.ceil(size));
          else if (size > 0) pageSize = Number.MAX_SAFE_INTEGER;
        }
        const first: ArgumentNode = {
          kind: Kind.ARGUMENT,
          name: { kind: Kind.NAME, value: 'first' },
          value: { kind: Kind.INT, value: String(Math.min(pageSize, Number.MAX_SAFE_INTEGER)) },
        };
        return { ...node, arguments: [first, ...(node.arguments ?? []).filter((a) => !PAGE_SIZE_ARGUMENTS.has(a.name.value))] };
      },
    }),
  );
}

/**
 * The error for a document whose operation cannot be chosen, with graphql-js's messages.
 * HTTP 400, `OPERATION_RESOLUTION_FAILURE` (Apollo Server's code for it).
 */
function operationResolutionFailure(document: DocumentNode, operationName: string | undefined): GraphQLErrorInstance {
  const operations = document.definitions.filter((definition) => definition.kind === Kind.OPERATION_DEFINITION).length;
  const message =
    operationName != null
      ? `Unknown operation named "${operationName}".`
      : operations > 1
        ? 'Must provide operation name if query contains multiple operations.'
        : 'Must provide an operation.';
  return new GraphQLError(message, {
    extensions: { code: GatewayErrorCode.OperationResolutionFailure, http: { status: 400 } },
  });
}

/**
 * The Apollo Server plugin enforcing `limits` once the operation is known (after parsing and
 * validation, before the query plan): variable depth, inline value depth, then depth, aliases, directives and
 * cost, with verdicts remembered per parsed document ({@link createOperationLimitsCheck}). The token limit is the parser's: pass {@link parseOptions} and
 * {@link formatTokenLimitError} to Apollo Server too.
 */
export function operationLimitsPlugin<TContext extends Record<string, any>>(limits: OperationLimits): ApolloServerPlugin<TContext> {
  const check = createOperationLimitsCheck(limits);
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ schema, document, operation, request }) {
          if (!operation) throw operationResolutionFailure(document, request.operationName);
          check(schema, document, operation, request.variables);
        },
      };
    },
  };
}

/** Apollo Server's `parseOptions` for `limits`: graphql-js stops parsing past `maxTokens`. */
export function parseOptions(limits: OperationLimits): { maxTokens?: number } {
  return limits.maxTokens > 0 ? { maxTokens: limits.maxTokens } : {};
}

// graphql-js 16 says "more that N tokens"; accept the corrected spelling too.
const TOKEN_LIMIT_MESSAGE = /^Syntax Error: Document contains more th(?:at|an) (\d+) tokens\. Parsing aborted\.$/;

/**
 * Apollo Server `formatError`: graphql-js's token-limit parse error (`GRAPHQL_PARSE_FAILED`)
 * becomes `OPERATION_LIMIT_EXCEEDED` like the other limits (HTTP status stays 400). Other
 * errors pass unchanged.
 */
export function formatTokenLimitError(formatted: GraphQLFormattedError): GraphQLFormattedError {
  const match = formatted.extensions?.code === 'GRAPHQL_PARSE_FAILED' ? TOKEN_LIMIT_MESSAGE.exec(formatted.message) : null;
  if (!match) return formatted;
  return {
    message: `Token limit of ${match[1]} exceeded.`,
    extensions: { code: GatewayErrorCode.OperationLimitExceeded, limit: 'maxTokens' },
  };
}
