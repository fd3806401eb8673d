/**
 * Planning a client subscription with Apollo's federation query planner: the plan's
 * `Subscription` node has a `primary` fetch (the root field, sent upstream over graphql-ws to the
 * owning subgraph) and an optional `rest` (the entity fetches to other subgraphs, run for every
 * event). `@apollo/gateway` refuses to execute such plans (apollo-server #3357); flowgraph runs
 * the primary part itself and the rest through `executeQueryPlan` (see `hydrate.ts`).
 *
 * Before planning, the root field's `after` argument is rewritten to the gateway's own variable
 * `$__flowgraph_after`, so that one plan (and one upstream operation) serves every cursor and the
 * gateway can re-subscribe upstream from the last cursor it delivered.
 */
import { createRequire } from 'node:module';
import { operationFromDocument, type Schema, type Supergraph } from '@apollo/federation-internals';
import { buildOperationContext } from '@apollo/gateway';
import { QueryPlanner, type FetchNode, type PlanNode } from '@apollo/query-planner';
import type { ArgumentNode, DocumentNode, FieldNode, OperationDefinitionNode, VariableDefinitionNode } from 'graphql';
import { rewriteAliases, type AliasRestore } from '../aliases.ts';

const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');
const { GraphQLError, Kind, print } = graphql;

/** The gateway's variable carrying the upstream cursor. */
export const AFTER_VARIABLE = '__flowgraph_after';

/** A planned subscription, shared by every client with the same document and operation name. */
export interface SubscriptionPlan {
  /** The rewritten document (root `after` → `$__flowgraph_after`), printed: the plan cache key. */
  key: string;
  /** The owning subgraph's fetch: operation text and variables it uses. */
  primary: FetchNode;
  /** What runs per event after the primary fetch (entity fetches), if anything. */
  rest: PlanNode | undefined;
  /** Apollo's operation context of the rewritten document (for `executeQueryPlan`). */
  operationContext: ReturnType<typeof buildOperationContext>;
  /** Whether the root field takes `after` (flowgraph's resumable fields do). */
  resumable: boolean;
  /** The subscription root field's name, e.g. `runUpdated`. */
  fieldName: string;
  /** How to put the client's aliases back in each event's result (`gateway/aliases.ts`); none without aliases. */
  aliases: AliasRestore | undefined;
}

/** A client subscription after rewriting: its plan and where its cursor came from. */
export interface PreparedSubscription {
  plan: SubscriptionPlan;
  /**
   * The client's variables plus `__flowgraph_after` (its cursor, or null), without the client's
   * own cursor variable (the one its `after` read) when nothing else in the document reads it:
   * clients that differ only by cursor have equal variables, so they share one subscription.
   */
  variables: Record<string, unknown>;
  /** The client's cursor (`after`), or null. */
  after: string | null;
}

/** Plans subscriptions on one supergraph, caching plans by rewritten document (LRU, `maxPlans`). */
export interface SubscriptionPlanner {
  /**
   * Rewrites and plans `document` (already parsed, validated against the API schema and checked
   * against the operation limits).
   * @throws GraphQLError `BAD_USER_INPUT` when `after` is not a string or the operation is not a subscription
   */
  prepare(document: DocumentNode, operation: OperationDefinitionNode, variables: Record<string, unknown>): PreparedSubscription;
}

