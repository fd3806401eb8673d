/**
 * What a verified caller may run (DESIGN.md, "Auth"; README, "Authentication"), decided at the
 * gateway before an operation is planned, so a refused one reaches no subgraph and appends nothing:
 *
 * - the operation type: queries and subscriptions need `viewer`, mutations `operator`
 *   (`federation/roles.ts` `roleForOperationType`);
 * - every field the selected operation selects (through fragments, whatever `@skip`/`@include`
 *   say) whose supergraph definition, or whose return type, carries Apollo Federation's
 *   authorization directive `@requiresScopes(scopes: [[...]])`: the outer list is an OR, each inner
 *   list an AND, and a role holds the scopes `scopesOf(role)` (its own name and those of the
 *   lesser roles). The parking mutations are `@requiresScopes(scopes: [["admin"]])`.
 *
 * A refused operation gets `FORBIDDEN` (HTTP 403) naming what needs which role. Over HTTP and for
 * queries and mutations over the websocket {@link authorizationPlugin} checks it (Apollo's
 * `didResolveOperation`, before the gateway plans); subscriptions are checked by the subscription
 * engine with {@link authorizeOperation}.
 *
 * `@apollo/gateway` 2.14 refuses a supergraph that links `requiresScopes` `for: SECURITY` (a
 * feature it does not implement, so it will not run a supergraph whose security depends on it):
 * the gateway reads the policy from the SDL itself and hands Apollo {@link executableSupergraphSdl},
 * the same SDL with that link's `for: SECURITY` removed. Enforcement is flowgraph's, here.
 */
import { createRequire } from 'node:module';
import type { ApolloServerPlugin } from '@apollo/server';
import type {
  ConstArgumentNode,
  ConstDirectiveNode,
  DocumentNode,
  FragmentDefinitionNode,
  GraphQLNamedType,
  GraphQLSchema,
  OperationDefinitionNode,
  SelectionSetNode,
} from 'graphql';
import { roleAllows, roleForOperationType, ROLES, scopesOf, type Role } from '../federation/roles.ts';
import { forbidden, type Identity } from './auth.ts';
import type { GatewayContext } from './context.ts';

/** graphql-js as Apollo and federation load it (CommonJS): its type predicates accept their schemas. */
const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');
const { Kind, parse, getNamedType, isAbstractType, isInterfaceType, isObjectType } = graphql;

/** URL prefix of the authorization feature Apollo Federation 2.5 composes into the supergraph. */
export const REQUIRES_SCOPES_SPEC = 'https://specs.apollo.dev/requiresScopes/';

/** Required scopes: satisfied when every scope of at least one inner list is held (outer OR, inner AND). */
export type RequiredScopes = readonly (readonly string[])[];

/** The `@requiresScopes` of a supergraph: by `Type.field` and by type name. */
export interface AuthorizationPolicy {
  /** Field coordinates (`Mutation.workflowsParking`) → their scopes. */
  readonly fields: ReadonlyMap<string, RequiredScopes>;
  /** Type names → their scopes (required by every field returning the type). */
  readonly types: ReadonlyMap<string, RequiredScopes>;
}

const policies = new Map<string, AuthorizationPolicy>();

/**
 * The policy of a supergraph SDL (the directive named as its `@link` imports it, `@requiresScopes`
 * by default; an SDL without that link has an empty policy). Memoised by SDL text (a few entries).
 * @throws GraphQLError when the SDL does not parse
 */
export function authorizationPolicyOf(supergraphSdl: string): AuthorizationPolicy {
  const cached = policies.get(supergraphSdl);
  if (cached) return cached;
  const document = parse(supergraphSdl, { noLocation: true });
  const directiveName = requiresScopesDirectiveName(document);
  const fields = new Map<string, RequiredScopes>();
  const types = new Map<string, RequiredScopes>();
  if (directiveName !== undefined) {
    for (const definition of document.definitions) {
      if (!('name' in definition) || definition.name === undefined || !('directives' in definition)) continue;
      const typeName = definition.name.value;
      const own = scopesOfDirectives(definition.directives as readonly ConstDirectiveNode[] | undefined, directiveName);
      if (own) types.set(typeName, merge(types.get(typeName), own));
      if ('fields' in definition && Array.isArray(definition.fields)) {
        for (const field of definition.fields) {
          const scopes = scopesOfDirectives(field.directives, directiveName);
          if (scopes) fields.set(`${typeName}.${field.name.value}`, merge(fields.get(`${typeName}.${field.name.value}`), scopes));
        }
      }
    }
  }
  const policy: AuthorizationPolicy = { fields, types };
  if (policies.size >= 8) policies.clear();
  policies.set(supergraphSdl, policy);
  return policy;
}

