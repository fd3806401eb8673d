/**
 * docker-compose.yml is for users (no Docker engine runs here): it is validated offline. Every
 * service it references exists, every service's URL variable is set and points at a service
 * of the file, each subgraph has its own PostgreSQL, and Debian's docker-compose accepts it.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SERVICES } from '../config/services.ts';
import { generateAuthSecretsEnv } from '../config/authSecrets.ts';
import { readSupergraph } from '../gateway/supergraph.ts';

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

/** `${NAME:-default}` → default, as docker-compose substitutes it with NAME unset. */
const substitute = (value: string) => value.replace(/\$\{[A-Z_]+:-([^}]*)\}/g, '$1');

describe('docker-compose.yml', () => {
  it('references only services and volumes it defines, and every service has a health check', () => {
    for (const [name, service] of Object.entries(services)) {
      for (const dependency of Object.keys(service.depends_on ?? {})) {
        expect(services, `${name} depends on ${dependency}`).toHaveProperty(dependency);
        expect(service.depends_on![dependency]!.condition).toBe('service_healthy');
      }
      for (const volume of service.volumes ?? []) {
        const source = substitute(volume).split(':')[0]!;
        // A bind mount (a host path, e.g. the corpus) is not a named volume.
        if (/^[./]/.test(source)) continue;
        expect(compose.volumes, `${name} mounts volume ${source}`).toHaveProperty(source);
      }
      expect(service.healthcheck?.test.length, `${name} has a health check`).toBeGreaterThan(0);
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
    expect(service!.healthcheck!.test.join(' ')).toContain(`:${definition.defaultPort}/health`);
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
