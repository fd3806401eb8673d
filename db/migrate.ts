/**
 * Applies a service's Prisma migrations (`prisma/<service>/migrations/<name>/migration.sql`)
 * without the Prisma CLI (it cannot download its engine offline), keeping the
 * `_prisma_migrations` bookkeeping exactly as `prisma migrate deploy` does, so the CLI can take
 * over on a machine that has it. Then creates the event store's own schema.
 *
 * Compatibility rules, from Prisma's schema engine (migration-connector `checksum.rs`, sql
 * migration persistence): the table DDL below; `checksum` = sha256 hex of the migration.sql
 * text (a file whose line endings were converted by git still matches); a row whose
 * `finished_at` and `rolled_back_at` are both NULL is a failed migration that blocks every
 * later deploy (Prisma's P3009) until it is marked rolled back; runs are serialised by the
 * session advisory lock 72707369 that Prisma takes.
 *
 * Unlike Prisma, each migration runs in its own transaction (BEGIN, script, bookkeeping,
 * COMMIT), so a failing migration leaves no partial schema behind. A migration.sql therefore
 * must not contain statements that cannot run in a transaction (`CREATE INDEX CONCURRENTLY`,
 * `VACUUM`, its own `BEGIN`/`COMMIT`).
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { migrateEventStore } from '../eventstore/index.ts';
import { silentLogger, type DbLogger } from './logger.ts';

/** Repository root (the folder holding `prisma/`). */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Prisma's advisory lock key for migrations (schema engine, PostgreSQL connector). */
export const PRISMA_MIGRATE_LOCK_KEY = 72707369;

/** The `_prisma_migrations` table as Prisma's schema engine creates it on PostgreSQL. */
const MIGRATIONS_TABLE_DDL = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

/** One migration folder. */
export interface MigrationFile {
  /** Folder name, e.g. `20250101000000_init` (applied in ascending order of names). */
  name: string;
  /** Absolute path of its migration.sql. */
  file: string;
  sql: string;
  /** sha256 hex of `sql`, as Prisma stores it. */
  checksum: string;
}

