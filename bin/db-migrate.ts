/**
 * `npm run db:migrate [-- --service workflows [--service content]] [--rolled-back <migration>]`
 *
 * Brings the service databases up to date (Prisma migrations of `prisma/<service>/migrations`
 * and the event store schema), the same way `npm start` does: with `<PREFIX>_DATABASE_URL`
 * when set, otherwise provisioning through `FLOWGRAPH_ADMIN_DATABASE_URL` or the embedded
 * PostgreSQL. While `npm start` runs the embedded PostgreSQL of the same `FLOWGRAPH_DATA_DIR`,
 * that running server is used (db/embeddedAdmin.ts). Every service is attempted; exit code 1
 * when any failed; exit code 2, before anything is done, for a bad variable (`LOG_LEVEL`...).
 *
 * `--rolled-back <migration>` (one service only) first marks that failed migration as rolled
 * back, like `prisma migrate resolve --rolled-back`, so it is applied again.
 */
import { Command } from 'commander';
import pino from 'pino';
import { parseDatabaseConfig, createServicePool, type DatabaseConfig } from '../config/database.ts';
import { configOrExit, parseCommonEnv } from '../config/env.ts';
import { SERVICES } from '../config/services.ts';
import { prepareServiceDatabases } from '../db/bootstrap.ts';
import { markMigrationRolledBack, MigrateServicesError } from '../db/migrate.ts';
import { provisionWithStoredPasswords } from '../db/provision.ts';
import { openEmbeddedAdmin, type EmbeddedAdmin } from '../db/embeddedAdmin.ts';

const program = new Command('db-migrate')
  .description('apply Prisma migrations and the event store schema to the service databases')
  .option('-s, --service <name...>', `services to migrate (default: all of ${SERVICES.map((s) => s.name).join(', ')})`)
  .option('--rolled-back <migration>', 'mark this failed migration as rolled back first (needs exactly one --service)')
  .parse();
const opts = program.opts<{ service?: string[]; rolledBack?: string }>();

const { logLevel } = await configOrExit(() => parseCommonEnv(process.env));
const config = await configOrExit(() => parseDatabaseConfig(process.env, SERVICES));
const logger = pino({ level: logLevel });
const known = SERVICES.map((s) => s.name);
const services = opts.service ?? known;
const unknown = services.filter((s) => !known.includes(s));
if (unknown.length > 0) program.error(`unknown service(s) ${unknown.join(', ')}: expected ${known.join(', ')}`);
if (opts.rolledBack && services.length !== 1) program.error('--rolled-back needs exactly one --service');

try {
  if (opts.rolledBack) await markRolledBack(config, services[0]!, opts.rolledBack);
  const prepared = await prepareServiceDatabases(config, services, logger);
  await prepared.close();
  logger.info({ services }, 'all service databases are up to date');
} catch (err) {
  if (err instanceof MigrateServicesError) {
    for (const f of err.failures) logger.error({ service: f.service }, f.error.message);
  } else {
    logger.error(err instanceof Error ? err.message : String(err));
  }
  process.exitCode = 1;
}

async function markRolledBack(config: DatabaseConfig, service: string, migration: string): Promise<void> {
  const serviceConfig = config.services[service]!;
  let url = serviceConfig.url;
  let embedded: EmbeddedAdmin | undefined;
  try {
    if (!url) {
      let adminUrl = config.adminUrl;
      if (!adminUrl) {
        embedded = await openEmbeddedAdmin({ port: config.embedded.port, dataDir: config.embedded.dataDir, secretsFile: config.secretsFile, logger });
        adminUrl = embedded.adminUrl;
      }
      url = (await provisionWithStoredPasswords(adminUrl, [service], config.secretsFile))[service]!;
    }
    const pool = createServicePool({ ...serviceConfig, url }, logger);
    try {
      const n = await markMigrationRolledBack(pool, migration);
      logger.info({ service, migration, marked: n }, n ? 'failed migration marked as rolled back' : 'no failed migration by that name');
    } finally {
      await pool.end();
    }
  } finally {
    await embedded?.close();
  }
}
