/**
 * The gateway's subscription engine (issue 6): every graphql-ws `subscribe` of a client lands
 * here. Subscriptions are checked like HTTP operations (token limit, validation against the API
 * schema, the operation limits of `gateway/operationLimits.ts`), planned with the federation
 * query planner (`plan.ts`), and served by a {@link SharedSubscription} per
 * `(plan, variables without the cursor, identity)`: one upstream subscription to the owning
 * subgraph, the rest of the plan run once per event (`hydrate.ts`), one serialization per event.
 * Until the subgraph has accepted a shared subscription's upstream (its first position
 * announcement or event), only clients with its starting cursor join it; a client with another
 * cursor waits: once it is accepted the client joins (catching up on an upstream of its own), if it
 * is refused the client starts over (on a shared subscription of its own cursor, or another
 * client's). So a cursor the subgraph refuses (`INVALID_CURSOR`, `CURSOR_EXPIRED`) fails the
 * clients that sent it and no other, and clients resuming from different cursors at once still
 * end up on one upstream.
 *
 * Queries and mutations sent over the socket are executed by Apollo Server like HTTP requests
 * (same plugins, same limits) and answered with one `next` and `complete`.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { GraphQLDataSource } from '@apollo/gateway';
import { Supergraph } from '@apollo/federation-internals';
import type { DocumentNode, GraphQLFormattedError, OperationDefinitionNode } from 'graphql';
import type { Logger } from 'pino';
import type { WsOperation } from '../../ws/server.ts';
import type { Identity } from '../auth.ts';
import { GatewayErrorCode } from '../errors.ts';
import { checkInlineValueDepth, checkOperationLimits, checkVariableDepth, type OperationLimits } from '../operationLimits.ts';
import { checkInlineNumbers } from '../exactNumbers.ts';
import { createHydrator } from './hydrate.ts';
import { AFTER_VARIABLE, createSubscriptionPlanner, type SubscriptionPlan } from './plan.ts';
import { createSharedSubscription, type SharedSubscription } from './shared.ts';
import { createUpstreamPool, openUpstream, type UpstreamPool } from './upstream.ts';
import { authorizationPolicyOf, authorizeOperation, type AuthorizationPolicy } from '../authorization.ts';
import { GATEWAY_SELF_IDENTITY, type IdentitySigner } from '../../federation/gatewayIdentity.ts';

const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');
const { GraphQLError, getOperationAST, getVariableValues, parse, specifiedRules, validate } = graphql;

/** What the engine knows of a client connection. */
export interface ConnectionIdentity {
  identity: Identity;
}

/** Options of {@link createSubscriptionEngine}. */
export interface SubscriptionEngineOptions {
  supergraphSdl: string;
  /** HTTP URL of every subgraph (overrides applied). */
  subgraphUrls: Readonly<Record<string, string>>;
  /** The gateway's data sources, by subgraph name (entity fetches of each event). */
  serviceMap: Readonly<Record<string, GraphQLDataSource>>;
  limits: OperationLimits;
  logger: Logger;
  /**
   * Signs the identities sent upstream (`federation/gatewayIdentity.ts`): the gateway's own
   * (subject `gateway`, role `admin`) in each socket's `connection_init`, the caller's in each
   * subscribe's `extensions.flowgraph.identity`.
   */
  identitySigner: IdentitySigner;
  /**
   * The supergraph's `@requiresScopes` (`gateway/authorization.ts`): a subscription the caller's
   * role may not run gets `FORBIDDEN` after validation, before it is planned or sent upstream.
   * @default the policy of `supergraphSdl`
   */
  authorizationPolicy?: AuthorizationPolicy;
  /**
   * Runs a query or mutation sent over the socket (Apollo Server's `executeOperation` with the
   * connection's identity); resolves with the serialized ExecutionResult.
   */
  executeOperation(request: { query: string; operationName?: string; variables?: Record<string, unknown> }, identity: Identity): Promise<Buffer>;
  /** Called after each event frame sent to a client (metrics; must be cheap and never throw). @default none */
  onDelivered?(): void;
}

