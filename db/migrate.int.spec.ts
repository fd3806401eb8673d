import { createHash } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  applyPrismaMigrations, markMigrationRolledBack, migrateServiceDatabase, migrateServices, MigrationError,
} from './migrate.ts';
import { createTestDatabase, type TestDatabase } from './testing.ts';

async function writeMigration(dir: string, name: string, sql: string): Promise<void> {
  await mkdir(path.join(dir, name), { recursive: true });
  await writeFile(path.join(dir, name, 'migration.sql'), sql);
}

const INIT = 'CREATE TABLE "things" ("id" TEXT NOT NULL, CONSTRAINT "things_pkey" PRIMARY KEY ("id"));\n';
const SECOND = 'ALTER TABLE "things" ADD COLUMN "label" TEXT;\nCREATE INDEX "things_label_idx" ON "things"("label");\n';

describe('applyPrismaMigrations', () => {
  let root: string;
  const dbs: TestDatabase[] = [];
  const freshDb = async (label: string) => {
    const db = await createTestDatabase(label);
    dbs.push(db);
    return db;
  };

  beforeAll(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'fg-migrate-'));
  });
  afterAll(async () => {
    await Promise.all(dbs.map((db) => db.drop()));
    await rm(root, { recursive: true, force: true });
  });

  it('applies every migration once, in name order, recorded as prisma migrate deploy records it', async () => {
    const dir = path.join(root, 'ok');
    await writeMigration(dir, '20250101000000_init', INIT);
    await writeMigration(dir, '20250102000000_label', SECOND);
    await writeFile(path.join(dir, 'migration_lock.toml'), 'provider = "postgresql"\n');
    const db = await freshDb('migrate_ok');

    const first = await applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir });
    expect(first.applied).toEqual(['20250101000000_init', '20250102000000_label']);

    const { rows } = await db.pool.query(
      `SELECT id, checksum, finished_at, migration_name, logs, rolled_back_at, started_at, applied_steps_count
         FROM "_prisma_migrations" ORDER BY migration_name`);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatchObject({
      migration_name: '20250101000000_init',
      checksum: createHash('sha256').update(INIT).digest('hex'),
      logs: null,
      rolled_back_at: null,
      applied_steps_count: 1,
    });
    expect(rows[0].id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(rows[0].finished_at).toBeInstanceOf(Date);
    expect(rows[0].started_at).toBeInstanceOf(Date);
    const columns = await db.pool.query(
      `SELECT column_name, data_type, is_nullable FROM information_schema.columns
        WHERE table_name = '_prisma_migrations' ORDER BY ordinal_position`);
    expect(columns.rows.map((c) => `${c.column_name}:${c.data_type}:${c.is_nullable}`)).toEqual([
      'id:character varying:NO', 'checksum:character varying:NO', 'finished_at:timestamp with time zone:YES',
      'migration_name:character varying:NO', 'logs:text:YES', 'rolled_back_at:timestamp with time zone:YES',
      'started_at:timestamp with time zone:NO', 'applied_steps_count:integer:NO',
    ]);
    await db.pool.query(`INSERT INTO things (id, label) VALUES ('a', 'x')`);

    const again = await applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir });
    expect(again.applied).toEqual([]);
    expect((await db.pool.query('SELECT count(*)::int AS n FROM "_prisma_migrations"')).rows[0].n).toBe(2);
  });

  it('refuses with CHECKSUM_MISMATCH when an applied migration was edited, and applies nothing', async () => {
    const dir = path.join(root, 'edited');
    await writeMigration(dir, '20250101000000_init', INIT);
    const db = await freshDb('migrate_edit');
    await applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir });
    await writeMigration(dir, '20250101000000_init', `${INIT}-- edited\n`);
    await writeMigration(dir, '20250102000000_label', SECOND);

    const err = await applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect(err).toMatchObject({ code: 'CHECKSUM_MISMATCH', service: 'things', migration: '20250101000000_init' });
    const label = await db.pool.query(`SELECT 1 FROM information_schema.columns WHERE table_name = 'things' AND column_name = 'label'`);
    expect(label.rowCount).toBe(0);
  });

  it('accepts a migration whose line endings were converted to CRLF after it was applied', async () => {
    const dir = path.join(root, 'crlf');
    await writeMigration(dir, '20250101000000_init', INIT);
    const db = await freshDb('migrate_crlf');
    await applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir });
    await writeMigration(dir, '20250101000000_init', INIT.replace(/\n/g, '\r\n'));
    await expect(applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir })).resolves.toEqual({ service: 'things', applied: [] });
  });

  it('rolls back a failing migration, records it, and refuses further runs until it is marked rolled back', async () => {
    const dir = path.join(root, 'failing');
    await writeMigration(dir, '20250101000000_init', INIT);
    await writeMigration(dir, '20250102000000_broken', 'CREATE TABLE "half" ("id" TEXT);\nALTER TABLE "nope" ADD COLUMN "x" INT;\n');
    const db = await freshDb('migrate_fail');

    const err = await applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationError);
    expect(err).toMatchObject({ code: 'MIGRATION_FAILED', service: 'things', migration: '20250102000000_broken' });
    expect((err as Error).message).toMatch(/things: migration 20250102000000_broken failed.*relation "nope" does not exist.*42P01/);
    // The failed migration left nothing behind; the one before it stays applied.
    expect((await db.pool.query(`SELECT to_regclass('public.half') AS t`)).rows[0].t).toBeNull();
    expect((await db.pool.query(`SELECT to_regclass('public.things') AS t`)).rows[0].t).toBe('things');
    const failedRow = await db.pool.query(
      `SELECT logs, finished_at, applied_steps_count FROM "_prisma_migrations" WHERE migration_name = '20250102000000_broken'`);
    expect(failedRow.rows[0]).toMatchObject({ finished_at: null, applied_steps_count: 0 });
    expect(failedRow.rows[0].logs).toMatch(/does not exist/);

    await writeMigration(dir, '20250102000000_broken', 'CREATE TABLE "half" ("id" TEXT);\n');
    const blocked = await applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir }).catch((e: unknown) => e);
    expect(blocked).toMatchObject({ code: 'FAILED_MIGRATION_PRESENT', service: 'things', migration: '20250102000000_broken' });

    expect(await markMigrationRolledBack(db.pool, '20250102000000_broken')).toBe(1);
    const fixed = await applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: dir });
    expect(fixed.applied).toEqual(['20250102000000_broken']);
  });

  it('migrates services independently: one failing leaves the other migrated and untouched', async () => {
    const good = path.join(root, 'svc-good');
    const bad = path.join(root, 'svc-bad');
    await writeMigration(good, '20250101000000_init', INIT);
    await writeMigration(bad, '20250101000000_init', 'CREATE TABLE "x" ("id" TEXT);\nSELECT 1/0;\n');
    const badDb = await freshDb('migrate_svc_bad');
    const goodDb = await freshDb('migrate_svc_good');

    const outcomes = await migrateServices([
      { service: 'bad', pool: badDb.pool, migrationsDir: bad },
      { service: 'good', pool: goodDb.pool, migrationsDir: good },
    ]);
    expect(outcomes[0]).toMatchObject({ service: 'bad', ok: false });
    const badError = (outcomes[0] as { error: unknown }).error as MigrationError;
    expect(badError).toMatchObject({ code: 'MIGRATION_FAILED', service: 'bad', migration: '20250101000000_init' });
    expect(badError.message).toMatch(/division by zero/);
    expect(outcomes[1]).toEqual({ service: 'good', ok: true, applied: ['20250101000000_init'] });
    expect((await goodDb.pool.query(`SELECT to_regclass('eventstore.events') AS t`)).rows[0].t).not.toBeNull();
    // The failing service did not get its event store schema either (migration stopped there).
    expect((await badDb.pool.query(`SELECT to_regclass('public.x') AS t`)).rows[0].t).toBeNull();
  });

  it('creates the event store schema after the Prisma migrations, idempotently', async () => {
    const dir = path.join(root, 'es');
    await writeMigration(dir, '20250101000000_init', INIT);
    const db = await freshDb('migrate_es');
    await migrateServiceDatabase(db.pool, { service: 'things', migrationsDir: dir });
    await migrateServiceDatabase(db.pool, { service: 'things', migrationsDir: dir });
    const { rows } = await db.pool.query(`SELECT nspname FROM pg_namespace WHERE nspname = 'eventstore'`);
    expect(rows).toHaveLength(1);
  });

  it('refuses an explicitly given migrations folder that does not exist', async () => {
    const db = await freshDb('migrate_nodir');
    await expect(applyPrismaMigrations(db.pool, { service: 'things', migrationsDir: path.join(root, 'missing') }))
      .rejects.toMatchObject({ code: 'NO_MIGRATIONS_DIR', service: 'things' });
  });
});

describe('createServicePool', () => {
  it('sets statement_timeout and application_name on its sessions', async () => {
    const { createServicePool } = await import('../config/database.ts');
    const db = await createTestDatabase('service_pool');
    const pool = createServicePool({ service: 'things', url: db.url, poolMax: 2, statementTimeoutMs: 1234, idleTimeoutMs: 1000 });
    try {
      const { rows } = await pool.query(`SELECT current_setting('statement_timeout') AS st, current_setting('application_name') AS app`);
      expect(rows[0]).toEqual({ st: '1234ms', app: 'flowgraph-things' });
      await expect(pool.query('SELECT pg_sleep(2)')).rejects.toMatchObject({ code: '57014' });
    } finally {
      await pool.end();
      await db.drop();
    }
  });
});
