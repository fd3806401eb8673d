/**
 * The database step of a process start (DESIGN.md, "Databases and isolation"): find or create
 * each service's database, open its pool and migrate it.
 */
import type pg from 'pg';
import type { Logger } from 'pino';
import { startEmbeddedPostgres } from '../db/embedded.ts';
import { migrateServiceDatabase } from '../db/migrate.ts';
import { provisionWithStoredPasswords } from '../db/provision.ts';
import { redactUrl } from '../db/url.ts';
import { createServicePool, type DatabaseConfig } from '../config/database.ts';
import type { Lifecycle } from './lifecycle.ts';

/**
 * For each service in `services`:
 * - a service with `<PREFIX>_DATABASE_URL` set uses that database as is;
 * - the others get a database and login role `flowgraph_<service>` provisioned through
 *   `FLOWGRAPH_ADMIN_DATABASE_URL` when set, else through the embedded PostgreSQL
 *   (started on 127.0.0.1:`FLOWGRAPH_EMBEDDED_PG_PORT`, data in `<FLOWGRAPH_DATA_DIR>/postgres`,
 *   reused by the next start); role passwords are kept in `<FLOWGRAPH_DATA_DIR>/secrets.json`.
 * Then opens each service's pool and applies its migrations (Prisma folder + event store schema).
 *
 * Every resource is registered on `lifecycle` as it is created (the embedded server first, so
 * it stops last, after the pools).
 * @returns service name → its pool (owned by `lifecycle`)
 * @throws EmbeddedPostgresError, ProvisionError, MigrationError, StartAborted
 */
export async function prepareServiceDatabases(options: {
  services: readonly string[];
  database: DatabaseConfig;
  logger: Logger;
  lifecycle: Lifecycle;
}): Promise<Record<string, pg.Pool>> {
  const { services, database, logger, lifecycle } = options;
  const urls: Record<string, string> = {};
  const missing: string[] = [];
  for (const service of services) {
    const url = database.services[service]?.url;
    if (url === undefined) missing.push(service);
    else urls[service] = url;
  }

  if (missing.length > 0) {
    let adminUrl = database.adminUrl;
    if (adminUrl === undefined) {
      logger.info({ port: database.embedded.port, dataDir: database.embedded.dataDir }, 'starting the embedded PostgreSQL');
      const embedded = await startEmbeddedPostgres({
        port: database.embedded.port,
        dataDir: database.embedded.dataDir,
        secretsFile: database.secretsFile,
        logger: logger.child({ component: 'postgres' }),
      });
      lifecycle.defer('embedded PostgreSQL', () => embedded.stop());
      lifecycle.throwIfStopping();
      adminUrl = embedded.adminUrl;
    }
    logger.info({ services: missing, server: redactUrl(adminUrl) }, 'provisioning service databases');
    Object.assign(urls, await provisionWithStoredPasswords(adminUrl, missing, database.secretsFile));
    lifecycle.throwIfStopping();
  }

  const pools: Record<string, pg.Pool> = {};
  for (const service of services) {
    const settings = database.services[service]!;
    const pool = createServicePool({ ...settings, url: urls[service]! }, logger.child({ service }));
    lifecycle.defer(`${service} database pool`, () => pool.end());
    pools[service] = pool;
    const { applied } = await migrateServiceDatabase(pool, { service, logger });
    logger.info({ service, database: redactUrl(urls[service]!), applied }, applied.length ? 'migrations applied' : 'database up to date');
    lifecycle.throwIfStopping();
  }
  return pools;
}
