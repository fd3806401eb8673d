/**
 * Two `npm start` on one data directory: the second refuses to start (its embedded PostgreSQL
 * would share the first one's cluster) and exits non-zero, naming the process that holds the
 * directory; the first keeps its server and keeps serving.
 */
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testAuthEnv } from './support/auth.ts';
import { createGatewayClient } from './support/client.ts';
import { freePort, freeServicePorts, spawnFlowgraph, waitForHealth, type FlowgraphProcess } from './support/process.ts';

describe('a second npm start on the same data directory', () => {
  let dataDir: string;
  const processes: FlowgraphProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-in-use-'));
    // The embedded server runs as the `postgres` OS user when the tests run as root.
    await chmod(dataDir, 0o755);
  });

  afterAll(async () => {
    for (const proc of processes) await proc.kill();
    // A killed start leaves its embedded server running (it has its own process group).
    const pid = Number((await readFile(path.join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('exits non-zero with DATA_DIR_IN_USE while the first keeps serving', async () => {
    const envOf = async () => {
      const ports = await freeServicePorts();
      const env = { NODE_ENV: 'development', FLOWGRAPH_DATA_DIR: dataDir, FLOWGRAPH_EMBEDDED_PG_PORT: String(await freePort()), ...ports.env, ...testAuthEnv() };
      return { env, gatewayBase: ports.gatewayBase };
    };
    const a = await envOf();
    const first = spawnFlowgraph('start.ts', [], a.env);
    processes.push(first);
    await waitForHealth(a.gatewayBase, first, 120_000);

    // Same data directory, every port different (the same ports would fail on the ports first).
    const b = await envOf();
    const second = spawnFlowgraph('start.ts', [], b.env);
    processes.push(second);
    const exit = await second.exited;
    expect(exit.code, second.output()).not.toBe(0);
    expect(second.output()).toContain('DATA_DIR_IN_USE');
    expect(second.output()).toContain(`is in use by flowgraph process ${first.child.pid}`);
    expect(second.output()).not.toContain('orphaned embedded PostgreSQL');

    // The first still has its database.
    expect(first.child.exitCode).toBeNull();
    const client = createGatewayClient(`${a.gatewayBase}/graphql`);
    await client.mustQuery(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { id: 'after-second-start', name: 'Still here', steps: [{ name: 'one', kind: 'EXTERNAL', timeoutMs: 60_000 }] } },
    );
    expect(await client.mustQuery('{ workflow(id: "after-second-start") { name } }')).toEqual({ workflow: { name: 'Still here' } });
    expect(await first.stop(), first.output()).toEqual({ code: 0, signal: null });
  }, 180_000);
});
