import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../test/support/ports.ts';
import { EmbeddedPostgresError, startEmbeddedPostgres, type RunningEmbeddedPostgres } from './embedded.ts';

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

describe('startEmbeddedPostgres', () => {
  let root: string;
  let dataDir: string;
  let server: RunningEmbeddedPostgres | undefined;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'fg-embedded-'));
    // mkdtemp makes a mode-700 folder, which (as root) the postgres OS user cannot traverse.
    await chmod(root, 0o755);
    dataDir = path.join(root, 'postgres');
    PORT = await freePort();
  });
  afterAll(async () => {
    await server?.stop();
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
