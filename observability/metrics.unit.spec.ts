/**
 * The metrics switch (`FLOWGRAPH_METRICS`), the bound on operation-name labels, and what the
 * endpoint serves on and off — no database needed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../config/env.ts';
import { parseMetricsConfig } from '../config/metricsConfig.ts';
import { NOOP_EVENT_STORE_METRICS } from '../eventstore/metrics.ts';
import { createGatewayMetrics } from './gatewayMetrics.ts';
import type { MetricsEndpoint } from './metrics.ts';
import { ANONYMOUS_OPERATION, createOperationNameLabel, OTHER_OPERATION } from './operationName.ts';
import { createServiceMetrics } from './serviceMetrics.ts';
import { parseExposition } from './testing/scrape.ts';

describe('FLOWGRAPH_METRICS', () => {
  it('is on when unset or empty', () => {
    expect(parseMetricsConfig({})).toEqual({ enabled: true });
    expect(parseMetricsConfig({ FLOWGRAPH_METRICS: '' })).toEqual({ enabled: true });
  });

  it.each([
    ['on', true],
    ['ON', true],
    [' true ', true],
    ['1', true],
    ['off', false],
    ['Off', false],
    ['false', false],
    ['0', false],
  ])('reads %j as enabled=%s', (value, enabled) => {
    expect(parseMetricsConfig({ FLOWGRAPH_METRICS: value })).toEqual({ enabled });
  });

  it.each(['yes', 'disabled', '2', 'of'])('refuses %j with a ConfigError naming the variable and what it expects', (value) => {
    expect(() => parseMetricsConfig({ FLOWGRAPH_METRICS: value })).toThrow(ConfigError);
    expect(() => parseMetricsConfig({ FLOWGRAPH_METRICS: value })).toThrow(
      new RegExp(`FLOWGRAPH_METRICS: expected on or off \\(or true/false, 1/0\\) \\(got "${value}"\\)`),
    );
  });
});

describe('the operation_name label', () => {
  it('keeps GraphQL names and calls a missing one anonymous', () => {
    const label = createOperationNameLabel(10);
    expect(label('StartRun')).toBe('StartRun');
    expect(label('_private_2')).toBe('_private_2');
    expect(label(undefined)).toBe(ANONYMOUS_OPERATION);
    expect(label(null)).toBe(ANONYMOUS_OPERATION);
    expect(label('')).toBe(ANONYMOUS_OPERATION);
  });

  it.each([
    ['a quote and a brace', 'x"} 1\nevil_total 999'],
    ['a newline', 'Start\nRun'],
    ['a space', 'Start Run'],
    ['a leading digit', '1Start'],
    ['non-ASCII letters', 'Démarrer'],
    ['65 characters', `A${'b'.repeat(64)}`],
    ['a megabyte', 'A'.repeat(1 << 20)],
  ])('turns a name with %s into other', (_what, name) => {
    expect(createOperationNameLabel(10)(name)).toBe(OTHER_OPERATION);
  });

  it('keeps the first maxNames distinct names, then answers other for new ones and still the kept ones for those', () => {
    const label = createOperationNameLabel(3);
    expect(['A', 'B', 'A', 'C'].map(label)).toEqual(['A', 'B', 'A', 'C']);
    expect(label('D')).toBe(OTHER_OPERATION);
    expect(label('B')).toBe('B');
    const distinct = new Set(Array.from({ length: 1000 }, (_, i) => label(`Op${i}`)));
    expect([...distinct].sort()).toEqual([OTHER_OPERATION]);
  });

  it('refuses a bound that is not an integer from 0 to 10000', () => {
    expect(() => createOperationNameLabel(-1)).toThrow(RangeError);
    expect(() => createOperationNameLabel(1.5)).toThrow(/maxNames must be an integer from 0 to 10000, got 1.5/);
    expect(() => createOperationNameLabel(10_001)).toThrow(RangeError);
    expect(createOperationNameLabel(0)('A')).toBe(OTHER_OPERATION);
  });
});

describe('the endpoint', () => {
  const servers: http.Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  });
  async function serve(endpoint: MetricsEndpoint): Promise<string> {
    const server = http.createServer((req, res) => void endpoint.handle(req, res));
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  }

  it('when off: no-op instruments, no plugin, no plan cache, and /metrics is 404', async () => {
    const gateway = createGatewayMetrics({ enabled: false, processMetrics: true });
    expect(gateway.plugin).toBeUndefined();
    expect(gateway.queryPlanCache).toBeUndefined();
    const source = { process: async () => ({}) };
    const original = source.process;
    expect(gateway.instrumentDataSource('workflows', source).process).toBe(original);
    expect((await gateway.registry.metrics()).trim()).toBe('');
    const response = await fetch(await serve(gateway));
    expect(response.status).toBe(404);
    expect(await response.text()).toMatch(/FLOWGRAPH_METRICS=off/);

    const service = createServiceMetrics({ enabled: false, service: 'workflows', pool: {} as pg.Pool });
    expect(service.store).toBe(NOOP_EVENT_STORE_METRICS);
    expect((await fetch(await serve(service))).status).toBe(404);
  });

  it('when on: 200 in the text format with the registry content type, every series labelled with its service; HEAD has no body, POST is 405', async () => {
    const gateway = createGatewayMetrics({ processMetrics: true });
    const url = await serve(gateway);
    const response = await fetch(url);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe(gateway.registry.contentType);
    const parsed = parseExposition(await response.text());
    expect(parsed.value('flowgraph_gateway_query_plan_cache_lookups_total', { result: 'hit', service: 'gateway' })).toBe(0);
    expect(parsed.all('process_cpu_user_seconds_total', { service: 'gateway' })).toHaveLength(1);
    expect(parsed.samples.every((sample) => sample.labels.service === 'gateway')).toBe(true);
    for (const [name, help] of parsed.help) expect(help.length, `help of ${name}`).toBeGreaterThan(10);

    const head = await fetch(url, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe('');
    const post = await fetch(url, { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('leaves the process metrics out unless asked for (one registry per process has them)', async () => {
    const gateway = createGatewayMetrics();
    expect(parseExposition(await gateway.registry.metrics()).all('process_cpu_user_seconds_total')).toEqual([]);
  });
});