/** The typed refusals and failures of {@link applyPrismaMigrations}. */
export class MigrationError extends Error {
  override readonly name = 'MigrationError';
  constructor(
    /**
     * `CHECKSUM_MISMATCH`: an applied migration's file changed since;
     * `FAILED_MIGRATION_PRESENT`: a previous run failed and was not marked rolled back;
     * `MIGRATION_FAILED`: a migration's SQL failed now (recorded, nothing of it kept);
     * `NO_MIGRATIONS_DIR`: an explicitly given folder does not exist (a missing default
     *   folder means the service has no Prisma migrations).
     */
    readonly code: 'CHECKSUM_MISMATCH' | 'FAILED_MIGRATION_PRESENT' | 'MIGRATION_FAILED' | 'NO_MIGRATIONS_DIR',
    readonly service: string,
    readonly migration: string | undefined,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Options of {@link applyPrismaMigrations}. */
export interface ApplyMigrationsOptions {
  /** Service name, used in messages and errors. */
  service: string;
  /** @default `<repo>/prisma/<service>/migrations` */
  migrationsDir?: string;
  logger?: DbLogger;
}

/** Outcome of a run. */
export interface MigrateResult {
  service: string;
  /** Names of the migrations applied by this run, in order ([] when already up to date). */
  applied: string[];
}

/** sha256 hex of a migration script, Prisma's checksum. */
export function migrationChecksum(sql: string): string {
  return createHash('sha256').update(sql, 'utf8').digest('hex');
}

/** Prisma accepts a checksum computed on either line-ending convention (git autocrlf). */
function checksumMatches(sql: string, checksum: string): boolean {
  const lf = sql.replace(/\r\n/g, '\n');
  return [sql, lf, lf.replace(/\n/g, '\r\n')].some((variant) => migrationChecksum(variant) === checksum);
}

/** The default migrations folder of a service. */
export function migrationsDirOf(service: string): string {
  return path.join(REPO_ROOT, 'prisma', service, 'migrations');
}

/**
 * Reads the migration folders of `dir` (sub-folders holding a `migration.sql`; other entries
 * such as `migration_lock.toml` are ignored), sorted by name.
 */
export async function readMigrations(dir: string): Promise<MigrationFile[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const migrations: MigrationFile[] = [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const file = path.join(dir, entry.name, 'migration.sql');
    if (!existsSync(file)) continue;
    const sql = await readFile(file, 'utf8');
    migrations.push({ name: entry.name, file, sql, checksum: migrationChecksum(sql) });
  }
  return migrations;
}

interface MigrationRow {
  migration_name: string;
  checksum: string;
  finished_at: Date | null;
  rolled_back_at: Date | null;
  logs: string | null;
}

/**
 * Applies the not-yet-applied migrations of a service's folder to the database of `pool`
 * (schema from the connection's `search_path`, normally `public`), each in its own
 * transaction, recorded in `_prisma_migrations` as `prisma migrate deploy` would.
 * Re-running is a no-op.
 * @throws MigrationError (see its `code`); a `MIGRATION_FAILED` is recorded as a failed row
 *   (logs = the error) that blocks later runs until {@link markMigrationRolledBack}.
 */
export async function applyPrismaMigrations(pool: pg.Pool, options: ApplyMigrationsOptions): Promise<MigrateResult> {
  const { service } = options;
  const logger = options.logger ?? silentLogger;
  const dir = options.migrationsDir ?? migrationsDirOf(service);
  if (!existsSync(dir) && options.migrationsDir !== undefined) {
    throw new MigrationError('NO_MIGRATIONS_DIR', service, undefined, `${service}: migrations folder ${dir} does not exist`);
  }
  // A service without prisma/<service>/migrations has no Prisma read models (yet).
  const migrations = existsSync(dir) ? await readMigrations(dir) : [];
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [PRISMA_MIGRATE_LOCK_KEY]);
    try {
      await client.query(MIGRATIONS_TABLE_DDL);
      const { rows } = await client.query<MigrationRow>(
        'SELECT migration_name, checksum, finished_at, rolled_back_at, logs FROM "_prisma_migrations" ORDER BY started_at, migration_name');

      const failed = rows.find((r) => r.finished_at === null && r.rolled_back_at === null);
      if (failed) {
        throw new MigrationError('FAILED_MIGRATION_PRESENT', service, failed.migration_name,
          `${service}: migration ${failed.migration_name} failed earlier and blocks further migrations `
          + `(fix it, then run \`npm run db:migrate -- --service ${service} --rolled-back ${failed.migration_name}\`). Its error: ${failed.logs ?? '(none)'}`);
      }
      const applied = new Map(rows.filter((r) => r.finished_at !== null && r.rolled_back_at === null).map((r) => [r.migration_name, r]));
      for (const m of migrations) {
        const row = applied.get(m.name);
        if (row && !checksumMatches(m.sql, row.checksum)) {
          throw new MigrationError('CHECKSUM_MISMATCH', service, m.name,
            `${service}: migration ${m.name} was modified after it was applied (stored checksum ${row.checksum}, file ${m.checksum}): `
            + 'never edit an applied migration, add a new one');
        }
      }
      const local = new Set(migrations.map((m) => m.name));
      for (const name of applied.keys()) {
        if (!local.has(name)) logger.warn({ service, migration: name }, 'a migration applied to the database is missing from the migrations folder');
      }

      const done: string[] = [];
      for (const m of migrations.filter((x) => !applied.has(x.name))) {
        await applyOne(client, service, m);
        logger.info({ service, migration: m.name }, 'migration applied');
        done.push(m.name);
      }
      return { service, applied: done };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [PRISMA_MIGRATE_LOCK_KEY]).catch(() => {});
    }
  } finally {
    client.release();
  }
}

