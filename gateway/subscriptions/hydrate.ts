/**
 * Per-event execution of a subscription plan's `rest`: the owning subgraph's event (the primary
 * fetch's result, received over graphql-ws) is fed into `@apollo/gateway`'s own
 * `executeQueryPlan` as the result of that fetch, so the entity fetches to the other subgraphs,
 * `@requires`, rewrites and response shaping are exactly the gateway's. Runs once per event and
 * distinct subscription; the result is serialized once for every client that shares it.
 *
 * Each event gets its own fetches: nothing is cached between events, so every update carries
 * the other subgraphs' fields as they answer for that event (subgraphs that keep history answer
 * "as of" the event when the representation carries its version, e.g. monitoring's `timeline`).
 */
import { executeQueryPlan, type GraphQLDataSource } from '@apollo/gateway';
import type { Schema } from '@apollo/federation-internals';
import type { FetchNode, QueryPlan } from '@apollo/query-planner';
import type { GraphQLFormattedError, GraphQLSchema } from 'graphql';
import type { GatewayContext } from '../context.ts';
import type { SubscriptionPlan } from './plan.ts';
import { restoreData, restoreErrorPath } from '../aliases.ts';

/** The data-source name the primary fetch is routed to while hydrating (never a real subgraph). */
const PRIMARY_SOURCE = '__flowgraph_subscription_event__';

/** What one upstream event carries. */
export interface UpstreamEvent {
  data: Record<string, unknown> | null | undefined;
  errors: readonly GraphQLFormattedError[] | undefined;
  /** The event's opaque cursor (from `extensions.flowgraph.cursor`). */
  cursor: string;
}

/** Options of {@link createHydrator}. */
export interface HydratorOptions {
  plan: SubscriptionPlan;
  /** The supergraph as a graphql-js schema (`supergraph.schema.toGraphQLJSSchema()`, as `@apollo/gateway` passes it): rewrites and `@requires` selections look types up in it. */
  supergraphSchema: GraphQLSchema;
  apiSchema: Schema;
  /** Data sources of the subgraphs, by name (the gateway's `SubgraphDataSource`s). */
  serviceMap: Readonly<Record<string, GraphQLDataSource>>;
  /** Variables of the client operation (with `__flowgraph_after`). */
  variables: Record<string, unknown>;
  /** Identity and correlation id the entity fetches carry. */
  context: GatewayContext;
  logger: { warn(obj: object, msg: string): void; error(obj: object, msg: string): void };
}

/** Turns one upstream event into the serialized payload clients receive. */
export type Hydrator = (event: UpstreamEvent) => Promise<Buffer>;

/**
 * A hydrator for one shared subscription. The resulting JSON is an ExecutionResult:
 * `{ data, errors?, extensions: { cursor } }`.
 */
export function createHydrator(options: HydratorOptions): Hydrator {
  const { plan, supergraphSchema, apiSchema, variables, context } = options;
  const primary: FetchNode = { ...plan.primary, serviceName: PRIMARY_SOURCE };
  const queryPlan: QueryPlan = {
    kind: 'QueryPlan',
    node: plan.rest ? { kind: 'Sequence', nodes: [primary, plan.rest] } : primary,
  };

  return async (event) => {
    const source: GraphQLDataSource = {
      process: async () => ({
        ...(event.data !== undefined ? { data: event.data } : {}),
        ...(event.errors && event.errors.length > 0 ? { errors: event.errors as GraphQLFormattedError[] } : {}),
      }),
    };
    const serviceMap = { ...options.serviceMap, [PRIMARY_SOURCE]: source };
    const requestContext = {
      request: { variables, query: undefined, operationName: plan.operationContext.operation.name?.value },
      context,
      metrics: {},
      logger: { debug() {}, info() {}, warn: (m: unknown) => options.logger.warn({ message: m }, 'gateway: subscription hydration'), error: (m: unknown) => options.logger.error({ message: m }, 'gateway: subscription hydration') },
      cache: undefined,
      overallCachePolicy: undefined,
    };
    let result;
    try {
      result = await executeQueryPlan(
        queryPlan,
        serviceMap,
        requestContext as unknown as Parameters<typeof executeQueryPlan>[2],
        plan.operationContext,
        supergraphSchema,
        apiSchema,
      );
    } catch (error) {
      options.logger.error({ err: error }, 'gateway: a subscription event could not be executed');
      result = { errors: [{ message: 'Internal gateway error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] };
    }
    const body: Record<string, unknown> = {};
    if (result.errors && result.errors.length > 0) body.errors = result.errors.map((error) => restoreErrorPath(formatError(error), plan.aliases));
    if ('data' in result) body.data = restoreData(result.data, plan.aliases);
    body.extensions = { cursor: event.cursor };
    return Buffer.from(JSON.stringify(body));
  };
}

/** A client-facing error: message, path, locations and `extensions` (code kept), no stack. */
function formatError(error: unknown): GraphQLFormattedError {
  const json = typeof (error as { toJSON?: unknown }).toJSON === 'function' ? (error as { toJSON(): GraphQLFormattedError }).toJSON() : (error as GraphQLFormattedError);
  const { exception: _exception, stacktrace: _stacktrace, ...extensions } = (json.extensions ?? {}) as Record<string, unknown>;
  return {
    message: json.message,
    ...(json.locations ? { locations: json.locations } : {}),
    ...(json.path ? { path: json.path } : {}),
    extensions: { ...extensions, code: extensions.code ?? 'INTERNAL_SERVER_ERROR' },
  };
}
