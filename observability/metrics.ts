/**
 * Prometheus metrics (prom-client), the part shared by the gateway's (`gatewayMetrics.ts`) and
 * every subgraph service's (`serviceMetrics.ts`): one `Registry` per running instance, never
 * prom-client's global default one, because `npm start` runs the gateway and the four services
 * in one process and each serves its own `/metrics` on its own port (the same metric names with
 * different values would collide in one registry).
 *
 * Process metrics (`process_*`, `nodejs_*`: CPU, memory, event-loop lag, GC) describe the whole
 * process, so they are collected once per process, into the registry whose options say
 * `processMetrics: true`: the composition roots choose it (`npm start`: the gateway's; a part run
 * alone by `npm run start:service`: that part's).
 *
 * `/metrics` is not authenticated (like `/health`): operators must not expose it publicly, only
 * to their Prometheus (a private network, or a reverse proxy that does not route it).
 */
import type http from 'node:http';
import { collectDefaultMetrics, Registry } from 'prom-client';

/** Path of the metrics endpoint on the gateway's and each subgraph's HTTP port. */
export const METRICS_PATH = '/metrics';

/** Options of a metrics registry (`createGatewayMetrics`, `createServiceMetrics`). */
export interface MetricsOptions {
  /**
   * Record metrics and serve `/metrics`; `false` (`FLOWGRAPH_METRICS=off`): every instrument is a
   * no-op and `/metrics` answers 404.
   * @default true
   */
  enabled?: boolean;
  /**
   * Also collect prom-client's default process metrics into this registry: give it to one
   * registry per process only.
   * @default false
   */
  processMetrics?: boolean;
}

/** What serves `/metrics`. */
export interface MetricsEndpoint {
  /** False when metrics are off: instruments are no-ops and `/metrics` is 404. */
  readonly enabled: boolean;
  /** The instance's registry (empty when metrics are off). */
  readonly registry: Registry;
  /**
   * Answers a request for `/metrics`: `GET`/`HEAD` get 200 with the text exposition format
   * (`registry.contentType`, i.e. `text/plain; version=0.0.4`), other methods 405; when metrics
   * are off, 404. A failing collection is 500 (its message only).
   */
  handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void>;
}

/**
 * Creates a registry whose series all carry `service="<service>"` (the gateway is `gateway`), with
 * the process metrics when asked for.
 */
export function createRegistry(service: string, options: MetricsOptions): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ service });
  if ((options.enabled ?? true) && options.processMetrics) collectDefaultMetrics({ register: registry });
  return registry;
}

/** The `MetricsEndpoint` of `registry` (see `MetricsEndpoint.handle`). */
export function metricsEndpoint(registry: Registry, enabled: boolean): MetricsEndpoint {
  return {
    enabled,
    registry,
    async handle(req, res) {
      if (!enabled) return sendText(res, 404, 'Metrics are off (FLOWGRAPH_METRICS=off)\n');
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.setHeader('allow', 'GET, HEAD');
        return sendText(res, 405, `${req.method} ${METRICS_PATH}: use GET\n`);
      }
      let body: string;
      try {
        body = await registry.metrics();
      } catch (error) {
        return sendText(res, 500, `Metrics collection failed: ${(error as Error).message}\n`);
      }
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : body);
    },
  };
}

function sendText(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(text);
}

/** Bucket bounds of request-sized durations, in seconds: 5 ms to 30 s. */
export const REQUEST_DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** Bucket bounds of single database statements, in seconds: 0.5 ms to 2.5 s. */
export const STATEMENT_DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
