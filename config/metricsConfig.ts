/**
 * `FLOWGRAPH_METRICS`: whether the process records Prometheus metrics and serves `/metrics`
 * (observability/metrics.ts). `off` gives no-op instruments and a 404 on `/metrics`, so a
 * benchmark can compare a run with metrics against one without in the same build.
 */
import { z } from 'zod';
import { parseEnv } from './env.ts';

/** Settings of the metrics of a process. */
export interface MetricsConfig {
  /** `FLOWGRAPH_METRICS`: `on` (default) or `off` (also `true`/`false`, `1`/`0`; any case). */
  enabled: boolean;
}

const ON = new Set(['on', 'true', '1']);
const OFF = new Set(['off', 'false', '0']);

const metricsVar = z.preprocess(
  (value) => (value === '' || value === undefined ? 'on' : typeof value === 'string' ? value.trim().toLowerCase() : value),
  z.string().refine((value) => ON.has(value) || OFF.has(value), 'expected on or off (or true/false, 1/0)'),
);

/**
 * Reads `FLOWGRAPH_METRICS` (unset or empty: on).
 * @throws ConfigError naming FLOWGRAPH_METRICS and the value when it is neither on nor off
 */
export function parseMetricsConfig(env: NodeJS.ProcessEnv): MetricsConfig {
  const v = parseEnv(env, { FLOWGRAPH_METRICS: metricsVar });
  return { enabled: ON.has(v.FLOWGRAPH_METRICS) };
}