/**
 * The supergraph SDL `@apollo/gateway` (and `@apollo/federation-internals`' `Supergraph.build`)
 * will load: `supergraphSdl` with `for: SECURITY` removed from its `requiresScopes` `@link`, the
 * rest of the text untouched. Apollo refuses a SECURITY feature it does not implement; flowgraph
 * enforces `@requiresScopes` itself ({@link authorizeOperation}), before Apollo plans anything.
 * An SDL without such a link is returned as is.
 */
export function executableSupergraphSdl(supergraphSdl: string): string {
  if (!supergraphSdl.includes(REQUIRES_SCOPES_SPEC)) return supergraphSdl;
  const document = parse(supergraphSdl);
  const cuts: { start: number; end: number }[] = [];
  for (const link of linkDirectives(document)) {
    if (!linkUrl(link)?.startsWith(REQUIRES_SCOPES_SPEC)) continue;
    const purpose = link.arguments?.find((argument) => argument.name.value === 'for');
    if (purpose?.loc) cuts.push({ start: purpose.loc.start, end: purpose.loc.end });
  }
  let sdl = supergraphSdl;
  // Right to left, so earlier offsets stay valid; the comma left behind is insignificant in GraphQL.
  for (const { start, end } of cuts.sort((a, b) => b.start - a.start)) sdl = sdl.slice(0, start) + sdl.slice(end);
  return sdl;
}

/**
 * Checks that `identity` may run `operation` (of `document`) against `schema` (the API schema),
 * under `policy`: its operation type's least role, then every selected field's and return type's
 * `@requiresScopes`. Call it after validation (fields are looked up in `schema`; unknown ones are skipped).
 * @throws GraphQLError `FORBIDDEN` (`extensions.http.status` 403) naming the operation type or the
 *   field (`extensions.field`, `Type.field`), the role it needs (`requiredRole`, absent when no
 *   role holds its scopes) and the caller's (`role`)
 */
export function authorizeOperation(policy: AuthorizationPolicy, schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode, identity: Identity): void {
  const role = identity.role;
  const needed = roleForOperationType(operation.operation);
  if (!roleAllows(role, needed)) {
    throw forbidden(`a ${operation.operation} needs the ${needed} role (the caller's role is ${role})`, { operation: operation.operation, requiredRole: needed, role });
  }
  if (policy.fields.size === 0 && policy.types.size === 0) return;
  const held = new Set<string>(scopesOf(role));
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  const refuse = (what: string, extensions: Record<string, unknown>, scopes: RequiredScopes): never => {
    const requiredRole = ROLES.find((candidate) => satisfies(scopes, new Set<string>(scopesOf(candidate))));
    throw forbidden(
      requiredRole
        ? `${what} needs the ${requiredRole} role (the caller's role is ${role})`
        : `${what} needs the scopes ${JSON.stringify(scopes)}, which no flowgraph role holds`,
      { ...extensions, ...(requiredRole ? { requiredRole } : {}), role },
    );
  };
  const checkType = (type: GraphQLNamedType | null | undefined) => {
    if (!type) return;
    const scopes = policy.types.get(type.name);
    if (scopes && !satisfies(scopes, held)) refuse(`the type ${type.name}`, { type: type.name }, scopes);
  };
  const checkField = (typeName: string, fieldName: string) => {
    const scopes = policy.fields.get(`${typeName}.${fieldName}`);
    if (scopes && !satisfies(scopes, held)) refuse(`${typeName}.${fieldName}`, { field: `${typeName}.${fieldName}` }, scopes);
  };
  const seen = new Set<string>();
  const walk = (selectionSet: SelectionSetNode, parent: GraphQLNamedType | null | undefined) => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        const name = selection.name.value;
        if (name.startsWith('__') || !parent || !(isObjectType(parent) || isInterfaceType(parent))) continue;
        const field = parent.getFields()[name];
        if (!field) continue;
        checkField(parent.name, name);
        // An interface's field may be restricted on some of its implementations: the strictest applies.
        if (isAbstractType(parent)) for (const possible of schema.getPossibleTypes(parent)) checkField(possible.name, name);
        const type = getNamedType(field.type);
        checkType(type);
        if (selection.selectionSet) walk(selection.selectionSet, type);
      } else if (selection.kind === Kind.INLINE_FRAGMENT) {
        const type = selection.typeCondition ? schema.getType(selection.typeCondition.name.value) : parent;
        if (selection.typeCondition) checkType(type);
        walk(selection.selectionSet, type);
      } else {
        const name = selection.name.value;
        const fragment = fragments.get(name);
        if (!fragment || seen.has(name)) continue;
        seen.add(name); // the fragment's own type condition fixes its parent type: once is enough
        const type = schema.getType(fragment.typeCondition.name.value);
        checkType(type);
        walk(fragment.selectionSet, type);
      }
    }
  };
  const root = operation.operation === 'query' ? schema.getQueryType() : operation.operation === 'mutation' ? schema.getMutationType() : schema.getSubscriptionType();
  walk(operation.selectionSet, root);
}

