/**
 * Vitest global setup: makes sure the tests have a PostgreSQL admin connection in
 * `FLOWGRAPH_ADMIN_DATABASE_URL` (workers inherit it; `db/testing.ts` reads it).
 *
 * - Set (CI sets it to the machine's PostgreSQL): checked once; a clear error when it does not answer.
 * - Unset: an embedded PostgreSQL is started on 127.0.0.1:54330 (`FLOWGRAPH_TEST_PG_PORT`)
 *   with data in `${FLOWGRAPH_DATA_DIR:-.data}/postgres-test` (reused between runs), and
 *   stopped at teardown.
 *
 * Builds the gateway's web pages when stale (bin/build-web.mjs). Also points `TMPDIR` (read by `os.tmpdir()` in the workers and every process they spawn) at a
 * directory of this run, removed at teardown (test/support/tmpdir.ts): no test leaves anything
 * in the machine's temporary directory.
 */
import path from 'node:path';
import pg from 'pg';
import { startEmbeddedPostgres } from '../../db/embedded.ts';
import { redactUrl } from '../../db/url.ts';
import { createRunTmpdir } from './tmpdir.ts';
import { installTestAuthEnv } from './auth.ts';
import { ensureWebBuilt } from '../../bin/build-web.mjs';

/** Port of the embedded test server. */
export const TEST_PG_PORT = 54330;

/**
 * The run's shared state: vitest calls a global setup once per project (vitest.config.ts has
 * two, and the root config), in one process; the first call does the work, later ones share it,
 * and the last teardown undoes it (nesting `TMPDIR` or starting a second embedded PostgreSQL on
 * the same port would break the run).
 */
const shared = globalThis as { __flowgraphTestSetup?: { users: number; ready: Promise<() => Promise<void>> } };

export default async function setup(): Promise<() => Promise<void>> {
  const state = (shared.__flowgraphTestSetup ??= { users: 0, ready: setUpOnce() });
  state.users++;
  const teardown = await state.ready;
  return async () => {
    if (--state.users > 0) return;
    shared.__flowgraphTestSetup = undefined;
    await teardown();
  };
}

async function setUpOnce(): Promise<() => Promise<void>> {
  // The gateway's /monitor/ and /graphiql/ pages (browser tests, every npm start of a test),
  // built once here when web/ changed, so no test process builds them concurrently.
  if (!(await ensureWebBuilt())) throw new Error('the web pages (web/) cannot be built: the dev dependencies are missing (npm ci)');
  // Client-token secret and the gateway's identity keys, shared by every worker (test/support/auth.ts).
  installTestAuthEnv();
  const tmp = await createRunTmpdir();
  const given = process.env.FLOWGRAPH_ADMIN_DATABASE_URL;
  if (given) {
    await checkAnswers(given).catch(async (error: unknown) => {
      await tmp.remove();
      throw error;
    });
    process.env.TMPDIR = tmp.dir;
    return () => tmp.remove();
  }
  const dataRoot = path.resolve(process.env.FLOWGRAPH_DATA_DIR || '.data');
  const server = await startEmbeddedPostgres({
    port: Number(process.env.FLOWGRAPH_TEST_PG_PORT || TEST_PG_PORT),
    dataDir: path.join(dataRoot, 'postgres-test'),
    secretsFile: path.join(dataRoot, 'secrets-test.json'),
  });
  process.env.FLOWGRAPH_ADMIN_DATABASE_URL = server.adminUrl;
  // Set after the persistent test server started: its data (and any relocation) outlives runs.
  process.env.TMPDIR = tmp.dir;
  return async () => {
    await server.stop();
    await tmp.remove();
  };
}

async function checkAnswers(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => {});
  try {
    await client.connect();
    const { rows } = await client.query<{ su: boolean }>(`SELECT rolsuper AS su FROM pg_roles WHERE rolname = current_user`);
    if (!rows[0]?.su) throw new Error('the role is not a superuser (tests create databases and roles)');
  } catch (err) {
    throw new Error(`FLOWGRAPH_ADMIN_DATABASE_URL (${redactUrl(url)}) does not answer as a PostgreSQL superuser: ${(err as Error).message}. `
      + 'Start that server, fix the variable, or unset it to use an embedded PostgreSQL.');
  } finally {
    await client.end().catch(() => {});
  }
}
