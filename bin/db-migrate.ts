/**
 * `npm run db:migrate [-- --service workflows [--service content]] [--rolled-back <migration>]`
 *
 * Brings the service databases up to date (Prisma migrations of `prisma/<service>/migrations`
 * and the event store schema), the same way `npm start` does: with `<PREFIX>_DATABASE_URL`
 * when set, otherwise provisioning through `FLOWGRAPH_ADMIN_DATABASE_URL` or the embedded
 * PostgreSQL. Every service is attempted; exit code 1 when any failed.
 *
 * `--rolled-back <migration>` (one service only) first marks that failed migration as rolled
 * back, like `prisma migrate resolve --rolled-back`, so it is applied again.
 */
import { Command } from 'commander';
import pino from 'pino';
import { parseDatabaseConfig, createServicePool } from '../config/database.ts';
import { SERVICES } from '../config/services.ts';
import { prepareServiceDatabases } from '../db/bootstrap.ts';
import { markMigrationRolledBack, MigrateServicesError } from '../db/migrate.ts';
import { provisionWithStoredPasswords } from '../db/provision.ts';
import { startEmbeddedPostgres } from '../db/embedded.ts';

const program = new Command('db-migrate')
  .description('apply Prisma migrations and the event store schema to the service databases')
  .option('-s, --service <name...>', `services to migrate (default: all of ${SERVICES.map((s) => s.name).join(', ')})`)
  .option('--rolled-back <migration>', 'mark this failed migration as rolled back first (needs exactly one --service)')
  .parse();
const opts = program.opts<{ service?: string[]; rolledBack?: string }>();

const logger = pino({ level: process.env.LOG_LEVEL ?? 'info' });
const known = SERVICES.map((s) => s.name);
const services = opts.service ?? known;
const unknown = services.filter((s) => !known.includes(s));
if (unknown.length > 0) program.error(`unknown service(s) ${unknown.join(', ')}: expected ${known.join(', ')}`);
if (opts.rolledBack && services.length !== 1) program.error('--rolled-back needs exactly one --service');

try {
  const config = parseDatabaseConfig(process.env, SERVICES);
  if (opts.rolledBack) await markRolledBack(services[0]!, opts.rolledBack);
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

async function markRolledBack(service: string, migration: string): Promise<void> {
  const config = parseDatabaseConfig(process.env, SERVICES);
  const serviceConfig = config.services[service]!;
  let url = serviceConfig.url;
  let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
  try {
    if (!url) {
      let adminUrl = config.adminUrl;
      if (!adminUrl) {
        embedded = await startEmbeddedPostgres({ port: config.embedded.port, dataDir: config.embedded.dataDir, secretsFile: config.secretsFile, logger });
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
    await embedded?.stop();
  }
}
