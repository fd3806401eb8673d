/**
 * Child processes of `bench:subscriptions` (services, appender, gateways) and the small
 * request/response protocol the benchmark speaks with them over Node's IPC channel.
 *
 * Parent: `spawnBenchChild(script, { args, env, execArgv })` runs `node --import tsx <script>`
 * (the pid is the process itself, not a tsx wrapper, so its CPU and memory can be read from
 * /proc) and returns `call(command, args)`. Child: `serveBenchCommands({ start, ... })`.
 * A child exits when its parent's IPC channel closes (the parent crashed or was killed), and
 * ignores SIGINT (Ctrl-C reaches the whole process group; the parent decides what stops).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

interface Request {
  id: number;
  command: string;
  args: unknown;
}
type Response = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

/** A running child. */
export interface BenchChild {
  readonly name: string;
  readonly pid: number;
  readonly child: ChildProcess;
  /**
   * Sends `command` and resolves with the child's result.
   * @throws Error with the child's message, or when it exits first or `timeoutMs` passes
   */
  call<T = unknown>(command: string, args?: unknown, timeoutMs?: number): Promise<T>;
  /** The last lines it wrote on stdout and stderr. */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
  readonly exited: Promise<void>;
}

/** Spawns `bench/<script>` under tsx with an IPC channel. */
export function spawnBenchChild(
  name: string,
  script: string,
  options: { args?: string[]; env?: Record<string, string | undefined>; execArgv?: string[] } = {},
): BenchChild {
  const child = spawn(process.execPath, [...(options.execArgv ?? []), '--import', 'tsx', path.join(ROOT, 'bench', script), ...(options.args ?? [])], {
    cwd: ROOT,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
  });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim() !== '') lines.push(line);
    if (lines.length > 5000) lines.splice(0, lines.length - 5000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let nextId = 1;
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void; timer: NodeJS.Timeout }>();
  let exitedFlag = false;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exitedFlag = true;
      for (const [, p] of pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`${name} exited (code ${code}, signal ${signal}) before answering:\n${lines.slice(-40).join('\n')}`));
      }
      pending.clear();
      resolve();
    }),
  );
  child.on('message', (message: Response) => {
    const p = pending.get(message.id);
    if (!p) return;
    pending.delete(message.id);
    clearTimeout(p.timer);
    if (message.ok) p.resolve(message.result);
    else p.reject(new Error(`${name}: ${message.error}`));
  });
  child.on('error', () => {});
  return {
    name,
    pid: child.pid!,
    child,
    exited,
    output: () => lines.join('\n'),
    call<T>(command: string, args?: unknown, timeoutMs = 120_000): Promise<T> {
      if (exitedFlag) return Promise.reject(new Error(`${name} has exited:\n${lines.slice(-40).join('\n')}`));
      const id = nextId++;
      return new Promise<T>((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          reject(new Error(`${name}: no answer to ${command} within ${timeoutMs} ms`));
        }, timeoutMs);
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
        child.send({ id, command, args } satisfies Request);
      });
    },
    async stop(graceMs = 5_000) {
      if (exitedFlag) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/**
 * Child side: answers the parent's commands with `handlers[command](args)`. SIGTERM runs
 * `onStop` (if given) then exits 0; losing the parent exits at once.
 */
export function serveBenchCommands(handlers: Record<string, (args: any) => unknown>, onStop?: () => Promise<void>): void {
  if (!process.send) throw new Error('this script is a child of bench/subscriptions.ts (it needs an IPC channel)');
  process.on('SIGINT', () => {});
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    const timer = setTimeout(() => process.exit(code), 4_000);
    timer.unref();
    await onStop?.().catch(() => {});
    process.exit(code);
  };
  process.on('SIGTERM', () => void stop(0));
  process.on('disconnect', () => void stop(1));
  process.on('message', (message: Request) => {
    void (async () => {
      let response: Response;
      try {
        const handler = handlers[message.command];
        if (!handler) throw new Error(`unknown command ${message.command}`);
        response = { id: message.id, ok: true, result: await handler(message.args) };
      } catch (error) {
        response = { id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) };
      }
      if (process.connected) process.send!(response);
    })();
  });
}

/**
 * CPU time the process `pid` has used, in µs: the sum of its threads' run time from
 * /proc/<pid>/task/<tid>/schedstat (ns resolution), else utime + stime of /proc/<pid>/stat
 * (clock ticks). Linux only.
 */
export async function processCpuMicros(pid: number): Promise<number> {
  const { readdir, readFile } = await import('node:fs/promises');
  try {
    const tids = await readdir(`/proc/${pid}/task`);
    let ns = 0;
    for (const tid of tids) {
      const text = await readFile(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').catch(() => '');
      const first = Number(text.split(' ')[0]);
      if (Number.isFinite(first)) ns += first;
    }
    if (ns > 0) return ns / 1000;
  } catch {
    // fall through
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks / 100) * 1e6;
}

/** Resident set size of `pid` in bytes (VmRSS of /proc/<pid>/status). */
export async function processRssBytes(pid: number): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) * 1024 : NaN;
}
