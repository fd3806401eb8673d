/**
 * docker-compose.yml is for users (no Docker engine runs here): it is validated offline. Every
 * service it references exists, every service's URL variable is set and points at a service
 * of the file, each subgraph has its own PostgreSQL, and Debian's docker-compose accepts it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SERVICES } from '../config/services.ts';
import { generateAuthSecretsEnv } from '../config/authSecrets.ts';
import { readSupergraph } from '../gateway/supergraph.ts';
import { createGatewayMetrics } from '../observability/gatewayMetrics.ts';
import { createServiceMetrics } from '../observability/serviceMetrics.ts';

const file = fileURLToPath(new URL('../docker-compose.yml', import.meta.url));
interface ComposeService {
  image?: string;
  build?: unknown;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test: string[] };
  volumes?: string[];
  ports?: string[];
}
const compose = parse(readFileSync(file, 'utf8'), { merge: true }) as { services: Record<string, ComposeService>; volumes: Record<string, unknown> };
const services = compose.services;

/** `${NAME:-default}` (or `${NAME-default}`) → default, as docker-compose substitutes it with NAME unset. */
const substitute = (value: string) => value.replace(/\$\{[A-Z_]+:?-([^}]*)\}/g, '$1');
/** Services whose images have no shell or HTTP client for a health check (docker-compose.yml says so). */
const UNPROBED = new Set(['otel-collector', 'jaeger']);
const deployFile = (relative: string) => fileURLToPath(new URL(`../deploy/${relative}`, import.meta.url));
/** Every service the gateway and the subgraphs run as: `[compose service, port]`. */
const FLOWGRAPH_TARGETS: Array<[string, number]> = [['gateway', 4000], ...SERVICES.map((s) => [s.name, s.defaultPort] as [string, number])];

