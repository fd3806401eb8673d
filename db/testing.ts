/**
 * Fresh PostgreSQL databases for integration tests: each test file creates its own database
 * through the admin connection (`FLOWGRAPH_ADMIN_DATABASE_URL`, set by the vitest global
 * setup) and drops it afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { assertNoSchemaDrift } from './drift.ts';
import { migrateServiceDatabase } from './migrate.ts';
import { withDatabase } from './url.ts';

/** A database created for one test file. */
export interface TestDatabase {
  /** Connection string of the new database (same credentials as the admin URL). */
  url: string;
  /** Database name, `fgtest_<label>_<random>`. */
  name: string;
  /** A pool on the database (max 20 connections), ended by `drop()`. */
  pool: pg.Pool;
  /** Ends the pool, terminates other sessions on the database and drops it. Idempotent. */
  drop(): Promise<void>;
}

/**
 * The admin connection string the tests use.
 * @throws Error when `FLOWGRAPH_ADMIN_DATABASE_URL` is not set (the global setup sets it).
 */
export function adminDatabaseUrl(): string {
  const url = process.env.FLOWGRAPH_ADMIN_DATABASE_URL;
  if (!url) throw new Error('FLOWGRAPH_ADMIN_DATABASE_URL is not set: run tests through `npm test` (its global setup provides PostgreSQL)');
  return url;
}

export { withDatabase } from './url.ts';

/**
 * Creates an empty database for one test file.
 * @param label lowercase letters, digits and `_` (it becomes part of the database name)
 */
export async function createTestDatabase(label: string): Promise<TestDatabase> {
  const safe = label.toLowerCase().replace(/[^a-z0-9_]/g, '_').slice(0, 30);
  const name = `fgtest_${safe}_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: adminDatabaseUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(adminDatabaseUrl(), name);
  const pool = new pg.Pool({ connectionString: url, max: 20 });
  pool.on('error', () => {});
  let dropped = false;
  return {
    url,
    name,
    pool,
    async drop() {
      if (dropped) return;
      dropped = true;
      await pool.end().catch(() => {});
      const c = new pg.Client({ connectionString: adminDatabaseUrl() });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** Options of {@link expectNoDrift}. */
export interface ExpectNoDriftOptions {
  /** @default `<repo>/prisma/<service>/schema.prisma` */
  schemaPath?: string;
  /** @default `<repo>/prisma/<service>/migrations` */
  migrationsDir?: string;
  /** Runs after the migrations, before the check (tests of the check itself change the database here). */
  tamper?: (db: TestDatabase) => Promise<void>;
}

/**
 * Proves a service's migrations produce exactly what its schema.prisma declares: creates a fresh
 * database, applies the service's migrations and the event store schema (as `npm start` does),
 * and diffs its `public` schema against schema.prisma with Prisma's schema engine
 * (`db/drift.ts`). The database is dropped afterwards.
 *
 * Usage, in `prisma/<service>/drift.int.spec.ts`:
 * `it('the migrated database matches schema.prisma', () => expectNoDrift('workflows'));`
 * @throws SchemaDriftError listing the statements that would make the database match the schema.
 */
export async function expectNoDrift(service: string, options: ExpectNoDriftOptions = {}): Promise<void> {
  const db = await createTestDatabase(`drift_${service}`);
  try {
    await migrateServiceDatabase(db.pool, { service, migrationsDir: options.migrationsDir });
    await options.tamper?.(db);
    await assertNoSchemaDrift(service, db.url, { schemaPath: options.schemaPath });
  } finally {
    await db.drop();
  }
}