/** Creates a planner on `supergraph`. */
export function createSubscriptionPlanner(supergraph: Supergraph, apiSchema: Schema, options: { maxPlans?: number } = {}): SubscriptionPlanner {
  const queryPlanner = new QueryPlanner(supergraph);
  const apiGraphQLSchema = apiSchema.toGraphQLJSSchema();
  const cache = new Map<string, SubscriptionPlan>();
  const maxPlans = options.maxPlans ?? 500;

  function plan(document: DocumentNode, operationName: string | undefined): SubscriptionPlan {
    const key = `${operationName ?? ''}\u0000${print(document)}`;
    const cached = cache.get(key);
    if (cached) {
      cache.delete(key);
      cache.set(key, cached);
      return cached;
    }
    // Client aliases planned under reserved names, restored per event (gateway/aliases.ts, issue 11).
    const aliasRewrite = rewriteAliases(document);
    document = aliasRewrite?.document ?? document;
    const operation = operationFromDocument(apiSchema, document, { operationName });
    const queryPlan = queryPlanner.buildQueryPlan(operation);
    const node = queryPlan.node;
    if (node?.kind !== 'Subscription') {
      throw new GraphQLError('The query planner did not produce a subscription plan', { extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    }
    const definition = document.definitions.find(
      (d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION && (operationName === undefined || d.name?.value === operationName),
    )!;
    const root = firstField(definition);
    const planned: SubscriptionPlan = {
      key,
      primary: node.primary,
      rest: node.rest,
      operationContext: buildOperationContext({ schema: apiGraphQLSchema, operationDocument: document, operationName }),
      resumable: root.arguments?.some((a) => a.name.value === 'after') ?? false,
      fieldName: root.name.value,
      aliases: aliasRewrite?.restoreFor(operationName),
    };
    cache.set(key, planned);
    if (cache.size > maxPlans) cache.delete(cache.keys().next().value!);
    return planned;
  }

  return {
    prepare(document, operation, variables) {
      if (operation.operation !== 'subscription') {
        throw new GraphQLError('Only subscriptions are planned here', { extensions: { code: 'BAD_USER_INPUT' } });
      }
      const { document: rewritten, after, droppedVariable } = rewriteAfter(document, operation, variables, apiGraphQLSchema);
      const prepared = plan(rewritten, operation.name?.value);
      const kept = droppedVariable === undefined ? { ...variables } : Object.fromEntries(Object.entries(variables).filter(([name]) => name !== droppedVariable));
      return { plan: prepared, after, variables: prepared.resumable ? { ...kept, [AFTER_VARIABLE]: after } : kept };
    },
  };
}

/**
 * Rewrites the root field's `after` argument to `$__flowgraph_after` and returns the client's
 * value of it, and the client's variable that `after` read when the rewritten document no longer
 * declares it (`droppedVariable`). Fields without an `after` argument in the schema are left alone.
 */
function rewriteAfter(
  document: DocumentNode,
  operation: OperationDefinitionNode,
  variables: Record<string, unknown>,
  schema: import('graphql').GraphQLSchema,
): { document: DocumentNode; after: string | null; droppedVariable?: string } {
  const root = firstField(operation);
  if (operation.variableDefinitions?.some((d) => d.variable.name.value.startsWith('__flowgraph'))) {
    throw new GraphQLError('Variable names starting with "__flowgraph" are reserved by the gateway', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  const fieldDef = schema.getSubscriptionType()?.getFields()[root.name.value];
  if (!fieldDef?.args.some((a) => a.name === 'after')) return { document, after: null };
  const given = root.arguments?.find((a) => a.name.value === 'after');
  let after: unknown = null;
  if (given?.value.kind === Kind.VARIABLE) after = variables[given.value.name.value] ?? null;
  else if (given?.value.kind === Kind.STRING) after = given.value.value;
  else if (given !== undefined && given.value.kind !== Kind.NULL) {
    throw new GraphQLError('Argument "after" must be a cursor string', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  if (after !== null && typeof after !== 'string') {
    throw new GraphQLError('Argument "after" must be a cursor string', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  const afterArgument: ArgumentNode = {
    kind: Kind.ARGUMENT,
    name: { kind: Kind.NAME, value: 'after' },
    value: { kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: AFTER_VARIABLE } },
  };
  const definition: VariableDefinitionNode = {
    kind: Kind.VARIABLE_DEFINITION,
    variable: { kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: AFTER_VARIABLE } },
    type: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'String' } },
  };
  const rewrittenRoot: FieldNode = { ...root, arguments: [...(root.arguments ?? []).filter((a) => a.name.value !== 'after'), afterArgument] };
  // The client's own `$after` goes when nothing else reads it (no unused variable is left behind).
  const clientVariable = given?.value.kind === Kind.VARIABLE ? given.value.name.value : undefined;
  const stillUsed = clientVariable !== undefined && variableUses(document, clientVariable) > 2;
  const kept = (operation.variableDefinitions ?? []).filter((d) => d.variable.name.value !== clientVariable || stillUsed);
  const rewrittenOperation: OperationDefinitionNode = {
    ...operation,
    variableDefinitions: [...kept, definition],
    selectionSet: { ...operation.selectionSet, selections: operation.selectionSet.selections.map((s) => (s === root ? rewrittenRoot : s)) },
  };
  return {
    document: { ...document, definitions: document.definitions.map((d) => (d === operation ? rewrittenOperation : d)) },
    after: after as string | null,
    ...(clientVariable !== undefined && !stillUsed ? { droppedVariable: clientVariable } : {}),
  };
}

/**
 * The root field of a subscription operation. GraphQL's "Single root field" rule holds after
 * validation; the root field must be written directly in the operation (not through a fragment)
 * for the cursor rewrite.
 * @throws GraphQLError `BAD_USER_INPUT` for a root selection that is a fragment
 */
function firstField(operation: OperationDefinitionNode): FieldNode {
  const selection = operation.selectionSet.selections.find((s) => !(s.kind === Kind.FIELD && s.name.value === '__typename'));
  if (selection?.kind !== Kind.FIELD) {
    throw new GraphQLError('Write the subscription root field directly in the operation, not in a fragment', { extensions: { code: 'BAD_USER_INPUT' } });
  }
  return selection;
}

/** How often `$name` appears in `document` (its definition included). */
function variableUses(document: DocumentNode, name: string): number {
  let uses = 0;
  graphql.visit(document, {
    Variable(node) {
      if (node.name.value === name) uses++;
    },
  });
  return uses;
}