async function applyOne(client: pg.PoolClient, service: string, m: MigrationFile): Promise<void> {
  const id = randomUUID();
  try {
    await client.query('BEGIN');
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at, applied_steps_count)
       VALUES ($1, $2, $3, now(), 0)`, [id, m.checksum, m.name]);
    // No parameters: the simple query protocol runs the whole multi-statement script.
    await client.query(m.sql);
    await client.query(
      `UPDATE "_prisma_migrations" SET finished_at = clock_timestamp(), applied_steps_count = 1 WHERE id = $1`, [id]);
    await client.query('COMMIT');
  } catch (cause) {
    await client.query('ROLLBACK').catch(() => {});
    const reason = describePgError(cause, m.sql);
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, logs, started_at, applied_steps_count)
       VALUES ($1, $2, $3, $4, now(), 0)`, [id, m.checksum, m.name, reason]).catch(() => {});
    throw new MigrationError('MIGRATION_FAILED', service, m.name,
      `${service}: migration ${m.name} failed and was rolled back: ${reason}`, { cause });
  }
}

/** PostgreSQL's message, SQLSTATE and the line of the script the error position points at. */
function describePgError(err: unknown, sql: string): string {
  const e = err as { message?: string; code?: string; position?: string };
  let where = '';
  if (e.position) {
    const line = sql.slice(0, Number(e.position)).split('\n').length;
    where = ` at line ${line}`;
  }
  return `${e.message ?? String(err)}${e.code ? ` (SQLSTATE ${e.code})` : ''}${where}`;
}

/**
 * Marks a failed migration as rolled back (sets `rolled_back_at`), as
 * `prisma migrate resolve --rolled-back <name>` does, so the next run applies it again.
 * @returns how many failed rows were marked (0 when there was none by that name).
 */
export async function markMigrationRolledBack(pool: pg.Pool, migrationName: string): Promise<number> {
  const r = await pool.query(
    `UPDATE "_prisma_migrations" SET rolled_back_at = now()
      WHERE migration_name = $1 AND finished_at IS NULL AND rolled_back_at IS NULL`, [migrationName]);
  return r.rowCount ?? 0;
}

/**
 * Brings a service's database up to date: its Prisma migrations (schema `public`), then the
 * event store's schema (`migrateEventStore`, schema `eventstore`, idempotent).
 * @throws MigrationError from {@link applyPrismaMigrations}; the event store step is not run then.
 */
export async function migrateServiceDatabase(pool: pg.Pool, options: ApplyMigrationsOptions): Promise<MigrateResult> {
  const result = await applyPrismaMigrations(pool, options);
  await migrateEventStore(pool);
  return result;
}

/** Per-service outcome of {@link migrateServices}. */
export type ServiceMigrateOutcome =
  | { service: string; ok: true; applied: string[] }
  | { service: string; ok: false; error: Error };

/**
 * Migrates several services independently: one service's failure neither stops nor affects
 * the others (they live in separate databases). Never throws; check each outcome's `ok`.
 */
export async function migrateServices(
  targets: Array<{ service: string; pool: pg.Pool; migrationsDir?: string }>, logger?: DbLogger,
): Promise<ServiceMigrateOutcome[]> {
  const outcomes: ServiceMigrateOutcome[] = [];
  for (const t of targets) {
    try {
      const r = await migrateServiceDatabase(t.pool, { service: t.service, migrationsDir: t.migrationsDir, logger });
      outcomes.push({ service: t.service, ok: true, applied: r.applied });
    } catch (err) {
      outcomes.push({ service: t.service, ok: false, error: err as Error });
    }
  }
  return outcomes;
}

/** Some services failed to migrate (the others were migrated); one line per failure in the message. */
export class MigrateServicesError extends Error {
  override readonly name = 'MigrateServicesError';
  constructor(readonly failures: Array<{ service: string; error: Error }>) {
    super(`migration failed for ${failures.map((f) => f.service).join(', ')}:\n${failures.map((f) => `  ${f.error.message}`).join('\n')}`);
  }
}

