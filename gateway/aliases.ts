/**
 * Client aliases the federation query planner cannot get wrong (issue 11; the stock gateway's
 * apollographql/federation #3036). The planner adds the fields it needs to every subgraph fetch
 * (`__typename`, the entity's `@key` fields, `@requires` fields) under their own names. A client
 * alias equal to one of those names (`run { id: workflowId timeline }`, `__typename: status`)
 * then shares a response name with a field the planner added, and the gateway answers the other
 * field's value, or `{"data": null}` with no error at all.
 *
 * The cure is syntactic: before planning, every alias that differs from its field's name is
 * replaced by a reserved one, `__fg_alias_<alias>` (`id: workflowId` → `__fg_alias_id: workflowId`),
 * in operations and in fragments alike; after execution the client's names are put back in the
 * result (`data`, in field order) and in the `path` of every error. The reserved names start with
 * `__`, which the GraphQL spec reserves for introspection (§ 3.4.1 "Names"), so they can never be
 * a field name the planner adds; a client alias that itself starts with the prefix is rewritten
 * like any other (`__fg_alias___fg_alias_x`) and restored by stripping one prefix.
 *
 * The replacement is a function of the alias alone, so a response name merged from several
 * selections (the same alias in the operation and in a fragment, or in two type conditions) stays
 * one response name; the restore walks the result along the document's selections, never into
 * leaf values, so a JSON scalar whose keys happen to start with the prefix is left as it is.
 *
 * Every alias is rewritten, not only those that collide with a key field today: what the planner
 * adds depends on the supergraph (`@requires`, `@provides`, interface objects), and a rewrite that
 * needs no schema cannot miss a case. Operations without aliases pass through untouched.
 */
import { createRequire } from 'node:module';
import type { GatewayExecutor, GatewayGraphQLRequestContext, GatewayInterface } from '@apollo/server-gateway-interface';
import type { DocumentNode, FieldNode, FragmentDefinitionNode, GraphQLError, OperationDefinitionNode, SelectionSetNode } from 'graphql';

const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');
const { Kind, visit } = graphql;

/** Prefix of the aliases the gateway puts in place of the client's: `__fg_alias_<client alias>`. */
export const SAFE_ALIAS_PREFIX = '__fg_alias_';

/**
 * How to turn a result of the rewritten operation back into the client's: by response name of the
 * rewritten operation, the client's name (`key`, when it was rewritten) and what lies below
 * (`children`, when something below was rewritten). Response names absent from `children` need
 * nothing done, nor anything below them.
 */
export interface AliasRestore {
  /** The client's response name, when the rewritten one differs. */
  key?: string;
  /** Restores below this response name, by rewritten response name. */
  children?: ReadonlyMap<string, AliasRestore>;
}

/** A document with its aliases replaced, and how to restore the results of each of its operations. */
export interface AliasRewrite {
  /** The rewritten document (a new AST; the client's is not modified). */
  document: DocumentNode;
  /**
   * How to restore a result of the operation named `operationName` (`undefined`: the document's
   * only operation), or `undefined` when that operation's result needs nothing restored.
   */
  restoreFor(operationName: string | null | undefined): AliasRestore | undefined;
}

/**
 * Replaces every alias of `document` that differs from its field's name by
 * `__fg_alias_<alias>` (see the module comment), in operations and fragments.
 * @param document a parsed document (validated or not: the rewrite is syntactic)
 * @returns the rewrite, or `undefined` when the document has no such alias (use it as it is)
 */
export function rewriteAliases(document: DocumentNode): AliasRewrite | undefined {
  let changed = false;
  const rewritten: DocumentNode = visit(document, {
    Field(field: FieldNode): FieldNode | undefined {
      if (field.alias === undefined || field.alias.value === field.name.value) return undefined;
      changed = true;
      return { ...field, alias: { ...field.alias, value: SAFE_ALIAS_PREFIX + field.alias.value } };
    },
  });
  if (!changed) return undefined;
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of rewritten.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const byOperation = new Map<string, AliasRestore | undefined>();
  return {
    document: rewritten,
    restoreFor(operationName) {
      const name = operationName ?? '';
      if (byOperation.has(name)) return byOperation.get(name);
      const operation = rewritten.definitions.find(
        (definition): definition is OperationDefinitionNode =>
          definition.kind === Kind.OPERATION_DEFINITION && (operationName == null || definition.name?.value === operationName),
      );
      const restore = operation === undefined ? undefined : restoreOf([operation.selectionSet], fragments);
      byOperation.set(name, restore);
      return restore;
    },
  };
}

/** The restore of the fields that `selectionSets` (merged, as execution merges them) select. */
function restoreOf(selectionSets: readonly SelectionSetNode[], fragments: ReadonlyMap<string, FragmentDefinitionNode>): AliasRestore | undefined {
  const fields = new Map<string, FieldNode[]>();
  const spread = new Set<string>();
  const collect = (selectionSet: SelectionSetNode) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const responseName = selection.alias?.value ?? selection.name.value;
        const same = fields.get(responseName);
        if (same) same.push(selection);
        else fields.set(responseName, [selection]);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        collect(selection.selectionSet);
      } else if (!spread.has(selection.name.value)) {
        // A fragment spread twice in one selection set adds its fields once; unknown ones were refused by validation.
        spread.add(selection.name.value);
        const fragment = fragments.get(selection.name.value);
        if (fragment) collect(fragment.selectionSet);
      }
    }
  };
  for (const selectionSet of selectionSets) collect(selectionSet);

  const children = new Map<string, AliasRestore>();
  for (const [responseName, same] of fields) {
    const key = responseName.startsWith(SAFE_ALIAS_PREFIX) ? responseName.slice(SAFE_ALIAS_PREFIX.length) : undefined;
    const below = same.flatMap((field) => (field.selectionSet ? [field.selectionSet] : []));
    const child = below.length > 0 ? restoreOf(below, fragments) : undefined;
    if (key !== undefined || child !== undefined) {
      children.set(responseName, { ...(key !== undefined ? { key } : {}), ...(child?.children ? { children: child.children } : {}) });
    }
  }
  return children.size > 0 ? { children } : undefined;
}

