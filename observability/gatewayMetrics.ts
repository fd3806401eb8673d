/**
 * The gateway's metrics (`/metrics` on the gateway's port; every series carries
 * `service="gateway"`): GraphQL requests, subgraph fetches, the query-plan cache, websockets and
 * subscriptions. See {@link createGatewayMetrics} for the list.
 *
 * Where each is measured:
 * - requests: an Apollo Server plugin (`requestDidStart` → `willSendResponse`), so HTTP requests
 *   and queries/mutations sent over the websocket count alike; requests refused before Apollo
 *   runs (401, 403, 413, 503) are not GraphQL requests and are not counted. Subscriptions are
 *   counted by the subscription gauges instead.
 * - subgraph fetches: a wrapper of each data source's `process` (every fetch of a query plan,
 *   the subscription engine's entity fetches included).
 * - query-plan cache: `@apollo/gateway` plans through `queryPlannerConfig.cache` when one is given
 *   (its public option); the cache given is Apollo's own default (an `InMemoryLRUCache` of
 *   30 MiB, entries sized by their JSON) with its `get` counted: a value is a hit, none a miss.
 * - websockets and subscriptions: gauges read from the websocket server and the subscription
 *   engine at scrape time; delivered events and slow-consumer closes: hooks of both.
 */
import type { GraphQLDataSource, GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { ApolloServerPlugin, BaseContext } from '@apollo/server';
import { InMemoryLRUCache } from '@apollo/utils.keyvaluecache';
import type { QueryPlan, QueryPlanCache } from '@apollo/query-planner';
import { Counter, Gauge, Histogram } from 'prom-client';
import { createRegistry, metricsEndpoint, REQUEST_DURATION_BUCKETS, type MetricsEndpoint, type MetricsOptions } from './metrics.ts';
import { OTHER_OPERATION, createOperationNameLabel, DEFAULT_MAX_OPERATION_NAMES } from './operationName.ts';

/** Size of the query-plan cache given to Apollo: its own default, 30 MiB (`@apollo/gateway` `initQueryPlanStore`). */
export const QUERY_PLAN_CACHE_BYTES = 30 * 2 ** 20;

/** Options of {@link createGatewayMetrics}. */
export interface GatewayMetricsOptions extends MetricsOptions {
  /** Distinct operation names kept as `operation_name` labels (others are `other`). @default 100 */
  maxOperationNames?: number;
}

/** What the websocket gauges read at scrape time. */
export interface WebsocketCounts {
  /** Open client sockets (`WsServer.connections`). */
  readonly connections: number;
}
/** What the subscription gauges read at scrape time (`SubscriptionEngine`). */
export interface SubscriptionCounts {
  readonly clientSubscriptions: number;
  readonly sharedSubscriptions: number;
  readonly upstreamSockets: number;
}

/** The gateway's instruments; every method is a cheap no-op when metrics are off. */
export interface GatewayMetrics extends MetricsEndpoint {
  /** The Apollo Server plugin counting requests; undefined when metrics are off. */
  readonly plugin: ApolloServerPlugin<BaseContext> | undefined;
  /** The query-plan cache to give `ApolloGateway` (`queryPlannerConfig.cache`); undefined (Apollo's own) when metrics are off. */
  readonly queryPlanCache: QueryPlanCache | undefined;
  /** `source` with its `process` timed and counted as subgraph `name`'s fetches (the same object, patched). */
  instrumentDataSource<T extends GraphQLDataSource>(name: string, source: T): T;
  /** Reads the websocket and subscription gauges from these at scrape time. */
  observe(websockets: WebsocketCounts, subscriptions: SubscriptionCounts): void;
  /** A subscription event frame was sent to a client. */
  eventDelivered(): void;
  /** A client socket was closed with 1013 for being too slow. */
  slowConsumerClosed(): void;
}

/**
 * Creates the gateway's registry and instruments.
 *
 * | metric | type | labels |
 * |---|---|---|
 * | `flowgraph_gateway_requests_total` | counter | `operation_type` (query, mutation, subscription, unknown), `operation_name` (bounded), `outcome` (success, partial, error) |
 * | `flowgraph_gateway_request_duration_seconds` | histogram | `operation_type`, `outcome` |
 * | `flowgraph_gateway_subgraph_fetches_total` | counter | `subgraph`, `outcome` (ok, graphql_errors, failed) |
 * | `flowgraph_gateway_subgraph_fetch_errors_total` | counter | `subgraph`, `code` (SUBGRAPH_UNAVAILABLE, SUBGRAPH_TIMEOUT, SUBGRAPH_REQUEST_FAILED, …) |
 * | `flowgraph_gateway_subgraph_fetch_duration_seconds` | histogram | `subgraph` |
 * | `flowgraph_gateway_query_plan_cache_lookups_total` | counter | `result` (hit, miss) |
 * | `flowgraph_gateway_websocket_connections` | gauge | |
 * | `flowgraph_gateway_subscriptions` | gauge | |
 * | `flowgraph_gateway_shared_subscriptions` | gauge | |
 * | `flowgraph_gateway_upstream_sockets` | gauge | |
 * | `flowgraph_gateway_subscription_events_delivered_total` | counter | |
 * | `flowgraph_gateway_slow_consumer_closes_total` | counter | |
 * @throws RangeError for a bad `maxOperationNames`
 */
export function createGatewayMetrics(options: GatewayMetricsOptions = {}): GatewayMetrics {
  const enabled = options.enabled ?? true;
  const registry = createRegistry('gateway', options);
  const operationName = createOperationNameLabel(options.maxOperationNames ?? DEFAULT_MAX_OPERATION_NAMES);
  if (!enabled) {
    return {
      ...metricsEndpoint(registry, false),
      plugin: undefined,
      queryPlanCache: undefined,
      instrumentDataSource: (_name, source) => source,
      observe: () => {},
      eventDelivered: () => {},
      slowConsumerClosed: () => {},
    };
  }
  const registers = [registry];

  const requests = new Counter({
    name: 'flowgraph_gateway_requests_total',
    help: 'GraphQL requests the gateway answered (HTTP, and queries/mutations over websockets), by operation type, operation name (bounded: other past the limit, anonymous without a name) and outcome (success, partial: data and errors, error: no data)',
    labelNames: ['operation_type', 'operation_name', 'outcome'],
    registers,
  });
  const requestDuration = new Histogram({
    name: 'flowgraph_gateway_request_duration_seconds',
    help: 'Time from the start of a GraphQL request in Apollo Server to its response, in seconds, by operation type and outcome',
    labelNames: ['operation_type', 'outcome'],
    buckets: REQUEST_DURATION_BUCKETS,
    registers,
  });
  const fetches = new Counter({
    name: 'flowgraph_gateway_subgraph_fetches_total',
    help: 'Requests the gateway sent to a subgraph (query-plan fetches, schema loading), by outcome: ok, graphql_errors (the subgraph answered with errors), failed (unavailable, timed out, bad HTTP answer)',
    labelNames: ['subgraph', 'outcome'],
    registers,
  });
  const fetchErrors = new Counter({
    name: 'flowgraph_gateway_subgraph_fetch_errors_total',
    help: 'Subgraph requests that failed, by subgraph and error code (SUBGRAPH_UNAVAILABLE, SUBGRAPH_TIMEOUT, SUBGRAPH_REQUEST_FAILED; OTHER for anything else)',
    labelNames: ['subgraph', 'code'],
    registers,
  });
  const fetchDuration = new Histogram({
    name: 'flowgraph_gateway_subgraph_fetch_duration_seconds',
    help: 'Duration of one request to a subgraph, answer read, in seconds',
    labelNames: ['subgraph'],
    buckets: REQUEST_DURATION_BUCKETS,
    registers,
  });
  const planLookups = new Counter({
    name: 'flowgraph_gateway_query_plan_cache_lookups_total',
    help: 'Lookups of the query-plan cache by result: hit (the plan was cached), miss (the operation was planned)',
    labelNames: ['result'],
    registers,
  });
  planLookups.inc({ result: 'hit' }, 0);
  planLookups.inc({ result: 'miss' }, 0);
  // The fan-out's hot path (once per client and event) only adds to a number; the counter takes it at scrape time.
  let deliveredFrames = 0;
  let deliveredReported = 0;
  new Counter({
    name: 'flowgraph_gateway_subscription_events_delivered_total',
    help: 'Subscription event frames (next) sent to clients over websockets',
    registers,
    collect() {
      this.inc(deliveredFrames - deliveredReported);
      deliveredReported = deliveredFrames;
    },
  });
  const slowCloses = new Counter({
    name: 'flowgraph_gateway_slow_consumer_closes_total',
    help: 'Client websockets closed with 1013 because their send buffer was full (they resume from their cursor)',
    registers,
  });

  let websockets: WebsocketCounts | undefined;
  let subscriptions: SubscriptionCounts | undefined;
  const gauge = (name: string, help: string, read: () => number | undefined) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const value = read();
        if (value !== undefined) this.set(value);
      },
    });
  gauge('flowgraph_gateway_websocket_connections', 'Client websockets open now (initialised or not)', () => websockets?.connections);
  gauge('flowgraph_gateway_subscriptions', 'Client subscriptions open now over websockets', () => subscriptions?.clientSubscriptions);
  gauge(
    'flowgraph_gateway_shared_subscriptions',
    'Shared subscriptions open now: one upstream subscription each, shared by identical client subscriptions (clients per upstream: flowgraph_gateway_subscriptions / this)',
    () => subscriptions?.sharedSubscriptions,
  );
  gauge('flowgraph_gateway_upstream_sockets', 'Websockets from the gateway to subgraphs open now', () => subscriptions?.upstreamSockets);

  const planCache = new InMemoryLRUCache<QueryPlan>({ maxSize: QUERY_PLAN_CACHE_BYTES, sizeCalculation: (plan) => Buffer.byteLength(JSON.stringify(plan), 'utf8') });
  const queryPlanCache: QueryPlanCache = {
    async get(key) {
      const plan = await planCache.get(key);
      planLookups.inc({ result: plan === undefined ? 'miss' : 'hit' });
      return plan;
    },
    set: (key, value, setOptions) => planCache.set(key, value, setOptions),
    delete: (key) => planCache.delete(key),
    clear: () => planCache.clear(),
  };

  const plugin: ApolloServerPlugin<BaseContext> = {
    async requestDidStart() {
      const started = performance.now();
      return {
        async willSendResponse(requestContext) {
          const type = requestContext.operation?.operation ?? 'unknown';
          // A name counts only once an operation of the document was selected by it (parsed,
          // validated): names of requests that never ran would take the bounded label's slots.
          const name = requestContext.operation ? operationName(requestContext.operationName ?? requestContext.operation.name?.value) : OTHER_OPERATION;
          const body = requestContext.response.body;
          const result = body.kind === 'single' ? body.singleResult : body.initialResult;
          const hasErrors = (result.errors?.length ?? 0) > 0;
          const outcome = !hasErrors ? 'success' : result.data !== undefined && result.data !== null ? 'partial' : 'error';
          requests.inc({ operation_type: type, operation_name: name, outcome });
          requestDuration.observe({ operation_type: type, outcome }, (performance.now() - started) / 1000);
        },
      };
    },
  };

  return {
    ...metricsEndpoint(registry, true),
    plugin,
    queryPlanCache,
    instrumentDataSource(subgraph, source) {
      const process = source.process.bind(source);
      fetches.inc({ subgraph, outcome: 'ok' }, 0);
      source.process = async (processOptions: GraphQLDataSourceProcessOptions) => {
        const started = performance.now();
        let code: string | undefined;
        try {
          const response = await process(processOptions);
          const errors = response.errors ?? [];
          // The gateway's own failure codes (gateway/subgraphDataSource.ts) come back as field errors.
          code = errors.map((error) => error.extensions?.code).find((c): c is string => typeof c === 'string' && c.startsWith('SUBGRAPH_'));
          fetches.inc({ subgraph, outcome: code ? 'failed' : errors.length > 0 ? 'graphql_errors' : 'ok' });
          return response;
        } catch (error) {
          const thrown = (error as { extensions?: { code?: unknown } } | null)?.extensions?.code;
          code = typeof thrown === 'string' && thrown.startsWith('SUBGRAPH_') ? thrown : 'OTHER';
          fetches.inc({ subgraph, outcome: 'failed' });
          throw error;
        } finally {
          if (code) fetchErrors.inc({ subgraph, code: /^[A-Z_]{1,40}$/.test(code) ? code : 'OTHER' });
          fetchDuration.observe({ subgraph }, (performance.now() - started) / 1000);
        }
      };
      return source;
    },
    observe(ws, engine) {
      websockets = ws;
      subscriptions = engine;
    },
    eventDelivered: () => {
      deliveredFrames++;
    },
    slowConsumerClosed: () => slowCloses.inc(),
  };
}