/**
 * The Apollo Server plugin that runs {@link authorizeOperation} with the request's
 * `contextValue.identity` in `didResolveOperation`: after validation, before the gateway plans
 * or calls any subgraph. A refusal is the response's only error, HTTP 403.
 */
export function authorizationPlugin(policy: AuthorizationPolicy): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation, document, schema, contextValue }) {
          // Apollo resolves the operation before this hook; without one it has answered already.
          if (operation) authorizeOperation(policy, schema, document, operation, contextValue.identity);
        },
      };
    },
  };
}

/** Whether `held` satisfies `scopes` (some inner list entirely held). An empty outer list is satisfied by nobody. */
function satisfies(scopes: RequiredScopes, held: ReadonlySet<string>): boolean {
  return scopes.some((all) => all.every((scope) => held.has(scope)));
}

/** Two `@requiresScopes` on one element (a type and its extensions): both must hold, so every pair of alternatives is joined. */
function merge(existing: RequiredScopes | undefined, added: RequiredScopes): RequiredScopes {
  if (!existing) return added;
  return existing.flatMap((left) => added.map((right) => [...new Set([...left, ...right])]));
}

function linkDirectives(document: DocumentNode): readonly ConstDirectiveNode[] {
  const links: ConstDirectiveNode[] = [];
  for (const definition of document.definitions) {
    if (definition.kind !== Kind.SCHEMA_DEFINITION && definition.kind !== Kind.SCHEMA_EXTENSION) continue;
    for (const directive of definition.directives ?? []) if (directive.name.value === 'link') links.push(directive);
  }
  return links;
}

function stringArgument(argument: ConstArgumentNode | undefined): string | undefined {
  return argument?.value.kind === Kind.STRING ? argument.value.value : undefined;
}

function linkUrl(link: ConstDirectiveNode): string | undefined {
  return stringArgument(link.arguments?.find((argument) => argument.name.value === 'url'));
}

/** The name of the `requiresScopes` directive in this supergraph (`@link(as:)` renames it), or undefined without the link. */
function requiresScopesDirectiveName(document: DocumentNode): string | undefined {
  const link = linkDirectives(document).find((directive) => linkUrl(directive)?.startsWith(REQUIRES_SCOPES_SPEC));
  if (!link) return undefined;
  return stringArgument(link.arguments?.find((argument) => argument.name.value === 'as')) ?? 'requiresScopes';
}

/** The `scopes` of the `@<directiveName>` among `directives`, or undefined when there is none. */
function scopesOfDirectives(directives: readonly ConstDirectiveNode[] | undefined, directiveName: string): RequiredScopes | undefined {
  let result: RequiredScopes | undefined;
  for (const directive of directives ?? []) {
    if (directive.name.value !== directiveName) continue;
    const value = directive.arguments?.find((argument) => argument.name.value === 'scopes')?.value;
    const outer = value?.kind === Kind.LIST ? value.values : value ? [value] : [];
    const scopes = outer.map((inner) =>
      (inner.kind === Kind.LIST ? inner.values : [inner]).flatMap((scope) => (scope.kind === Kind.STRING ? [scope.value] : [])),
    );
    result = merge(result, scopes);
  }
  return result;
}
