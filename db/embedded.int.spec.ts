import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../test/support/ports.ts';
import {
  EmbeddedPostgresError, startEmbeddedPostgres, type EmbeddedPostgresOwner, type RunningEmbeddedPostgres,
} from './embedded.ts';

// A private server on its own port (picked by the OS, kept across the restarts below) and temp
// directory: never the machine's shared PostgreSQL.
let PORT: number;

async function query<T extends pg.QueryResultRow>(url: string, sql: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql)).rows;
  } finally {
    await client.end();
  }
}

/**
 * Another process that starts an embedded server on `dataDir` and keeps it running (as a
 * second `npm start` would see the first one). Resolves once its server is ready.
 */
async function startOwnerProcess(dataDir: string, port: number): Promise<{ child: ChildProcess; exited: Promise<void> }> {
  const script = `
    const { startEmbeddedPostgres } = await import(process.env.FG_EMBEDDED_MODULE);
    const server = await startEmbeddedPostgres({ port: Number(process.env.FG_PORT), dataDir: process.env.FG_DATA_DIR });
    process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
    setInterval(() => {}, 60_000);
    console.log('ready');
  `;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: {
      ...process.env,
      FG_EMBEDDED_MODULE: pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'embedded.ts')).href,
      FG_PORT: String(port),
      FG_DATA_DIR: dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('ready')) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exited.then(() => reject(new Error(`the owner process exited before its server was ready:\n${output}`)));
  });
  return { child, exited };
}

