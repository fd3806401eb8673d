/**
 * The Docker image's way of running flowgraph, checked without a Docker engine: `npm run build`
 * (bin/build.mjs) produces the files the Dockerfile's CMD and every docker-compose.yml command
 * name, and that tree, installed as the image installs it (`npm ci --omit=dev`: no tsx, no
 * TypeScript loader), runs those exact commands with plain `node` against the machine's
 * PostgreSQL and NATS.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SERVICES } from '../config/services.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { testAuthEnv, testToken } from './support/auth.ts';
import { freePort, ROOT, spawnCommand, waitForHealth, waitForOutput, type FlowgraphProcess } from './support/process.ts';

/** The instructions of the Dockerfile's last stage (the image), continuation lines joined. */
function imageStage(): string[] {
  const lines = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const from = lines.map((l, i) => (/^FROM\s/i.test(l) ? i : -1)).filter((i) => i >= 0).at(-1)!;
  return lines.slice(from);
}
/** The JSON (exec) form of instruction `name` in `stage`, e.g. CMD ["node", "bin/x.js"]. */
const execForm = (stage: string[], name: string) => {
  const line = stage.find((l) => l.toUpperCase().startsWith(`${name} `));
  return line === undefined ? undefined : (JSON.parse(line.slice(name.length + 1)) as string[]);
};
const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { build?: unknown; command?: string[] }>;
};
/** docker-compose.yml's command for each service built from this repository's image. */
const composeCommands = Object.fromEntries(Object.entries(compose.services).filter(([, s]) => s.build !== undefined).map(([name, s]) => [name, s.command!]));

async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules') continue;
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push(p);
  }
  return out;
}

describe('the production build the Docker image runs', () => {
  let work: string;
  let app: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-build-'));
    app = path.join(work, 'app');
    const build = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'build.mjs'), app], { cwd: ROOT, encoding: 'utf8' });
    expect(build.status, `${build.stdout}${build.stderr}`).toBe(0);
  }, 120_000);

  afterAll(async () => {
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('the Dockerfile CMD and every docker-compose command run, with plain node, files the build produces', async () => {
    const stage = imageStage();
    const cmd = execForm(stage, 'CMD');
    expect(cmd).toEqual(['node', 'bin/start-service.js', 'gateway']);
    const entrypoint = execForm(stage, 'ENTRYPOINT');
    expect(entrypoint === undefined || entrypoint[0] === 'node').toBe(true);
    expect(stage.join('\n')).toMatch(/npm ci --omit=dev/);
    expect(stage.join('\n')).not.toMatch(/\btsx\b/);
    expect(existsSync(path.join(app, cmd![1]!))).toBe(true);

    expect(Object.keys(composeCommands).sort()).toEqual(['gateway', ...SERVICES.map((s) => s.name)].sort());
    for (const [name, command] of Object.entries(composeCommands)) {
      expect(command, name).toEqual(['node', 'bin/start-service.js', name]);
      expect(existsSync(path.join(app, command[1]!)), `${name}: ${command[1]} in the build`).toBe(true);
    }
    // Nothing left for a TypeScript loader: every module is JavaScript, tests are left out.
    const files = await filesUnder(app);
    expect(files.filter((f) => f.endsWith('.ts'))).toEqual([]);
    expect(files).toContain(path.join(app, 'supergraph.graphql'));
    expect(files).toContain(path.join(app, 'subgraphs', 'workflows', 'schema.graphql'));
    expect(files.some((f) => f.includes(`${path.sep}migrations${path.sep}`) && f.endsWith('migration.sql'))).toBe(true);
  });

  describe('installed with npm ci --omit=dev', () => {
    let db: TestDatabase;
    const procs: FlowgraphProcess[] = [];

    beforeAll(async () => {
      const install = spawnCommand('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], {}, app);
      procs.push(install);
      expect(await install.exited, install.output()).toEqual({ code: 0, signal: null });
      db = await createTestDatabase('prodbuild_workflows');
    }, 600_000);

    afterAll(async () => {
      for (const proc of procs) await proc.kill();
      await db?.drop();
    });

    it('has no dev tool: tsx, typescript loaders and vitest are not installed', () => {
      expect(existsSync(path.join(app, 'node_modules', 'tsx'))).toBe(false);
      expect(existsSync(path.join(app, 'node_modules', 'vitest'))).toBe(false);
      expect(existsSync(path.join(app, 'node_modules', 'pg'))).toBe(true);
    });

    it("runs the compose file's workflows and gateway commands with plain node: /health and a query answer through the gateway", async () => {
      const workflowsPort = await freePort();
      const gatewayPort = await freePort();
      const common = { NODE_ENV: 'production', HOST: '127.0.0.1', LOG_LEVEL: 'warn' };
      const [command, ...args] = composeCommands.workflows!;
      const workflows = spawnCommand(command!, args, {
        ...common,
        NATS_URL: process.env.NATS_URL ?? 'nats://127.0.0.1:4222',
        NATS_NAMESPACE: `prodbuild${randomBytes(4).toString('hex')}`,
        FLOWGRAPH_CURSOR_SECRET: randomBytes(32).toString('base64'),
        WORKFLOWS_PORT: String(workflowsPort),
        WORKFLOWS_DATABASE_URL: db.url,
        ...testAuthEnv(),
      }, app);
      procs.push(workflows);
      await waitForOutput(workflows, 'flowgraph workflows subgraph ready at', 120_000);
      await waitForHealth(`http://127.0.0.1:${workflowsPort}`, workflows);

      const [gatewayCommand, ...gatewayArgs] = composeCommands.gateway!;
      const gateway = spawnCommand(gatewayCommand!, gatewayArgs, {
        ...common,
        GATEWAY_PORT: String(gatewayPort),
        WORKFLOWS_URL: `http://127.0.0.1:${workflowsPort}/graphql`,
        ...testAuthEnv(),
      }, app);
      procs.push(gateway);
      // Not ready (of its four subgraphs only workflows runs here), and live as soon as it listens,
      // before its supergraph is loaded: its ready line says it serves.
      await waitForOutput(gateway, 'flowgraph gateway ready at', 90_000);
      expect((await fetch(`http://127.0.0.1:${gatewayPort}/health/live`)).status).toBe(200);
      const response = await fetch(`http://127.0.0.1:${gatewayPort}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${await testToken()}` },
        body: JSON.stringify({ query: '{ workflows { id } }' }),
      });
      expect(await response.json()).toEqual({ data: { workflows: [] } });

      expect(await gateway.stop(), gateway.output()).toEqual({ code: 0, signal: null });
      expect(await workflows.stop(), workflows.output()).toEqual({ code: 0, signal: null });
    }, 180_000);

    it("runs the knowledge extraction worker thread without tsx (the sources' bootstrap registers it)", () => {
      const script = `
        const { Worker } = require('node:worker_threads');
        const w = new Worker(require('node:path').resolve('subgraphs/knowledge/extraction/extractWorker.mjs'));
        w.postMessage({ id: 7, chunks: [{ chunkIndex: 0, text: 'Dr. Jekyll walked to London with Mr. Utterson.' }] });
        w.once('message', (m) => { console.log(JSON.stringify(m)); w.terminate(); });
        w.once('error', (e) => { console.error(e.message); process.exit(1); });`;
      const r = spawnSync(process.execPath, ['-e', script], { cwd: app, encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ id: 7, result: { chunks: [{ chunkIndex: 0 }] } });
    });
  });
});
