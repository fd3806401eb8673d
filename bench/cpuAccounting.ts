/**
 * CPU time of the processes a benchmark runs beside, read from Linux's `/proc` (so that a
 * benchmark can say where a wall-clock gap went): a process's threads one by one, and the local
 * PostgreSQL server's backends grouped by database. Linux only; elsewhere every reading is empty.
 *
 * Units: seconds of CPU (user + system), from clock ticks (`getconf CLK_TCK`, 100 on Linux).
 * A reading is a snapshot; subtract two with {@link cpuDelta}.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ, 100 on every Linux build in use). */
const TICKS_PER_SECOND = 100;

/** CPU seconds per named part, e.g. `{ 'main thread': 12.3, 'other threads': 40.1 }`. */
export type CpuReading = Record<string, number>;

/** Fields of a `/proc/.../stat` line after the `(comm)` field, which may itself hold spaces. */
function statFields(path: string): string[] | undefined {
  try {
    const text = readFileSync(path, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined; // the process or thread ended meanwhile
  }
}

/** utime + stime (+ cutime + cstime when `children`) of a stat line's fields, in seconds. */
function cpuOf(fields: string[], children = false): number {
  // After "(comm) ": state is index 0, so utime/stime/cutime/cstime (fields 14..17) are 11..14.
  const ticks = Number(fields[11]) + Number(fields[12]) + (children ? Number(fields[13]) + Number(fields[14]) : 0);
  return ticks / TICKS_PER_SECOND;
}

/**
 * CPU seconds of process `pid`'s threads so far: `main thread` (the thread whose id is the
 * process id: a Node process's JavaScript event loop) and `other threads` (worker threads, V8's
 * and libuv's helper threads), as long as they live; a thread that ended is no longer counted.
 */
export function threadCpu(pid: number): CpuReading {
  const reading: CpuReading = { 'main thread': 0, 'other threads': 0 };
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return {};
  }
  for (const tid of tids) {
    const fields = statFields(`/proc/${pid}/task/${tid}/stat`);
    if (fields) reading[Number(tid) === pid ? 'main thread' : 'other threads']! += cpuOf(fields);
  }
  return reading;
}

/**
 * CPU seconds of the local PostgreSQL servers' backends so far, by database (`postgres: <cluster>:
 * <user> <database> ...` in a backend's command line; auxiliary processes such as the WAL writer
 * and checkpointer under `server processes`), and `ended backends`: the postmasters' reaped
 * children (cutime + cstime), which holds the backends that ended since the server started.
 */
export function postgresCpu(): CpuReading {
  const reading: CpuReading = {};
  const add = (key: string, seconds: number) => (reading[key] = (reading[key] ?? 0) + seconds);
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return reading;
  }
  for (const pid of pids) {
    let comm: string;
    let cmdline: string;
    try {
      comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
    } catch {
      continue;
    }
    if (comm !== 'postgres') continue;
    const fields = statFields(`/proc/${pid}/stat`);
    if (!fields) continue;
    if (!cmdline.startsWith('postgres:')) {
      add('ended backends', cpuOf(fields, true) - cpuOf(fields)); // the postmaster: its reaped children
      add('server processes', cpuOf(fields));
      continue;
    }
    // "postgres: 15/main: user database 127.0.0.1(5432) idle" or "postgres: 15/main: walwriter"
    const rest = cmdline.replace(/^postgres:\s+(\S+:\s+)?/, '').split(/\s+/);
    add(rest.length >= 3 ? `database ${rest[1]}` : 'server processes', cpuOf(fields));
  }
  return reading;
}

/** `after - before` per part (parts only in `after` count from zero), parts under 0.005 s dropped. */
export function cpuDelta(before: CpuReading, after: CpuReading): CpuReading {
  const delta: CpuReading = {};
  for (const [key, value] of Object.entries(after)) {
    const d = value - (before[key] ?? 0);
    if (d >= 0.005) delta[key] = d;
  }
  return delta;
}

/** Sum of a reading's parts, in CPU seconds. */
export const cpuTotal = (reading: CpuReading): number => Object.values(reading).reduce((a, b) => a + b, 0);