describe('docker-compose.yml', () => {
  it('references only services and volumes it defines, and every service has a health check', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect(services, `${name} depends on ${dependency}`).toHaveProperty(dependency);
        // Healthy where the dependency can be probed; started for the images without a probe.
        expect(service.depends_on![dependency]!.condition).toBe(UNPROBED.has(dependency) ? 'service_started' : 'service_healthy');
      }
      for (const volume of service.volumes ?? []) {
        const source = substitute(volume).split(':')[0]!;
        // A bind mount (a host path, e.g. the corpus) is not a named volume.
        if (/^[./]/.test(source)) continue;
        expect(compose.volumes, `${name} mounts volume ${source}`).toHaveProperty(source);
      }
      if (UNPROBED.has(name)) expect(service.healthcheck, `${name} has no shell to probe with`).toBeUndefined();
      else expect(service.healthcheck?.test.length, `${name} has a health check`).toBeGreaterThan(0);
    }
  });

  it.each(SERVICES.map((s) => [s.name, s] as const))('runs %s alone with its own PostgreSQL, its database URL and NATS', (name, definition) => {
    const service = services[name];
    expect(service, `service ${name}`).toBeDefined();
    // The image's built tree, run by node itself (test/production-build.e2e.spec.ts runs it).
    expect(service!.command).toEqual(['node', 'bin/start-service.js', name]);
    const env = service!.environment!;
    expect(env[`${definition.envPrefix}_PORT`]).toBe(String(definition.defaultPort));
    const url = new URL(substitute(env[`${definition.envPrefix}_DATABASE_URL`] ?? ''));
    const database = services[url.hostname];
    expect(database, `database host ${url.hostname}`).toBeDefined();
    expect(database!.image).toMatch(/^postgres:/);
    expect(database!.environment).toMatchObject({ POSTGRES_USER: url.username, POSTGRES_DB: url.pathname.slice(1) });
    expect(substitute(database!.environment!.POSTGRES_PASSWORD!)).toBe(decodeURIComponent(url.password));
    expect(url.pathname).toBe(`/flowgraph_${name}`);
    expect(Object.keys(service!.depends_on ?? {})).toEqual(expect.arrayContaining([url.hostname, 'nats']));
    expect(new URL(env.NATS_URL!).hostname).toBe('nats');
    expect(service!.healthcheck!.test.join(' ')).toContain(`:${definition.defaultPort}/health/ready`);
  });

  it('gives each service a database server of its own', () => {
    const hosts = SERVICES.map((s) => new URL(substitute(services[s.name]!.environment![`${s.envPrefix}_DATABASE_URL`]!)).hostname);
    expect(new Set(hosts).size).toBe(SERVICES.length);
  });

  it('points the gateway at every subgraph of the supergraph', async () => {
    const { subgraphs } = await readSupergraph(fileURLToPath(new URL('../supergraph.graphql', import.meta.url)));
    const gateway = services.gateway!;
    expect(gateway.command).toEqual(['node', 'bin/start-service.js', 'gateway']);
    for (const { name } of subgraphs) {
      const value = gateway.environment![`${name.toUpperCase()}_URL`];
      expect(value, `${name.toUpperCase()}_URL`).toBeDefined();
      const url = new URL(value!);
      expect(services, `gateway's ${name} host`).toHaveProperty(url.hostname);
      const definition = SERVICES.find((s) => s.name === url.hostname)!;
      expect(url.port).toBe(String(definition.defaultPort));
      expect(gateway.depends_on).toHaveProperty(url.hostname);
    }
    expect(gateway.ports).toContain('4000:4000');
  });

  it('mounts the corpus where the image looks corpusFile names up (FLOWGRAPH_CORPUS_DIR of the Dockerfile)', () => {
    const dockerfile = readFileSync(fileURLToPath(new URL('../Dockerfile', import.meta.url)), 'utf8');
    const corpusDir = /FLOWGRAPH_CORPUS_DIR=(\S+)/.exec(dockerfile)?.[1];
    expect(corpusDir).toBe('/app/corpus');
    const mount = (services.content!.volumes ?? []).map(substitute).find((v) => v.split(':')[1] === corpusDir);
    expect(mount, 'content mounts the corpus').toBeDefined();
    expect(mount!.split(':')[0]).toBe('../shared/corpus');
  });

  describe('observability', () => {
    it('probes readiness (/health/ready) of the gateway and every subgraph', () => {
      for (const [name, port] of FLOWGRAPH_TARGETS) expect(services[name]!.healthcheck!.test.join(' '), name).toContain(`http://127.0.0.1:${port}/health/ready`);
    });

    it('Prometheus scrapes /metrics of the gateway and every subgraph at their compose host and port', () => {
      const prometheus = services.prometheus!;
      expect(prometheus.volumes).toContain('./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro');
      const config = parse(readFileSync(deployFile('prometheus/prometheus.yml'), 'utf8')) as {
        scrape_configs: Array<{ job_name: string; metrics_path?: string; static_configs: Array<{ targets: string[]; labels?: Record<string, string> }> }>;
      };
      const job = config.scrape_configs.find((j) => j.job_name === 'flowgraph')!;
      expect(job.metrics_path).toBe('/metrics');
      const targets = job.static_configs.flatMap((c) => c.targets);
      expect(targets.sort()).toEqual(FLOWGRAPH_TARGETS.map(([name, port]) => `${name}:${port}`).sort());
      // The series carry their own `service` label: a target label of that name would rename it to exported_service.
      for (const c of job.static_configs) expect(c.labels?.service).toBeUndefined();
      for (const name of ['prometheus', 'jaeger', 'grafana']) {
        for (const port of services[name]!.ports ?? []) expect(port, `${name} publishes on the host's loopback only`).toMatch(/^127\.0\.0\.1:/);
      }
    });

    it('every flowgraph process exports traces to the collector, which forwards them to Jaeger', () => {
      for (const [name] of FLOWGRAPH_TARGETS) {
        const env = services[name]!.environment!;
        const endpoint = new URL(substitute(env.OTEL_EXPORTER_OTLP_ENDPOINT!));
        expect(endpoint.hostname, name).toBe('otel-collector');
        expect(endpoint.port, name).toBe('4318');
        expect(env.OTEL_SERVICE_NAME, name).toBe(`flowgraph-${name}`);
      }
      const collector = parse(readFileSync(deployFile('otel-collector/config.yaml'), 'utf8')) as {
        receivers: { otlp: { protocols: { http: { endpoint: string } } } };
        exporters: Record<string, { endpoint: string }>;
        service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } };
      };
      expect(collector.receivers.otlp.protocols.http.endpoint).toBe('0.0.0.0:4318');
      const [exporter] = collector.service.pipelines.traces.exporters;
      expect(new URL(`http://${collector.exporters[exporter!]!.endpoint}`).hostname).toBe('jaeger');
      expect(services.jaeger!.environment!.COLLECTOR_OTLP_ENABLED).toBe('true');
    });

    it("Grafana is provisioned with Prometheus, Jaeger and the checked-in dashboard, whose every query names a metric flowgraph defines", () => {
      const grafana = services.grafana!;
      expect(grafana.volumes).toEqual(expect.arrayContaining(['./deploy/grafana/provisioning:/etc/grafana/provisioning:ro', './deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro']));
      const sources = parse(readFileSync(deployFile('grafana/provisioning/datasources/datasources.yaml'), 'utf8')) as { datasources: Array<{ uid: string; url: string }> };
      expect(sources.datasources.map((d) => [d.uid, new URL(d.url).hostname])).toEqual([['prometheus', 'prometheus'], ['jaeger', 'jaeger']]);
      const provider = parse(readFileSync(deployFile('grafana/provisioning/dashboards/dashboards.yaml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
      expect(provider.providers[0]!.options.path).toBe('/var/lib/grafana/dashboards');

      const dashboard = JSON.parse(readFileSync(deployFile('grafana/dashboards/flowgraph.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string; datasource: { uid: string } }> }> };
      // Every metric flowgraph registers: the gateway's and a service's registries (metric objects, nothing collected).
      const pool = new pg.Pool({ max: 1 }); // never connected: getMetricsAsArray reads definitions only
      const defined = new Set(
        [...createGatewayMetrics().registry.getMetricsAsArray(), ...createServiceMetrics({ service: 'workflows', pool }).registry.getMetricsAsArray()].map((m) => m.name as string),
      );
      void pool.end();
      expect(defined.size).toBeGreaterThan(10);
      const titles = dashboard.panels.map((p) => p.title).join('\n');
      for (const topic of [/subgraph fetch/i, /latency/i, /subscriptions/i, /lag/i, /NATS consumer/i]) expect(titles).toMatch(topic);
      for (const panel of dashboard.panels) {
        expect(panel.targets.length, panel.title).toBeGreaterThan(0);
        for (const target of panel.targets) {
          expect(target.datasource.uid).toBe('prometheus');
          const metrics = [...target.expr.matchAll(/\b(flowgraph_\w+?)(?:_bucket|_count|_sum)?\b(?=[[{(\s)]|$)/g)].map((m) => m[1]!);
          expect(metrics.length, `${panel.title}: ${target.expr}`).toBeGreaterThan(0);
          for (const metric of metrics) expect(defined.has(metric) ? metric : `undefined metric ${metric}`, panel.title).toBe(metric);
        }
      }
    });
  });

  const hasDockerCompose = spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0;
  // In CI (.ci/run installs Debian's docker-compose) this always runs.
  it.runIf(hasDockerCompose || process.env.CI === 'true')('is accepted by `docker-compose config -q` with the credentials of `npm run keys` (offline, no engine needed)', () => {
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, ...generateAuthSecretsEnv() };
    expect(() => execFileSync('docker-compose', ['-f', file, 'config', '-q'], { stdio: 'pipe', env })).not.toThrow();
  });

  it.runIf(hasDockerCompose || process.env.CI === 'true')('refuses to run without credentials, naming `npm run keys`', () => {
    const result = spawnSync('docker-compose', ['-f', file, 'config', '-q'], { env: { PATH: process.env.PATH, HOME: process.env.HOME }, encoding: 'utf8' });
    expect(result.status).not.toBe(0);
    expect(result.stderr).toMatch(/npm run keys/);
  });
});