/** The running engine. */
export interface SubscriptionEngine {
  /** Handles one operation of a client socket. */
  onSubscribe(operation: WsOperation<ConnectionIdentity>): Promise<void>;
  /** Shared subscriptions open now (distinct plan, variables and identity). */
  readonly sharedSubscriptions: number;
  /** Client subscriptions open now. */
  readonly clientSubscriptions: number;
  /** Upstream sockets open now. */
  readonly upstreamSockets: number;
  /** Closes every upstream. Client sockets are the websocket server's. Idempotent. */
  close(): Promise<void>;
}

/** Creates the engine for one supergraph. */
export function createSubscriptionEngine(options: SubscriptionEngineOptions): SubscriptionEngine {
  const { limits, logger } = options;
  const supergraph = Supergraph.build(options.supergraphSdl);
  const supergraphSchema = supergraph.schema.toGraphQLJSSchema();
  const apiSchema = supergraph.apiSchema();
  const apiGraphQLSchema = apiSchema.toGraphQLJSSchema();
  const planner = createSubscriptionPlanner(supergraph, apiSchema);
  const authorizationPolicy = options.authorizationPolicy ?? authorizationPolicyOf(options.supergraphSdl);
  const pool: UpstreamPool = createUpstreamPool({
    urls: options.subgraphUrls,
    logger,
    connectionParams: async () => ({ identity: await options.identitySigner.sign(GATEWAY_SELF_IDENTITY) }),
  });
  const shared = new Map<string, SharedSubscription>();
  let clients = 0;
  let closed = false;

  function sharedFor(plan: SubscriptionPlan, variables: Record<string, unknown>, after: string | null, identity: Identity): SharedSubscription {
    const { [AFTER_VARIABLE]: _after, ...rest } = variables;
    const key = canonicalJson([plan.key, rest, identity.subject, identity.role]);
    let subscription = shared.get(key);
    if (subscription) return subscription;
    const correlationId = randomUUID();
    const context = { identity, correlationId };
    const hydrate = createHydrator({ plan, supergraphSchema, apiSchema, serviceMap: options.serviceMap, variables, context, logger });
    const used = new Set(plan.primary.variableUsages ?? []);
    const upstreamVariables = Object.fromEntries(Object.entries(rest).filter(([name]) => used.has(name)));
    subscription = createSharedSubscription({
      key,
      hydrate,
      after,
      logger,
      openUpstream: (from, handlers) =>
        openUpstream(
          pool,
          {
            subgraph: plan.primary.serviceName,
            query: plan.primary.operation,
            operationName: plan.primary.operationName,
            variables: upstreamVariables,
            afterVariable: plan.resumable && used.has(AFTER_VARIABLE) ? AFTER_VARIABLE : null,
            after: from,
            identityToken: () => options.identitySigner.sign({ subject: identity.subject, role: identity.role }),
            correlationId,
            logger,
          },
          handlers,
        ),
      onClosed: () => {
        if (shared.get(key) === subscription) shared.delete(key);
      },
    });
    shared.set(key, subscription);
    return subscription;
  }

  async function onSubscribe(operation: WsOperation<ConnectionIdentity>): Promise<void> {
    if (closed) throw new GraphQLError('The gateway is stopping', { extensions: { code: GatewayErrorCode.GatewayNotReady } });
    const { payload } = operation;
    const { identity } = operation.connection.identity;
    const variables = payload.variables ?? {};
    let document: DocumentNode;
    try {
      document = parse(payload.query, limits.maxTokens > 0 ? { maxTokens: limits.maxTokens } : {});
    } catch (error) {
      const message = (error as Error).message;
      if (/Document contains more th(?:at|an) \d+ tokens/.test(message)) {
        throw new GraphQLError(`Token limit of ${limits.maxTokens} exceeded.`, { extensions: { code: GatewayErrorCode.OperationLimitExceeded, limit: 'maxTokens' } });
      }
      throw new GraphQLError(message, { extensions: { code: 'GRAPHQL_PARSE_FAILED' } });
    }
    const definition: OperationDefinitionNode | null | undefined = getOperationAST(document, payload.operationName ?? undefined);
    if (!definition) {
      throw new GraphQLError(
        payload.operationName ? `Unknown operation named "${payload.operationName}".` : 'Must provide operation name if query contains multiple operations.',
        { extensions: { code: GatewayErrorCode.OperationResolutionFailure } },
      );
    }
    if (definition.operation !== 'subscription') {
      const result = await options.executeOperation(
        { query: payload.query, ...(payload.operationName ? { operationName: payload.operationName } : {}), variables },
        identity,
      );
      if (!operation.stopped) {
        operation.next(result);
        operation.complete();
      }
      return;
    }
    const validationErrors = validate(apiGraphQLSchema, document, specifiedRules);
    if (validationErrors.length > 0) {
      return operation.error(validationErrors.map((error) => ({ ...error.toJSON(), extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } })));
    }
    // The September 2025 GraphQL spec ("Single Root Field", as graphql-js 17 validates): a
    // subscription's root field is unconditional, or no event could say whether it is selected.
    for (const selection of definition.selectionSet.selections) {
      if (selection.directives?.some((directive) => directive.name.value === 'skip' || directive.name.value === 'include')) {
        throw new GraphQLError('@skip and @include are not allowed on the root field of a subscription', { nodes: [selection], extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
      }
    }
    // Roles before anything is planned or sent upstream (HTTP does the same in Apollo's didResolveOperation).
    authorizeOperation(authorizationPolicy, apiGraphQLSchema, document, definition, identity);
    checkVariableDepth(variables, limits.maxVariableDepth);
    checkInlineValueDepth(document, limits.maxVariableDepth);
    checkInlineNumbers(apiGraphQLSchema, document);
    checkOperationLimits(apiGraphQLSchema, document, definition, variables, limits);
    const coerced = getVariableValues(apiGraphQLSchema, definition.variableDefinitions ?? [], variables);
    if (coerced.errors) return operation.error(coerced.errors.map((error) => ({ ...error.toJSON(), extensions: { code: 'BAD_USER_INPUT' } })));

    const prepared = planner.prepare(document, definition, variables);
    const onDelivered = options.onDelivered;
    const sink = {
      next: onDelivered
        ? (bytes: Buffer) => {
            const sent = operation.next(bytes);
            if (sent) onDelivered();
            return sent;
          }
        : (bytes: Buffer) => operation.next(bytes),
      error: (errors: readonly GraphQLFormattedError[]) => operation.error(errors),
      complete: () => operation.complete(),
      get stopped() {
        return operation.stopped;
      },
    };
    clients++;
    let leave: (() => void) | undefined;
    let left = false;
    operation.onStop(() => {
      if (left) return;
      left = true;
      clients--;
      leave?.();
    });
    for (;;) {
      if (left || closed) return;
      const subscription = sharedFor(prepared.plan, prepared.variables, prepared.after, identity);
      // Not accepted yet: the subgraph may still refuse its starting cursor, and that error ends
      // every member. A client with another cursor joins once it is accepted, else starts over.
      if (subscription.accepted || subscription.after === prepared.after) {
        leave = subscription.join(sink, prepared.after);
        return;
      }
      await subscription.settled;
    }
  }

  return {
    async onSubscribe(operation) {
      try {
        await onSubscribe(operation);
      } catch (error) {
        // The HTTP-only hints of shared checks (extensions.http: a status) mean nothing here.
        if (error instanceof GraphQLError && error.extensions.http !== undefined) {
          const { http: _http, ...extensions } = error.extensions;
          throw new GraphQLError(error.message, { nodes: error.nodes, extensions });
        }
        throw error;
      }
    },
    get sharedSubscriptions() {
      return shared.size;
    },
    get clientSubscriptions() {
      return clients;
    },
    get upstreamSockets() {
      return pool.size;
    },
    async close() {
      if (closed) return;
      closed = true;
      for (const subscription of [...shared.values()]) subscription.close();
      shared.clear();
      await pool.close();
    },
  };
}

/** JSON with object keys sorted recursively: equal values, equal text. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) => {
    if (inner === null || typeof inner !== 'object' || Array.isArray(inner)) return inner;
    return Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  });
}
