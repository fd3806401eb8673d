/**
 * The embedded PostgreSQL for a command that only needs it for a while (`npm run db:migrate`,
 * `npm run rebuild`): started by the command when nobody runs it, or, while `npm start` runs it
 * (its data directory is then locked: `DATA_DIR_IN_USE`), the running server itself.
 */
import { readFile, realpath } from 'node:fs/promises';
import pg from 'pg';
import { EmbeddedPostgresError, startEmbeddedPostgres, SUPERUSER_SECRET_KEY } from './embedded.ts';
import { silentLogger, type DbLogger } from './logger.ts';

/** The embedded server a command uses. */
export interface EmbeddedAdmin {
  /** Superuser connection string of the server. */
  adminUrl: string;
  /**
   * `started`: this command started the server and {@link EmbeddedAdmin.close} stops it;
   * `attached`: another process (e.g. `npm start`, pid `ownerPid`) runs it and keeps running it.
   */
  mode: 'started' | 'attached';
  /** With `attached`: the pid of the process that runs the server. */
  ownerPid?: number;
  /** Stops the server when this command started it; nothing when attached. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the embedded PostgreSQL of `dataDir` (see `startEmbeddedPostgres`), or, when a live
 * process already runs it (`DATA_DIR_IN_USE`), connects to that server instead: port from its
 * owner lock (`<dataDir>.lock`), superuser password from `secretsFile` (the same file the owner
 * used, as both read `FLOWGRAPH_DATA_DIR`). The server answering on that port must report the
 * locked data directory.
 * @throws EmbeddedPostgresError as `startEmbeddedPostgres` does; `DATA_DIR_IN_USE` (message: what
 *   to do) when the running server cannot be reached or its password is not in `secretsFile`
 */
export async function openEmbeddedAdmin(options: {
  port: number; dataDir: string; secretsFile: string; logger?: DbLogger;
}): Promise<EmbeddedAdmin> {
  const logger = options.logger ?? silentLogger;
  try {
    const server = await startEmbeddedPostgres(options);
    return { adminUrl: server.adminUrl, mode: 'started', close: () => server.stop() };
  } catch (error) {
    if (!(error instanceof EmbeddedPostgresError) || error.code !== 'DATA_DIR_IN_USE' || !error.owner || error.owner.pid === process.pid) throw error;
    const owner = error.owner;
    const cannot = (why: string, cause?: unknown) => new EmbeddedPostgresError('DATA_DIR_IN_USE',
      `the data directory ${options.dataDir} is in use by flowgraph process ${owner.pid}, whose embedded PostgreSQL (port ${owner.port}) `
      + `cannot be used from here (${why}): stop that process first, or point this command at its database with FLOWGRAPH_ADMIN_DATABASE_URL`,
      { cause, owner });
    const secrets = await readFile(options.secretsFile, 'utf8').then((text) => JSON.parse(text) as Record<string, unknown>, () => ({} as Record<string, unknown>));
    const password = secrets[SUPERUSER_SECRET_KEY];
    if (typeof password !== 'string') throw cannot(`no superuser password under "${SUPERUSER_SECRET_KEY}" in ${options.secretsFile}`);
    const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${owner.port}/postgres`;
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 5_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
      const answering = await realpath(rows[0]!.data_directory).catch(() => rows[0]!.data_directory);
      const locked = await realpath(owner.dataDir).catch(() => owner.dataDir);
      if (answering !== locked) throw cannot(`the server on port ${owner.port} serves ${answering}, not ${locked}`);
    } catch (cause) {
      if (cause instanceof EmbeddedPostgresError) throw cause;
      throw cannot((cause as Error).message, cause);
    } finally {
      await client.end().catch(() => {});
    }
    logger.info({ pid: owner.pid, port: owner.port }, `using the embedded PostgreSQL that flowgraph process ${owner.pid} runs (port ${owner.port})`);
    return { adminUrl, mode: 'attached', ownerPid: owner.pid, close: async () => {} };
  }
}
