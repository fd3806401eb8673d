/**
 * `createBenchDatabase`: one fresh, empty database per benchmark cell, created and dropped
 * through the admin connection, so no cell inherits another's tables, bloat or caches of rows.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { migrateServiceDatabase } from '../db/migrate.ts';
import { withDatabase } from '../db/url.ts';

/** A database created for one cell. */
export interface BenchDatabase {
  /** `fgbench_<label>_<random>`. */
  name: string;
  /** Connection string of the new database (admin credentials). */
  url: string;
  /** Terminates its sessions and drops it. Idempotent. */
  drop(): Promise<void>;
}

/**
 * Creates an empty database.
 * @param label lowercase letters, digits and `_`
 * @throws pg.DatabaseError when the admin role may not create databases
 */
export async function createBenchDatabase(adminUrl: string, label: string): Promise<BenchDatabase> {
  const name = `fgbench_${label.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30)}_${randomBytes(3).toString('hex')}`;
  await withAdmin(adminUrl, (c) => c.query(`CREATE DATABASE "${name}"`));
  let dropped = false;
  return {
    name,
    url: withDatabase(adminUrl, name),
    async drop() {
      if (dropped) return;
      dropped = true;
      await withAdmin(adminUrl, (c) => c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`));
    },
  };
}

/** Runs `work` on a short-lived admin connection. */
export async function withAdmin<T>(adminUrl: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/**
 * {@link createBenchDatabase} for `service`, with that service's migrations and event store
 * schema applied (db/migrate.ts `migrateServiceDatabase`).
 * @throws what createBenchDatabase or the migration throws (a database whose migration failed is dropped first)
 */
export async function createMigratedBenchDatabase(adminUrl: string, label: string, service: Parameters<typeof migrateServiceDatabase>[1]['service']): Promise<BenchDatabase> {
  const db = await createBenchDatabase(adminUrl, label);
  const pool = new pg.Pool({ connectionString: db.url, max: 2 });
  pool.on('error', () => {});
  try {
    await migrateServiceDatabase(pool, { service });
  } catch (error) {
    await db.drop().catch(() => {});
    throw error;
  } finally {
    await pool.end();
  }
  return db;
}