async function postmasterPid(dataDir: string): Promise<number> {
  return Number((await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A pid that no process has (a child that already exited). */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((resolve) => child.once('exit', resolve));
  return child.pid!;
}

describe('startEmbeddedPostgres', () => {
  let root: string;
  let dataDir: string;
  let server: RunningEmbeddedPostgres | undefined;
  let owner: { child: ChildProcess; exited: Promise<void> } | undefined;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'fg-embedded-'));
    // mkdtemp makes a mode-700 folder, which (as root) the postgres OS user cannot traverse.
    await chmod(root, 0o755);
    dataDir = path.join(root, 'postgres');
    PORT = await freePort();
  });
  afterAll(async () => {
    await server?.stop();
    if (owner && owner.child.exitCode === null && owner.child.signalCode === null) {
      owner.child.kill('SIGKILL');
      await owner.exited;
    }
    // A killed owner process leaves its server running (it has its own process group).
    const orphan = await postmasterPid(dataDir);
    if (orphan > 0 && isAlive(orphan)) process.kill(orphan, 'SIGQUIT');
    await rm(root, { recursive: true, force: true });
  });

  it('initialises an empty directory and serves a PostgreSQL 18 superuser with a stored password', async () => {
    server = await startEmbeddedPostgres({ port: PORT, dataDir });
    const rows = await query<{ v: string; su: boolean }>(server.adminUrl,
      `SELECT current_setting('server_version_num') AS v, rolsuper AS su FROM pg_roles WHERE rolname = current_user`);
    expect(Number(rows[0]!.v)).toBeGreaterThanOrEqual(180000);
    expect(rows[0]!.su).toBe(true);
    const secrets = JSON.parse(await readFile(path.join(root, 'secrets.json'), 'utf8')) as Record<string, string>;
    expect(server.adminUrl).toContain(encodeURIComponent(secrets['embedded-postgres-superuser']!));
    await query(server.adminUrl, 'CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)');
  });

  it('requires the password over TCP (scram-sha-256)', async () => {
    const wrong = new URL(server!.adminUrl);
    wrong.password = 'not-the-password';
    const err = await query(wrong.toString(), 'SELECT 1').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '28P01' });
  });

  it('stops idempotently and restarts on the same directory with the data kept', async () => {
    const first = server!;
    await Promise.all([first.stop(), first.stop()]);
    await first.stop();
    await expect(query(first.adminUrl, 'SELECT 1')).rejects.toThrow();

    server = await startEmbeddedPostgres({ port: PORT, dataDir });
    expect(server.adminUrl).toBe(first.adminUrl);
    const rows = await query<{ v: number }>(server.adminUrl, 'SELECT v FROM kept');
    expect(rows).toEqual([{ v: 42 }]);
  });

  it('refuses a second start on the same directory in the same process (DATA_DIR_IN_USE); the first keeps serving', async () => {
    const err = await startEmbeddedPostgres({ port: await freePort(), dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedPostgresError);
    expect(err).toMatchObject({ code: 'DATA_DIR_IN_USE' });
    expect((err as Error).message).toContain(`the data directory ${dataDir} is in use by this process (pid ${process.pid})`);
    expect(await query<{ v: number }>(server!.adminUrl, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
    const lock = JSON.parse(await readFile(`${dataDir}.lock`, 'utf8')) as EmbeddedPostgresOwner;
    expect(lock).toMatchObject({ pid: process.pid, port: PORT, dataDir });
  });

  it('refuses a start while another live process runs the directory\'s server, whatever the port; that server is untouched', async () => {
    await server!.stop();
    server = undefined;
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
    owner = await startOwnerProcess(dataDir, PORT);
    const ownerServer = await postmasterPid(dataDir);
    for (const port of [PORT, await freePort()]) {
      const err = await startEmbeddedPostgres({ port, dataDir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EmbeddedPostgresError);
      expect(err).toMatchObject({ code: 'DATA_DIR_IN_USE' });
      expect((err as Error).message).toContain(`the data directory ${dataDir} is in use by flowgraph process ${owner.child.pid}`);
      expect((err as Error).message).toContain('stop it first');
    }
    expect(await postmasterPid(dataDir)).toBe(ownerServer);
    expect(isAlive(ownerServer)).toBe(true);
    const url = `postgres://postgres:${encodeURIComponent(JSON.parse(await readFile(path.join(root, 'secrets.json'), 'utf8'))['embedded-postgres-superuser'])}@127.0.0.1:${PORT}/postgres`;
    expect(await query<{ v: number }>(url, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
  });

  it('takes over from an owner process that was killed, shutting down the server it orphaned', async () => {
    const orphan = await postmasterPid(dataDir);
    owner!.child.kill('SIGKILL');
    await owner!.exited;
    expect(isAlive(orphan)).toBe(true);

    server = await startEmbeddedPostgres({ port: PORT, dataDir });
    expect(isAlive(orphan)).toBe(false);
    expect(server.pid).not.toBe(orphan);
    expect(await query<{ v: number }>(server.adminUrl, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
    expect(JSON.parse(await readFile(`${dataDir}.lock`, 'utf8'))).toMatchObject({ pid: process.pid });
  });

  it('takes over a lock naming a dead pid; the old handle\'s stop() leaves the new lock alone', async () => {
    const previous = server!;
    const lockFile = `${dataDir}.lock`;
    const stale: EmbeddedPostgresOwner = { pid: await deadPid(), port: PORT, dataDir, since: new Date(0).toISOString() };
    await writeFile(lockFile, JSON.stringify(stale));

    server = await startEmbeddedPostgres({ port: PORT, dataDir });
    expect(server.pid).not.toBe(previous.pid);
    await previous.stop();
    expect(JSON.parse(await readFile(lockFile, 'utf8'))).toMatchObject({ pid: process.pid });
    expect(await query<{ v: number }>(server.adminUrl, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
  });

  it('starts over a stale postmaster.pid left by a killed server', async () => {
    const running = server!;
    process.kill(running.pid, 'SIGKILL');
    await running.stop();
    // SIGKILL leaves postmaster.pid behind; point it at a pid that is certainly not postgres.
    const pidFile = path.join(running.dataDir, 'postmaster.pid');
    const lines = (await readFile(pidFile, 'utf8')).split('\n');
    lines[0] = String(process.pid);
    await writeFile(pidFile, lines.join('\n'));

    server = await startEmbeddedPostgres({ port: PORT, dataDir });
    expect(await query<{ v: number }>(server.adminUrl, 'SELECT v FROM kept')).toEqual([{ v: 42 }]);
  });

  it('refuses a non-empty directory that is not a PostgreSQL cluster', async () => {
    const junk = path.join(root, 'junk');
    await rm(junk, { recursive: true, force: true });
    await mkdir(junk, { recursive: true });
    await writeFile(path.join(junk, 'notes.txt'), 'hello');
    const err = await startEmbeddedPostgres({ port: await freePort(), dataDir: junk }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedPostgresError);
    expect(err).toMatchObject({ code: 'BAD_DATA_DIR' });
  });

  it('fails with START_FAILED when the port is taken by another server', async () => {
    const other = path.join(root, 'other');
    const err = await startEmbeddedPostgres({ port: PORT, dataDir: other }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EmbeddedPostgresError);
    expect(err).toMatchObject({ code: 'START_FAILED' });
    expect((err as Error).message).toMatch(/already in use|could not bind|could not create any TCP|another PostgreSQL/i);
  });
});
