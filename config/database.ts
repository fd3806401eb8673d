/**
 * Database configuration, parsed once from the environment at a composition root (README,
 * "Configuration"; DESIGN.md, "Databases and isolation"), and the pool factory every service
 * uses.
 */
import path from 'node:path';
import pg from 'pg';
import { z } from 'zod';
import { DEFAULT_EMBEDDED_PG_PORT } from '../db/embedded.ts';
import { silentLogger, type DbLogger } from '../db/logger.ts';
import { redactUrl } from '../db/url.ts';

/** One service's database settings. */
export interface ServiceDatabaseConfig {
  service: string;
  /** `<PREFIX>_DATABASE_URL`; undefined when unset (the role is then provisioned via the admin URL). */
  url: string | undefined;
  /** `<PREFIX>_DB_POOL_MAX`: most connections of the service's pool. @default 10 */
  poolMax: number;
  /** `<PREFIX>_DB_STATEMENT_TIMEOUT_MS`: server-side `statement_timeout` of every session, in ms (0 = none). @default 30000 */
  statementTimeoutMs: number;
  /** `<PREFIX>_DB_IDLE_TIMEOUT_MS`: an idle pooled connection is closed after this many ms. @default 10000 */
  idleTimeoutMs: number;
}

/** The database configuration of a process. */
export interface DatabaseConfig {
  /** `FLOWGRAPH_ADMIN_DATABASE_URL`: superuser connection used only to create databases and roles. */
  adminUrl: string | undefined;
  /** `FLOWGRAPH_DATA_DIR`, absolute. @default `<cwd>/.data` */
  dataDir: string;
  /** `<dataDir>/secrets.json`: generated passwords of the embedded server and of the service roles. */
  secretsFile: string;
  embedded: {
    /** `FLOWGRAPH_EMBEDDED_PG_PORT`. @default 54329 */
    port: number;
    /** `<dataDir>/postgres`. */
    dataDir: string;
  };
  /** Per service, keyed by service name. */
  services: Record<string, ServiceDatabaseConfig>;
}

/** The configuration is invalid; the message lists every offending variable. */
export class DatabaseConfigError extends Error {
  override readonly name = 'DatabaseConfigError';
}

const postgresUrl = z.string().refine((value) => {
  try {
    return ['postgres:', 'postgresql:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, 'expected a postgres:// or postgresql:// connection string');

const optionalUrl = z.preprocess((v) => (v === '' ? undefined : v), postgresUrl.optional());
const intIn = (min: number, def: number) => z.preprocess((v) => (v === '' || v === undefined ? def : v),
  z.coerce.number().int().min(min));

/**
 * Parses the database variables of `env` for the given services.
 * @param services name and environment prefix of each service, e.g. `{ name: 'workflows', envPrefix: 'WORKFLOWS' }`
 *   (config/services.ts's `SERVICES` fits).
 * @throws DatabaseConfigError naming each bad variable and what was expected.
 */
export function parseDatabaseConfig(
  env: NodeJS.ProcessEnv, services: ReadonlyArray<{ name: string; envPrefix: string }>,
): DatabaseConfig {
  const shape: Record<string, z.ZodType> = {
    FLOWGRAPH_ADMIN_DATABASE_URL: optionalUrl,
    FLOWGRAPH_DATA_DIR: z.preprocess((v) => (v === '' || v === undefined ? '.data' : v), z.string()),
    FLOWGRAPH_EMBEDDED_PG_PORT: intIn(1, DEFAULT_EMBEDDED_PG_PORT).pipe(z.number().max(65535)),
  };
  for (const { envPrefix: p } of services) {
    shape[`${p}_DATABASE_URL`] = optionalUrl;
    shape[`${p}_DB_POOL_MAX`] = intIn(1, 10);
    shape[`${p}_DB_STATEMENT_TIMEOUT_MS`] = intIn(0, 30_000);
    shape[`${p}_DB_IDLE_TIMEOUT_MS`] = intIn(0, 10_000);
  }
  const parsed = z.object(shape).safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const name = String(i.path[0]);
      const value = env[name];
      const shown = value === undefined ? 'unset' : name.endsWith('_URL') ? redactUrl(value) : JSON.stringify(value);
      return `  ${name}: ${i.message} (got ${shown})`;
    });
    throw new DatabaseConfigError(`invalid database configuration:\n${lines.join('\n')}`);
  }
  const v = parsed.data as Record<string, unknown>;
  const dataDir = path.resolve(v.FLOWGRAPH_DATA_DIR as string);
  return {
    adminUrl: v.FLOWGRAPH_ADMIN_DATABASE_URL as string | undefined,
    dataDir,
    secretsFile: path.join(dataDir, 'secrets.json'),
    embedded: { port: v.FLOWGRAPH_EMBEDDED_PG_PORT as number, dataDir: path.join(dataDir, 'postgres') },
    services: Object.fromEntries(services.map(({ name, envPrefix: p }) => [name, {
      service: name,
      url: v[`${p}_DATABASE_URL`] as string | undefined,
      poolMax: v[`${p}_DB_POOL_MAX`] as number,
      statementTimeoutMs: v[`${p}_DB_STATEMENT_TIMEOUT_MS`] as number,
      idleTimeoutMs: v[`${p}_DB_IDLE_TIMEOUT_MS`] as number,
    }])),
  };
}

/** Time allowed to open a connection, in ms (pg's `connectionTimeoutMillis`). */
export const CONNECTION_TIMEOUT_MS = 5_000;

/**
 * A pg pool for one service: `max` = poolMax, server-side `statement_timeout` sent in the
 * connection's startup parameters, `idleTimeoutMillis` = idleTimeoutMs,
 * `connectionTimeoutMillis` = 5000. An error on an idle client (e.g. the server restarted) is
 * logged, not thrown: the pool drops that client and the next query reconnects.
 * The caller owns the pool and ends it (`pool.end()`, once).
 * @param config the service's settings with its resolved login URL.
 */
export function createServicePool(config: ServiceDatabaseConfig & { url: string }, logger: DbLogger = silentLogger): pg.Pool {
  const pool = new pg.Pool({
    connectionString: config.url,
    max: config.poolMax,
    idleTimeoutMillis: config.idleTimeoutMs,
    connectionTimeoutMillis: CONNECTION_TIMEOUT_MS,
    statement_timeout: config.statementTimeoutMs,
    application_name: `flowgraph-${config.service}`,
  });
  pool.on('error', (err) => {
    logger.warn({ service: config.service, err: { message: err.message, code: (err as { code?: string }).code } },
      'idle database connection failed (dropped from the pool)');
  });
  return pool;
}
