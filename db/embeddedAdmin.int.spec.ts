/**
 * openEmbeddedAdmin with another process owning the data directory (as `npm start` does): it
 * uses that process's running server (port from the owner lock, password from the secrets
 * file) and leaves it running; when it cannot (no password stored), it says in one line what
 * to do and touches nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../test/support/ports.ts';
import { EmbeddedPostgresError } from './embedded.ts';
import { openEmbeddedAdmin } from './embeddedAdmin.ts';

describe('openEmbeddedAdmin while another process runs the embedded PostgreSQL', () => {
  let root: string;
  let dataDir: string;
  let secretsFile: string;
  let port: number;
  let owner: ChildProcess;
  let ownerExited: Promise<void>;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'fg-embedded-admin-'));
    // The postgres OS user must traverse it when the tests run as root.
    await chmod(root, 0o755);
    dataDir = path.join(root, 'postgres');
    secretsFile = path.join(root, 'secrets.json');
    port = await freePort();
    const script = `
      const { startEmbeddedPostgres } = await import(process.env.FG_EMBEDDED_MODULE);
      const server = await startEmbeddedPostgres({ port: Number(process.env.FG_PORT), dataDir: process.env.FG_DATA_DIR, secretsFile: process.env.FG_SECRETS });
      process.on('SIGTERM', () => void server.stop().then(() => process.exit(0)));
      setInterval(() => {}, 60_000);
      console.log('ready');
    `;
    owner = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      env: {
        ...process.env,
        FG_EMBEDDED_MODULE: pathToFileURL(path.join(path.dirname(fileURLToPath(import.meta.url)), 'embedded.ts')).href,
        FG_PORT: String(port),
        FG_DATA_DIR: dataDir,
        FG_SECRETS: secretsFile,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    ownerExited = new Promise<void>((resolve) => owner.once('exit', () => resolve()));
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.includes('ready')) resolve();
      };
      owner.stdout!.on('data', onData);
      owner.stderr!.on('data', onData);
      void ownerExited.then(() => reject(new Error(`the owner process exited before its server was ready:\n${output}`)));
    });
  }, 120_000);

  afterAll(async () => {
    if (owner && owner.exitCode === null && owner.signalCode === null) {
      owner.kill('SIGTERM');
      await ownerExited;
    }
    await rm(root, { recursive: true, force: true });
  });

  it('uses the running server (the lock\'s port, whatever port it was given) and leaves it running', async () => {
    const admin = await openEmbeddedAdmin({ port: await freePort(), dataDir, secretsFile });
    expect(admin.mode).toBe('attached');
    expect(admin.ownerPid).toBe(owner.pid);
    const client = new pg.Client({ connectionString: admin.adminUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ port: string }>('SHOW port');
      expect(Number(rows[0]!.port)).toBe(port);
    } finally {
      await client.end();
    }
    await admin.close();
    // Still the owner's, still serving.
    expect(owner.exitCode).toBeNull();
    const again = new pg.Client({ connectionString: admin.adminUrl });
    await again.connect();
    await again.end();
  });

  it('without the stored superuser password: DATA_DIR_IN_USE saying what to do, secrets file untouched', async () => {
    const elsewhere = path.join(root, 'other-secrets.json');
    await writeFile(elsewhere, '{}\n');
    const error = await openEmbeddedAdmin({ port, dataDir, secretsFile: elsewhere }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EmbeddedPostgresError);
    expect((error as EmbeddedPostgresError).code).toBe('DATA_DIR_IN_USE');
    expect((error as Error).message).toContain(`in use by flowgraph process ${owner.pid}`);
    expect((error as Error).message).toContain('stop that process first, or point this command at its database with FLOWGRAPH_ADMIN_DATABASE_URL');
    expect((error as Error).message).not.toContain('\n');
    expect(await readFile(elsewhere, 'utf8')).toBe('{}\n');
    expect(owner.exitCode).toBeNull();
  });
});
