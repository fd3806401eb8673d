/**
 * Real flowgraph processes for end-to-end tests: `bin/start.ts` or `bin/start-service.ts`
 * spawned as child processes (through `node --import tsx`, so a signal the test sends reaches
 * the process itself), free ports, and waiting for `/health`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { testAuthEnv } from './auth.ts';
import { freePort } from './ports.ts';

/** The repository root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** How a process ended. */
export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A spawned flowgraph process. */
export interface FlowgraphProcess {
  child: ChildProcess;
  /** Everything it wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when it exits. */
  exited: Promise<Exit>;
  /** Sends SIGTERM and resolves with the exit. */
  stop(): Promise<Exit>;
  /** SIGKILL if still running (for afterAll); resolves once gone. */
  kill(): Promise<void>;
}

export { freePort } from './ports.ts';

/**
 * Spawns `bin/<script>` with `args` in the repository root. `env` is the WHOLE environment of
 * the child (nothing of the test's own environment leaks in except PATH, HOME and TMPDIR).
 */
export function spawnFlowgraph(script: 'start.ts' | 'start-service.ts', args: string[], env: Record<string, string | undefined>): FlowgraphProcess {
  return spawnCommand(process.execPath, ['--import', 'tsx', path.join('bin', script), ...args], env);
}

/** What {@link spawnStart} runs `npm start` (bin/start.ts) on: a test's own data directory, databases and ports. */
export interface TestStartOptions {
  /** `FLOWGRAPH_DATA_DIR` (a temporary directory of the test). */
  dataDir: string;
  /** `<SERVICE>_DATABASE_URL`s of `freshServiceDatabases(...).env`: migrated, never provisioned. */
  databaseEnv: Record<string, string>;
  /** `GATEWAY_PORT` and `<SERVICE>_PORT` of `freeServicePorts().env`. */
  portsEnv: Record<string, string>;
  /** `FLOWGRAPH_CORPUS_DIR` (absolute). */
  corpusDir: string;
  /** More variables, winning over the defaults (`LOG_LEVEL`, `OTEL_*`, `FLOWGRAPH_METRICS`...). */
  env?: Record<string, string>;
}

/**
 * Spawns `bin/start.ts` as the end-to-end suites run it: development mode, `LOG_LEVEL=warn`, the
 * test run's credentials (`testAuthEnv`), and the data directory, databases, ports and corpus
 * of `options`; `options.env` overrides any of them.
 */
export function spawnStart(options: TestStartOptions): FlowgraphProcess {
  return spawnFlowgraph('start.ts', [], {
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    FLOWGRAPH_DATA_DIR: options.dataDir,
    FLOWGRAPH_CORPUS_DIR: options.corpusDir,
    ...options.databaseEnv,
    ...options.portsEnv,
    ...testAuthEnv(),
    ...options.env,
  });
}

/**
 * Spawns `npm run <script> -- <args>` in the repository root, as a user types it (the pid is
 * npm's; the flowgraph process is its child). `env` as for {@link spawnFlowgraph}.
 */
export function spawnNpm(script: string, args: string[], env: Record<string, string | undefined>): FlowgraphProcess {
  return spawnCommand('npm', ['run', '--silent', script, ...(args.length > 0 ? ['--', ...args] : [])], env);
}

/**
 * Spawns `command` in `cwd` (default the repository root) with `env` as its whole environment
 * (plus PATH and HOME). `env` as for {@link spawnFlowgraph}.
 */