/**
 * The client's version of `data` (a result's `data`, or the value at a response name): rewritten
 * response names replaced by the client's, in place in the field order; arrays element by element.
 * Returns a new value where something changed; leaves `data` itself unmodified.
 */
export function restoreData(data: unknown, restore: AliasRestore | undefined): unknown {
  const children = restore?.children;
  if (children === undefined || data === null || typeof data !== 'object') return data;
  if (Array.isArray(data)) return data.map((item) => restoreData(item, restore));
  const restored: Record<string, unknown> = {};
  for (const [responseName, value] of Object.entries(data)) {
    const child = children.get(responseName);
    const key = child?.key ?? responseName;
    const v = child ? restoreData(value, child) : value;
    // An alias may be `__proto__`: assigning it would set the prototype and drop the field.
    if (key === '__proto__') Object.defineProperty(restored, key, { value: v, enumerable: true, writable: true, configurable: true });
    else restored[key] = v;
  }
  return restored;
}

/**
 * The client's version of an error's `path` (response names and list indices, from the root):
 * each rewritten response name replaced by the client's. Returns `path` itself when nothing changed.
 */
export function restorePath(path: readonly (string | number)[], restore: AliasRestore | undefined): readonly (string | number)[] {
  let node = restore;
  let restored: (string | number)[] | undefined;
  path.forEach((segment, index) => {
    if (typeof segment !== 'string' || node?.children === undefined) return;
    const child = node.children.get(segment);
    node = child;
    if (child?.key !== undefined) {
      restored ??= [...path];
      restored[index] = child.key;
    }
  });
  return restored ?? path;
}

/**
 * `error` with its `path` restored: a copy of the same prototype (a `GraphQLError` stays one, with
 * its `originalError` and `extensions`), or `error` itself when its path needs nothing.
 */
export function restoreErrorPath<E extends { readonly path?: readonly (string | number)[] | undefined }>(error: E, restore: AliasRestore | undefined): E {
  if (error.path === undefined) return error;
  const path = restorePath(error.path, restore);
  if (path === error.path) return error;
  return Object.defineProperties(Object.create(Object.getPrototypeOf(error) as object) as E, {
    ...Object.getOwnPropertyDescriptors(error),
    path: { value: path, enumerable: true, writable: true, configurable: true },
  });
}

/**
 * A cache of {@link rewriteAliases} by document: Apollo Server hands the executor the same
 * `DocumentNode` for a repeated operation (its parsed-document store), so a repeated operation
 * costs one lookup. Entries go with their documents (a `WeakMap`).
 */
export function createAliasRewriter(): (document: DocumentNode) => AliasRewrite | undefined {
  const cache = new WeakMap<DocumentNode, AliasRewrite | null>();
  return (document) => {
    let rewrite = cache.get(document);
    if (rewrite === undefined) {
      rewrite = rewriteAliases(document) ?? null;
      cache.set(document, rewrite);
    }
    return rewrite ?? undefined;
  };
}

/**
 * Wraps a gateway's executor so that client aliases survive query planning: the document is
 * rewritten ({@link rewriteAliases}) before `gateway`'s executor plans and runs it, and its result
 * (`data`, errors' `path`) restored after. The query plan is cached by `gateway` under the
 * request's `queryHash` (a hash of the client's text), and the rewrite is a pure function of that
 * text, so a cached plan always belongs to the rewritten document. Everything else is `gateway`'s.
 * @param gateway the `ApolloGateway` (any {@link GatewayInterface}) given to Apollo Server
 */
export function aliasSafeGateway(gateway: GatewayInterface): GatewayInterface {
  const rewriterFor = createAliasRewriter();
  const wrap = (executor: GatewayExecutor): GatewayExecutor => async (requestContext: GatewayGraphQLRequestContext) => {
    const rewrite = rewriterFor(requestContext.document);
    if (rewrite === undefined) return executor(requestContext);
    const result = await executor({ ...requestContext, document: rewrite.document });
    const restore = rewrite.restoreFor(requestContext.request.operationName ?? requestContext.operationName);
    if (restore === undefined) return result;
    return {
      ...result,
      ...('data' in result ? { data: restoreData(result.data, restore) as typeof result.data } : {}),
      ...(result.errors ? { errors: result.errors.map((error: GraphQLError) => restoreErrorPath(error, restore)) } : {}),
    };
  };
  return {
    onSchemaLoadOrUpdate: (callback) => gateway.onSchemaLoadOrUpdate(callback),
    async load(options) {
      const loaded = await gateway.load(options);
      return { ...loaded, executor: loaded.executor === null ? null : wrap(loaded.executor) };
    },
    stop: () => gateway.stop(),
  };
}
