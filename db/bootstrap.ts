/**
 * The database half of `npm start` / `start:service` (DESIGN.md, "Databases and isolation"):
 * decide which PostgreSQL to use, create what is missing, migrate, and hand back one login URL
 * per service.
 */
import type { DatabaseConfig } from '../config/database.ts';
import { createServicePool } from '../config/database.ts';
import { openEmbeddedAdmin, type EmbeddedAdmin } from './embeddedAdmin.ts';
import { silentLogger, type DbLogger } from './logger.ts';
import { MigrateServicesError, migrateServices } from './migrate.ts';
import { provisionWithStoredPasswords } from './provision.ts';

/** What {@link prepareServiceDatabases} set up. */
export interface PreparedDatabases {
  /** Service name → login URL of its role on its own database. */
  urls: Record<string, string>;
  /**
   * The embedded server, when one is used (undefined with an external PostgreSQL): started by
   * this call, or the one a running `npm start` of the same data directory runs (`mode: 'attached'`).
   */
  embedded: EmbeddedAdmin | undefined;
  /** Stops the embedded server if this call started it. Call after every pool is ended. Idempotent. */
  close(): Promise<void>;
}

/**
 * For each named service:
 * - `<PREFIX>_DATABASE_URL` set: used as is (the database must exist; it is migrated);
 * - unset: its database and role are provisioned through `FLOWGRAPH_ADMIN_DATABASE_URL`, or,
 *   when that is unset too, through an embedded PostgreSQL started on
 *   `FLOWGRAPH_EMBEDDED_PG_PORT` with data in `<FLOWGRAPH_DATA_DIR>/postgres` (or, while another
 *   process such as `npm start` runs that server, through the running server: `openEmbeddedAdmin`); role passwords
 *   are kept in `<FLOWGRAPH_DATA_DIR>/secrets.json`.
 * Then every service's database is migrated (Prisma migrations + event store schema) with the
 * service's own role, so the role owns what it creates.
 * Services migrate independently: one failing leaves the others migrated.
 * @throws MigrateServicesError (its `failures` hold each service's MigrationError), ProvisionError,
 *   EmbeddedPostgresError; the embedded server is stopped again when a later step fails.
 */
export async function prepareServiceDatabases(
  config: DatabaseConfig, serviceNames: readonly string[], logger: DbLogger = silentLogger,
): Promise<PreparedDatabases> {
  const missing = serviceNames.filter((name) => !config.services[name]?.url);
  let embedded: EmbeddedAdmin | undefined;
  const close = async () => { await embedded?.close(); };
  try {
    const urls: Record<string, string> = {};
    for (const name of serviceNames) {
      const url = config.services[name]?.url;
      if (url) urls[name] = url;
    }
    if (missing.length > 0) {
      let adminUrl = config.adminUrl;
      if (!adminUrl) {
        embedded = await openEmbeddedAdmin({
          port: config.embedded.port, dataDir: config.embedded.dataDir, secretsFile: config.secretsFile, logger,
        });
        adminUrl = embedded.adminUrl;
      }
      Object.assign(urls, await provisionWithStoredPasswords(adminUrl, missing, config.secretsFile));
    }
    const pools = serviceNames.map((name) => {
      const service = config.services[name];
      if (!service) throw new Error(`no database configuration for service ${name}`);
      return { service: name, pool: createServicePool({ ...service, url: urls[name]!, poolMax: 2 }, logger) };
    });
    try {
      const outcomes = await migrateServices(pools, logger);
      const failures = outcomes.flatMap((o) => (o.ok ? [] : [{ service: o.service, error: o.error }]));
      if (failures.length > 0) throw new MigrateServicesError(failures);
      for (const o of outcomes) if (o.ok) logger.info({ service: o.service, applied: o.applied }, o.applied.length ? 'database migrated' : 'database up to date');
    } finally {
      await Promise.all(pools.map((p) => p.pool.end()));
    }
    return { urls, embedded, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}
