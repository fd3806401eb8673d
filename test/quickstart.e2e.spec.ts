/**
 * The README quick start: `npm start` with no database configured starts an embedded
 * PostgreSQL, provisions the workflows database and role, migrates it, and serves the gateway;
 * a second start reuses the same data (nothing re-provisioned, nothing lost). Nothing of auth is
 * configured either: the client presents the development operator token `npm start` prints,
 * and the one printed by the first start still works after the restart (the development secret
 * is kept in the data directory).
 */
import { chmod, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGatewayClient } from './support/client.ts';
import { freePort, freeServicePorts, spawnFlowgraph, waitForHealth, waitForOutput, type FlowgraphProcess } from './support/process.ts';

/** The development operator token `npm start` prints on the line after its announcement. */
async function printedToken(proc: FlowgraphProcess): Promise<string> {
  await waitForOutput(proc, 'development operator token');
  const pattern = /development operator token[^\n]*\n([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)\n/;
  for (const deadline = Date.now() + 10_000; Date.now() < deadline; await new Promise((resolve) => setTimeout(resolve, 100))) {
    const token = pattern.exec(proc.output())?.[1];
    if (token) return token;
  }
  throw new Error(`no token after "development operator token":\n${proc.output()}`);
}

describe('npm start with nothing configured (embedded PostgreSQL)', () => {
  let dataDir: string;
  let env: Record<string, string>;
  let gatewayBase: string;
  /** The token the first start printed. */
  let firstToken: string;
  const processes: FlowgraphProcess[] = [];

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-quickstart-'));
    // The embedded server runs as the `postgres` OS user when the tests run as root.
    await chmod(dataDir, 0o755);
    const ports = await freeServicePorts();
    gatewayBase = ports.gatewayBase;
    env = {
      NODE_ENV: 'development',
      FLOWGRAPH_DATA_DIR: dataDir,
      FLOWGRAPH_EMBEDDED_PG_PORT: String(await freePort()),
      ...ports.env,
    };
  });

  afterAll(async () => {
    for (const proc of processes) await proc.kill();
    // A killed start leaves its embedded server running (it has its own process group).
    const pidFile = path.join(dataDir, 'postgres', 'postmaster.pid');
    const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        // already gone
      }
    }
    await rm(dataDir, { recursive: true, force: true });
  });

  it('provisions, migrates and serves on the first start; stops with exit code 0', async () => {
    const first = spawnFlowgraph('start.ts', [], env);
    processes.push(first);
    await waitForHealth(gatewayBase, first, 120_000);
    const output = first.output();
    expect(output).toContain('embedded PostgreSQL is ready');
    expect(output).toContain('"msg":"migrations applied"');
    expect(output).toContain(`flowgraph gateway ready at ${gatewayBase}/graphql`);

    firstToken = await printedToken(first);
    // Without it the gateway admits nobody.
    expect((await createGatewayClient(`${gatewayBase}/graphql`, { token: null }).query('{ workflows { id } }')).status).toBe(401);
    const client = createGatewayClient(`${gatewayBase}/graphql`, { token: firstToken });
    await client.mustQuery(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { id: 'kept-across-restarts', name: 'Kept', steps: [{ name: 'one', kind: 'EXTERNAL', timeoutMs: 60_000 }] } },
    );
    expect(await first.stop(), first.output()).toEqual({ code: 0, signal: null });
    expect(first.output()).toContain('embedded PostgreSQL stopped');
    // The embedded server stops last, after the pools that use it.
    const log = first.output();
    expect(log.indexOf('"resource":"workflows database pool","msg":"closed"')).toBeGreaterThan(log.indexOf('"resource":"gateway","msg":"closed"'));
    expect(log.indexOf('"resource":"embedded PostgreSQL","msg":"closed"')).toBeGreaterThan(
      log.indexOf('"resource":"workflows database pool","msg":"closed"'),
    );
  }, 180_000);

  it('reuses the data directory on the next start: the workflow is still there', async () => {
    const second = spawnFlowgraph('start.ts', [], env);
    processes.push(second);
    await waitForHealth(gatewayBase, second, 120_000);
    expect(second.output()).toContain('"msg":"database up to date"');
    const client = createGatewayClient(`${gatewayBase}/graphql`, { token: await printedToken(second) });
    expect(await client.mustQuery('{ workflow(id: "kept-across-restarts") { name } }')).toEqual({ workflow: { name: 'Kept' } });
    // The development secret was kept: the first start's token is still good.
    const earlier = createGatewayClient(`${gatewayBase}/graphql`, { token: firstToken });
    expect(await earlier.mustQuery('{ workflow(id: "kept-across-restarts") { name } }')).toEqual({ workflow: { name: 'Kept' } });
    expect(await second.stop(), second.output()).toEqual({ code: 0, signal: null });
  }, 180_000);
});
