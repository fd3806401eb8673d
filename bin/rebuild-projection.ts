/**
 * `npm run rebuild -- --service workflows [--projection workflows.runs]`
 *
 * Rebuilds a service's projections from position zero of its event log (DESIGN.md,
 * "Projections"), with a progress bar on a terminal. Inline projections block the service's
 * appends while they replay (see `rebuildProjection`); async ones need their consumer stopped.
 * Databases are found as `npm run db:migrate` finds them (`<PREFIX>_DATABASE_URL`, else
 * provisioned through the admin URL or the embedded PostgreSQL; while `npm start` runs that
 * embedded server, the running server is used). A bad variable (`LOG_LEVEL`...) exits 2 before
 * anything is done; a failure prints one line (no stack) and exits 1.
 */
import { Command } from 'commander';
import pino from 'pino';
import { createServicePool, parseDatabaseConfig } from '../config/database.ts';
import { configOrExit, parseCommonEnv } from '../config/env.ts';
import { SERVICES } from '../config/services.ts';
import { prepareServiceDatabases } from '../db/bootstrap.ts';
import { createEventStore, rebuildProjection, type Projection } from '../eventstore/index.ts';

const program = new Command('rebuild')
  .description("replay a service's projections from the start of its event log")
  .requiredOption('-s, --service <name>', `one of ${SERVICES.map((s) => s.name).join(', ')}`)
  .option('-p, --projection <name...>', 'projection names (default: all of the service)')
  .option('--no-progress', 'no progress bar even on a terminal')
  .parse();
const opts = program.opts<{ service: string; projection?: string[]; progress: boolean }>();
const { logLevel } = await configOrExit(() => parseCommonEnv(process.env));
const config = await configOrExit(() => parseDatabaseConfig(process.env, SERVICES));
const logger = pino({ level: logLevel });

type ProjectionsModule = { projections: readonly Projection[]; projectionMode: 'inline' | 'async' };
const module: ProjectionsModule = await import(`../subgraphs/${opts.service}/projections/index.ts`).catch(() =>
  program.error(`service "${opts.service}" has no projections module (subgraphs/${opts.service}/projections/index.ts)`),
);
const chosen = opts.projection
  ? opts.projection.map((name) => module.projections.find((p) => p.name === name) ?? program.error(`unknown projection "${name}": expected ${module.projections.map((p) => p.name).join(', ')}`))
  : module.projections;

const prepared = await prepareServiceDatabases(config, [opts.service], logger).catch((error: unknown) => {
  logger.error(error instanceof Error ? error.message : String(error));
  process.exit(1);
});
const pool = createServicePool({ ...config.services[opts.service]!, url: prepared.urls[opts.service]! }, logger);
const store = createEventStore({ pool, logger });
try {
  for (const projection of chosen) {
    const started = Date.now();
    const { events } = await rebuildProjection(store, projection, { mode: module.projectionMode, progress: opts.progress && Boolean(process.stderr.isTTY) });
    logger.info({ projection: projection.name, events, ms: Date.now() - started }, 'projection rebuilt');
  }
} catch (error) {
  logger.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
} finally {
  await store.close();
  await pool.end();
  await prepared.close();
}
