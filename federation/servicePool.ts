/**
 * The database pool of a subgraph service: borrowed from the caller (tests, the composition
 * root's `config/database.ts` `createServicePool`) or created from a connection string and then
 * owned, i.e. ended by the service's `close()`.
 */
import pg from 'pg';
import type { Logger } from '../eventstore/index.ts';

/** Where a service's pool comes from: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface ServicePoolOptions {
  /** Pool on the service's migrated database; not ended by the service's `close()`. */
  pool?: pg.Pool;
  /** Connection string; the service creates a pool (max 10) and ends it on `close()`. Ignored when `pool` is given. */
  databaseUrl?: string;
}

/** A service's pool and how to let go of it. */
export interface ServicePool {
  /** The pool to query. */
  pool: pg.Pool;
  /** True when the pool was created here from `databaseUrl`. */
  owned: boolean;
  /** Ends the pool when owned (once; later calls return the same promise); does nothing for a borrowed pool. */
  close(): Promise<void>;
}

/** Connections of a pool created from `databaseUrl`. */
export const SERVICE_POOL_MAX = 10;

/**
 * Returns `options.pool` as is (borrowed), or creates a pool of {@link SERVICE_POOL_MAX}
 * connections on `options.databaseUrl` (owned) whose idle-connection errors are logged at
 * error level as `<name>: idle database connection failed` instead of crashing the process.
 * @param name the service's name in log messages, e.g. `workflows`.
 * @throws Error when neither `pool` nor `databaseUrl` is given
 */
export function servicePool(options: ServicePoolOptions, logger: Logger, name: string): ServicePool {
  if (options.pool) return { pool: options.pool, owned: false, close: async () => {} };
  if (!options.databaseUrl) throw new Error(`${name}: a service needs \`pool\` or \`databaseUrl\``);
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: SERVICE_POOL_MAX });
  pool.on('error', (error) => logger.error({ err: error }, `${name}: idle database connection failed`));
  let ending: Promise<void> | undefined;
  return { pool, owned: true, close: () => (ending ??= pool.end()) };
}
