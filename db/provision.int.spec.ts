import { chmod, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../test/support/ports.ts';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from './embedded.ts';
import { passwordMatches, provisionServiceDatabases, provisionWithStoredPasswords, ProvisionError } from './provision.ts';

// Password authentication cannot be proven on the machine's server (trust for 127.0.0.1):
// these tests run a private embedded server whose pg_hba requires scram-sha-256.

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

describe('provisionServiceDatabases', () => {
  let root: string;
  let server: RunningEmbeddedPostgres;

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'fg-provision-'));
    await chmod(root, 0o755);
    server = await startEmbeddedPostgres({ port: await freePort(), dataDir: path.join(root, 'postgres'), authMethod: 'scram-sha-256' });
  });
  afterAll(async () => {
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('gives each service a database owned by its own login role, which can read and write it', async () => {
    const [a] = await provisionServiceDatabases(server.adminUrl, [{ service: 'alpha', password: 'alpha-secret-1' }]);
    expect(a).toMatchObject({ database: 'flowgraph_alpha', role: 'flowgraph_alpha', changes: ['created role', 'created database', 'revoked PUBLIC connect'] });
    const client = await connect(a!.url);
    try {
      await client.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
      await client.query(`INSERT INTO notes VALUES (1, 'hello')`);
      expect((await client.query('SELECT body FROM notes')).rows).toEqual([{ body: 'hello' }]);
      const { rows } = await client.query(`SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = current_database()`);
      expect(rows[0].owner).toBe('flowgraph_alpha');
      const su = await client.query(`SELECT rolsuper, rolcreatedb, rolcreaterole FROM pg_roles WHERE rolname = current_user`);
      expect(su.rows[0]).toEqual({ rolsuper: false, rolcreatedb: false, rolcreaterole: false });
    } finally {
      await client.end();
    }
  });

  it("refuses a service role on another service's database", async () => {
    const [a, b] = await provisionServiceDatabases(server.adminUrl, [
      { service: 'alpha', password: 'alpha-secret-1' },
      { service: 'beta', password: 'beta-secret-1' },
    ]);
    const intoBeta = new URL(b!.url);
    intoBeta.username = a!.role;
    intoBeta.password = 'alpha-secret-1';
    const err = await connect(intoBeta.toString()).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: '42501' }); // permission denied for database
  });

  it('requires the right password over TCP', async () => {
    const [a] = await provisionServiceDatabases(server.adminUrl, [{ service: 'alpha', password: 'alpha-secret-1' }]);
    const wrong = new URL(a!.url);
    wrong.password = 'guess';
    await expect(connect(wrong.toString())).rejects.toMatchObject({ code: '28P01' });
  });

  it('changes nothing when run again with the same passwords', async () => {
    const admin = await connect(server.adminUrl);
    try {
      const before = await admin.query(`SELECT rolpassword FROM pg_authid WHERE rolname = 'flowgraph_alpha'`);
      const again = await provisionServiceDatabases(server.adminUrl, [{ service: 'alpha', password: 'alpha-secret-1' }]);
      expect(again[0]!.changes).toEqual([]);
      const after = await admin.query(`SELECT rolpassword FROM pg_authid WHERE rolname = 'flowgraph_alpha'`);
      expect(after.rows[0].rolpassword).toBe(before.rows[0].rolpassword);
      expect(passwordMatches(after.rows[0].rolpassword, 'flowgraph_alpha', 'alpha-secret-1')).toBe(true);
      expect(passwordMatches(after.rows[0].rolpassword, 'flowgraph_alpha', 'other')).toBe(false);
    } finally {
      await admin.end();
    }
  });

  it('resets the password when it changed', async () => {
    const [a] = await provisionServiceDatabases(server.adminUrl, [{ service: 'alpha', password: 'alpha-secret-2' }]);
    expect(a!.changes).toEqual(['set role password']);
    const client = await connect(a!.url);
    await client.end();
    await provisionServiceDatabases(server.adminUrl, [{ service: 'alpha', password: 'alpha-secret-1' }]);
  });

  it('keeps generated passwords in a mode-600 secrets file, stable across runs', async () => {
    const secretsFile = path.join(root, 'secrets.json');
    const first = await provisionWithStoredPasswords(server.adminUrl, ['gamma'], secretsFile);
    const second = await provisionWithStoredPasswords(server.adminUrl, ['gamma'], secretsFile);
    expect(second).toEqual(first);
    expect((await stat(secretsFile)).mode & 0o777).toBe(0o600);
    const secrets = JSON.parse(await readFile(secretsFile, 'utf8')) as Record<string, string>;
    expect(new URL(first.gamma!).password).toBe(encodeURIComponent(secrets['role:gamma']!));
    const client = await connect(first.gamma!);
    await client.end();
  });

  it('rejects a name that is not a plain identifier, creating nothing', async () => {
    await expect(provisionServiceDatabases(server.adminUrl, [{ service: 'bad"; DROP', password: 'x' }]))
      .rejects.toBeInstanceOf(ProvisionError);
    const admin = await connect(server.adminUrl);
    try {
      const { rowCount } = await admin.query(`SELECT 1 FROM pg_roles WHERE rolname LIKE 'flowgraph_bad%'`);
      expect(rowCount).toBe(0);
    } finally {
      await admin.end();
    }
  });
});
