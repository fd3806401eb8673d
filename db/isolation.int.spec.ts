/**
 * Database per service (DESIGN.md, "Databases and isolation"): every service of
 * `config/services.ts` gets its own database and login role. Each role, connecting with its
 * password (scram-sha-256, not trust), migrates, reads and writes its own tables, and can
 * neither connect to another service's database nor read its tables even if CONNECT leaked.
 * Runs on a private embedded PostgreSQL whose pg_hba requires passwords.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SERVICES } from '../config/services.ts';
import { freePort } from '../test/support/ports.ts';
import { createEventStore } from '../eventstore/index.ts';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from './embedded.ts';
import { migrateServiceDatabase } from './migrate.ts';
import { provisionServiceDatabases, type ProvisionedService } from './provision.ts';

let root: string;
let server: RunningEmbeddedPostgres;
let provisioned: ProvisionedService[];

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  client.on('error', () => {});
  await client.connect();
  return client;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'fg-isolation-'));
  await chmod(root, 0o755);
  server = await startEmbeddedPostgres({ port: await freePort(), dataDir: path.join(root, 'postgres'), authMethod: 'scram-sha-256' });
  provisioned = await provisionServiceDatabases(
    server.adminUrl,
    SERVICES.map((s) => ({ service: s.name, password: `${s.name}-pw-${Math.random().toString(36).slice(2)}` })),
  );
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('database per service', () => {
  it('connects over TCP only with the right password', async () => {
    const wrong = new URL(provisioned[0]!.url);
    wrong.password = 'not-the-password';
    await expect(connect(wrong.toString())).rejects.toMatchObject({ code: '28P01' });
    const noPassword = new URL(provisioned[0]!.url);
    noPassword.password = '';
    await expect(connect(noPassword.toString())).rejects.toThrow();
  });

  it.each(SERVICES.map((s) => s.name))('%s migrates, writes and reads its own database as its own role', async (name) => {
    const mine = provisioned.find((p) => p.service === name)!;
    const pool = new pg.Pool({ connectionString: mine.url, max: 3 });
    try {
      await migrateServiceDatabase(pool, { service: name });
      const store = createEventStore({ pool });
      await store.appendToStream(`isolation-${name}`, [{ type: 'Probed', data: { by: name } }]);
      expect((await store.readStream(`isolation-${name}`))[0]?.data).toEqual({ by: name });
      await store.close();
      const { rows } = await pool.query<{ owner: string; tables: number }>(
        `SELECT (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()) AS owner,
                (SELECT count(*)::int FROM pg_tables WHERE schemaname IN ('public', 'eventstore') AND tableowner = current_user) AS tables`,
      );
      expect(rows[0]!.owner).toBe(mine.role);
      expect(rows[0]!.tables).toBeGreaterThan(3);
    } finally {
      await pool.end();
    }
  });

  it("no role can connect to another service's database", async () => {
    for (const mine of provisioned) {
      for (const other of provisioned) {
        if (other === mine) continue;
        const intruder = new URL(other.url);
        intruder.username = mine.role;
        intruder.password = decodeURIComponent(new URL(mine.url).password);
        await expect(connect(intruder.toString()), `${mine.role} into ${other.database}`).rejects.toMatchObject({ code: '42501' });
      }
    }
  });

  it("no role can read another service's tables even if CONNECT were granted by mistake", async () => {
    const [a, b] = provisioned;
    const admin = await connect(new URL(`/${b!.database}`, server.adminUrl).toString());
    try {
      await admin.query(`GRANT CONNECT ON DATABASE "${b!.database}" TO "${a!.role}"`);
      const intruder = new URL(b!.url);
      intruder.username = a!.role;
      intruder.password = decodeURIComponent(new URL(a!.url).password);
      const client = await connect(intruder.toString());
      try {
        await expect(client.query('SELECT * FROM eventstore.events')).rejects.toMatchObject({ code: '42501' });
        await expect(client.query(`INSERT INTO eventstore.checkpoints (subscription_name, transaction_id, global_position) VALUES ('x', '0', 0)`)).rejects.toMatchObject({ code: '42501' });
      } finally {
        await client.end();
      }
    } finally {
      await admin.query(`REVOKE CONNECT ON DATABASE "${b!.database}" FROM "${a!.role}"`);
      await admin.end();
    }
  });
});
