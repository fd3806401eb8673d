/**
 * `npm start` as a user runs it (through npm, with its embedded PostgreSQL in a private data
 * directory): `npm run db:migrate` and `npm run rebuild` work while it runs (they use its running
 * server instead of failing with DATA_DIR_IN_USE), and a SIGTERM sent to the npm process alone
 * (as `docker stop` or a process manager sends it) stops npm start and every process it started.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../eventstore/testing/fixture.ts';
import { testAuthEnv } from './support/auth.ts';
import { createGatewayClient } from './support/client.ts';
import { freePort, freeServicePorts, spawnNpm, waitForHealth, type FlowgraphProcess } from './support/process.ts';

/** Pids of every living descendant of `pid` (Linux /proc; field 4 of /proc/<pid>/stat is the parent). */
function descendants(pid: number): number[] {
  const parents = new Map<number, number>();
  for (const entry of readdirProc()) {
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parents.set(entry, Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // exited meanwhile
    }
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const parent = queue.shift()!;
    for (const [child, ppid] of parents) if (ppid === parent) { found.push(child); queue.push(child); }
  }
  return found;
}

function readdirProc(): number[] {
  return readdirSync('/proc').filter((name) => /^\d+$/.test(name)).map(Number);
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    // A zombie has exited; only its parent has not reaped it yet.
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('npm start with its embedded PostgreSQL', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let gatewayBase: string;
  let npmStart: FlowgraphProcess;
  const others: FlowgraphProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-npm-start-'));
    // The embedded server runs as the `postgres` OS user when the tests run as root.
    await chmod(dataDir, 0o755);
    const ports = await freeServicePorts();
    gatewayBase = ports.gatewayBase;
    env = { NODE_ENV: 'development', LOG_LEVEL: 'info', FLOWGRAPH_DATA_DIR: dataDir, FLOWGRAPH_EMBEDDED_PG_PORT: String(await freePort()), ...ports.env, ...testAuthEnv() };
    npmStart = spawnNpm('start', [], env);
    await waitForHealth(gatewayBase, npmStart, 150_000);
  }, 180_000);

  afterAll(async () => {
    for (const proc of [...others, npmStart]) await proc?.kill();
    // A killed start leaves its embedded server running (it has its own process group).
    const pid = Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0 && alive(pid)) process.kill(pid, 'SIGQUIT');
    await rm(dataDir, { recursive: true, force: true });
  });

  /** The pid of the flowgraph process npm runs (npm's only child, as the start script `exec`s node). */
  const flowgraphPid = () => descendants(npmStart.child.pid!).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('bin/start.ts');
    } catch {
      return false; // exited meanwhile
    }
  });

  it('npm run db:migrate while npm start runs migrates through its running embedded PostgreSQL', async () => {
    const migrate = spawnNpm('db:migrate', [], env);
    others.push(migrate);
    expect(await migrate.exited, migrate.output()).toEqual({ code: 0, signal: null });
    expect(migrate.output()).toContain(`using the embedded PostgreSQL that flowgraph process ${flowgraphPid()} runs`);
    expect(migrate.output()).toContain('all service databases are up to date');
    expect(migrate.output()).not.toContain('DATA_DIR_IN_USE');
    // npm start still owns and serves its database.
    const client = createGatewayClient(`${gatewayBase}/graphql`);
    await client.mustQuery(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { id: 'after-migrate', name: 'Still served', steps: [{ name: 'one', kind: 'EXTERNAL', timeoutMs: 60_000 }] } },
    );
    expect(await client.mustQuery('{ workflow(id: "after-migrate") { name } }')).toEqual({ workflow: { name: 'Still served' } });
  }, 120_000);

  it('npm run rebuild while npm start runs rebuilds through its running embedded PostgreSQL', async () => {
    const rebuild = spawnNpm('rebuild', ['--service', 'workflows', '--no-progress'], env);
    others.push(rebuild);
    expect(await rebuild.exited, rebuild.output()).toEqual({ code: 0, signal: null });
    expect(rebuild.output()).toContain('projection rebuilt');
    expect(rebuild.output()).not.toContain('DATA_DIR_IN_USE');
    const client = createGatewayClient(`${gatewayBase}/graphql`);
    expect(await client.mustQuery('{ workflow(id: "after-migrate") { name } }')).toEqual({ workflow: { name: 'Still served' } });
  }, 120_000);

  it('SIGTERM to the npm process alone stops npm start and every process it started', async () => {
    const started = descendants(npmStart.child.pid!);
    // npm's flowgraph process, and the embedded PostgreSQL it started.
    expect(started.length).toBeGreaterThanOrEqual(2);
    const postmaster = Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8')).split('\n')[0]);
    expect(started).toContain(postmaster);

    process.kill(npmStart.child.pid!, 'SIGTERM');
    expect(await npmStart.exited, npmStart.output()).toEqual({ code: 0, signal: null });
    // README, "Commands": a clean shutdown ends within the embedded server's 30 s stop escalation
    // plus the 5 s exit grace; npm itself waits for its child, so most are gone already.
    await eventually(() => started.every((pid) => !alive(pid)), 40_000, `every process npm start started to exit (${started.filter(alive).join(', ')})`);
    expect(npmStart.output()).toContain('"msg":"stopped"');
  }, 60_000);
});