export function spawnCommand(command: string, args: string[], env: Record<string, string | undefined>, cwd = ROOT): FlowgraphProcess {
  const child = spawn(command, args, {
    cwd,
    // TMPDIR: the test run's temporary directory (test/support/tmpdir.ts), removed at teardown.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, TMPDIR: process.env.TMPDIR, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const running = () => child.exitCode === null && child.signalCode === null;
  return {
    child,
    output: () => output,
    exited,
    async stop() {
      if (running()) child.kill('SIGTERM');
      return exited;
    },
    async kill() {
      if (running()) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Polls `GET <baseUrl><path>` every 200 ms until it answers 200.
 * @param path `/health` (readiness, the default) or `/health/live` (a gateway whose other subgraphs are not running)
 * @throws Error with the process output when the process exits first or `timeoutMs` passes
 */
export async function waitForHealth(baseUrl: string, proc: FlowgraphProcess, timeoutMs = 90_000, path: '/health' | '/health/live' | '/health/ready' = '/health'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited: Exit | undefined;
  void proc.exited.then((exit) => (exited = exit));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`process exited (code ${exited.code}, signal ${exited.signal}) before ${baseUrl}${path} answered:\n${proc.output()}`);
    try {
      if ((await fetch(`${baseUrl}${path}`)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${baseUrl}${path} did not answer 200 within ${timeoutMs} ms:\n${proc.output()}`);
}

/**
 * Waits until the process prints `text`.
 * @throws Error with the output when it exits first or `timeoutMs` passes
 */
export async function waitForOutput(proc: FlowgraphProcess, text: string, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes(text)) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) throw new Error(`process exited before printing "${text}":\n${proc.output()}`);
    if (Date.now() > deadline) throw new Error(`process did not print "${text}" within ${timeoutMs} ms:\n${proc.output()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Free ports for the gateway and every service of `config/services.ts`, as the environment of
 * `bin/start.ts` (`GATEWAY_PORT`, `WORKFLOWS_PORT`, ...), so that concurrent suites (and a
 * developer's own `npm start`) never collide on the default ports.
 */
export async function freeServicePorts(): Promise<{ env: Record<string, string>; gatewayBase: string }> {
  const { SERVICES } = await import('../../config/services.ts');
  const env: Record<string, string> = { GATEWAY_PORT: String(await freePort()) };
  for (const service of SERVICES) env[`${service.envPrefix}_PORT`] = String(await freePort());
  return { env, gatewayBase: `http://127.0.0.1:${env.GATEWAY_PORT}` };
}

/**
 * One fresh test database per service of `config/services.ts`, as the environment of
 * `bin/start.ts` (`WORKFLOWS_DATABASE_URL`, ...): start.ts migrates them instead of
 * provisioning shared `flowgraph_<service>` databases. `drop()` drops them all.
 */
export async function freshServiceDatabases(label: string): Promise<{ env: Record<string, string>; drop(): Promise<void> }> {
  const { SERVICES } = await import('../../config/services.ts');
  const { createTestDatabase } = await import('../../db/testing.ts');
  const databases = await Promise.all(SERVICES.map((service) => createTestDatabase(`${label}_${service.name}`)));
  const env: Record<string, string> = {};
  SERVICES.forEach((service, i) => (env[`${service.envPrefix}_DATABASE_URL`] = databases[i]!.url));
  return { env, drop: async () => void (await Promise.all(databases.map((d) => d.drop()))) };
}

/** What {@link startServiceAlone} needs besides the service's name. */
export interface ServiceAloneOptions {
  /** The environment of {@link freshServiceDatabases} (`<PREFIX>_DATABASE_URL` of every service). */
  databases: Record<string, string>;
  /** The environment of {@link freeServicePorts} (`<PREFIX>_PORT` of every service). */
  ports: Record<string, string>;
  natsUrl: string;
  natsNamespace: string;
  /** `FLOWGRAPH_CURSOR_SECRET`: the same for every process of a service, across restarts. */
  cursorSecret: string;
  /** `FLOWGRAPH_CORPUS_DIR`, absolute. */
  corpusDir: string;
}

/**
 * Spawns `npm run start:service -- <name>` (development mode, LOG_LEVEL warn, the test run's
 * credentials of `testAuthEnv`) on its own database and port, and resolves once it prints that it serves; starting it again with the same options
 * restarts it on the same port and database.
 * @throws Error with the output when it exits first or does not serve within 120 s
 */
export async function startServiceAlone(name: string, options: ServiceAloneOptions): Promise<FlowgraphProcess> {
  const { SERVICES } = await import('../../config/services.ts');
  const definition = SERVICES.find((s) => s.name === name);
  if (!definition) throw new Error(`no service named ${name}`);
  const proc = spawnFlowgraph('start-service.ts', [name], {
    NODE_ENV: 'development',
    LOG_LEVEL: 'warn',
    NATS_URL: options.natsUrl,
    NATS_NAMESPACE: options.natsNamespace,
    FLOWGRAPH_CURSOR_SECRET: options.cursorSecret,
    FLOWGRAPH_CORPUS_DIR: options.corpusDir,
    [`${definition.envPrefix}_DATABASE_URL`]: options.databases[`${definition.envPrefix}_DATABASE_URL`],
    [`${definition.envPrefix}_PORT`]: options.ports[`${definition.envPrefix}_PORT`],
    // FLOWGRAPH_GATEWAY_PUBLIC_KEYS: it answers only what the test run's gateway key signed.
    ...testAuthEnv(),
  });
  await waitForOutput(proc, `flowgraph ${name} subgraph ready at`, 120_000);
  return proc;
}
