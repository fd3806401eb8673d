/**
 * One temporary directory per test run (`$TMPDIR` of every test worker and of every process a
 * test spawns), removed at the end of the run: whatever a test or a helper creates with
 * `mkdtemp(os.tmpdir())` and forgets (corpus fixtures, embedded PostgreSQL data directories,
 * nats-server store directories, initdb password files) goes with it, so runs leave nothing in
 * the machine's `/tmp`.
 */
import { mkdtemp, readdir, chmod, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Name prefix of a run directory: `flowgraph-tests-<pid of the vitest process>-<random>`. */
export const RUN_DIR_PREFIX = 'flowgraph-tests-';

/** A run's temporary directory. */
export interface RunTmpdir {
  /** Absolute path, mode 755 (the embedded PostgreSQL's OS user must traverse it when tests run as root). */
  dir: string;
  /** Removes the directory and everything in it. Idempotent. */
  remove(): Promise<void>;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Creates this run's directory under `parent` (default the machine's `os.tmpdir()`), after
 * removing run directories left by runs whose vitest process is gone (a killed run never got
 * to its teardown); a concurrent run's directory (its pid alive) is left alone.
 */
export async function createRunTmpdir(parent: string = os.tmpdir()): Promise<RunTmpdir> {
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const pid = Number(name.slice(RUN_DIR_PREFIX.length).split('-')[0]);
    if (name.startsWith(RUN_DIR_PREFIX) && Number.isInteger(pid) && pid > 0 && !alive(pid)) {
      await rm(path.join(parent, name), { recursive: true, force: true }).catch(() => {});
    }
  }
  const dir = await mkdtemp(path.join(parent, `${RUN_DIR_PREFIX}${process.pid}-`));
  await chmod(dir, 0o755);
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
