/**
 * `npm run soak -- --seconds N` (issue 10, "A fault-injection soak"): flowgraph as docker-compose
 * runs it — the four services and the gateway each in its own process (`bin/start-service.ts`),
 * joined by a PRIVATE `nats-server` (own port, own `-sd` store under a temp dir) and a PRIVATE
 * embedded PostgreSQL (db/embedded.ts; one database per service) — driven through the gateway by
 * the corpus pipeline (INGEST → EXTRACT → EXTERNAL on the corpus books, as `npm run demo`) and a
 * stream of EXTERNAL-only runs, while faults are injected one at a time at random intervals:
 *
 * - `kill9`: SIGKILL of one process (a service or the gateway), then its restart (in the
 *   background: later faults may overlap it);
 * - `sigterm`: one SIGTERM of one process under load (it must exit 0 within `--grace-seconds`),
 *   then its restart;
 * - `pgRestart`: a fast shutdown and restart of the PostgreSQL server;
 * - `natsRestart`: SIGTERM of nats-server and its restart on the same store;
 * - `pgTerminate`: `pg_terminate_backend` of every connection of one service's database.
 *
 * After N seconds it stops injecting, waits (bounded by `--quiesce-seconds`) for every run to end
 * and monitoring to catch up, then checks and prints each figure:
 *
 * 1. runs: every run's read-model status equals what its `run-<id>` stream justifies (RunCompleted
 *    after every step completed, RunFailed after a failed or timed-out step, ...), and none is
 *    RUNNING without a live deadline;
 * 2. effects once: at most one DocumentIngested per (run, step) in content's log and one document
 *    per (run, step) in its read model; at most one terminal step event per (run, step, attempt)
 *    in workflows' log; at most one DocumentEntitiesExtracted per (run, step) in knowledge's log;
 *    exactly one `IntegrationEventObserved` per (source, event id) in monitoring's log;
 * 3. monitoring holds exactly the public events the sources' logs (their outboxes) hold, by event id;
 * 4. no event parked (every fault is transient);
 * 5. every read model equals a rebuild from its log (`bin/rebuild-projection.ts`, services stopped);
 * 6. no process exited on its own (a crashed process is restarted, and counted);
 * 7. every process stopped on ONE SIGTERM within `--grace-seconds` (else SIGKILL, a failure),
 *    both the SIGTERM faults under load and the final stop.
 *
 * Exits 1 when a check fails (2 on bad arguments). Logs of every process are kept under the temp
 * directory printed at the start (removed on success unless `--keep`).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import pg from 'pg';
import { createGatewayClient, type GatewayClient } from '../client/gatewayClient.ts';
import { generateAuthSecretsEnv, issueToken } from '../config/authSecrets.ts';
import { resolveCorpusDir } from '../config/corpus.ts';
import { SERVICES } from '../config/services.ts';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '../db/embedded.ts';
import { withDatabase } from '../db/url.ts';
import { contentPublicEvents } from '../subgraphs/content/publicEvents.ts';
import { knowledgePublicEvents } from '../subgraphs/knowledge/publicEvents.ts';
import { workflowsPublicEvents } from '../subgraphs/workflows/publicEvents.ts';
import { OBSERVED_SOURCES } from '../subgraphs/monitoring/service.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const NATS_SERVER = '/usr/sbin/nats-server';

const positiveInt = (name: string) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`${name} must be a positive integer (got ${value})`);
  return n;
};
const program = new Command('soak')
  .description('fault-injection soak: separate processes over a private NATS and PostgreSQL, faults at random, then checks')
  .option('--seconds <n>', 'how long faults are injected', positiveInt('--seconds'), 60)
  .option('--fault-min-ms <n>', 'shortest pause between two faults', positiveInt('--fault-min-ms'), 1000)
  .option('--fault-max-ms <n>', 'longest pause between two faults', positiveInt('--fault-max-ms'), 4000)
  .option('--quiesce-seconds <n>', 'bound of the wait for quiescence after the faults', positiveInt('--quiesce-seconds'), 240)
  .option('--grace-seconds <n>', 'how long a process may take to exit after one SIGTERM', positiveInt('--grace-seconds'), 30)
  .option('--external-every-ms <n>', 'pause between two EXTERNAL-only runs', positiveInt('--external-every-ms'), 400)
  .option('--pipeline-concurrency <n>', 'corpus pipeline runs in INGEST/EXTRACT at once', positiveInt('--pipeline-concurrency'), 2)
  .option('--files <names>', 'corpus books of the pipeline, comma-separated', 'jekyll-and-hyde.txt,sign-of-the-four.txt,study-in-scarlet.txt')
  .option('--seed <n>', 'seed of the fault schedule (default: random)', positiveInt('--seed'))
  .option('--log-level <level>', 'LOG_LEVEL of the services and the gateway (their logs are under the temp directory)', 'warn')
  .option('--keep', 'keep the temp directory (logs, data) even when every check passes')
  // Bad arguments exit 2 (a failed check exits 1); --help exits 0.
  .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2))
  .parse();
const opts = program.opts<{
  seconds: number; faultMinMs: number; faultMaxMs: number; quiesceSeconds: number; graceSeconds: number;
  externalEveryMs: number; pipelineConcurrency: number; logLevel: string; files: string; seed?: number; keep?: boolean;
}>();
if (opts.faultMaxMs < opts.faultMinMs) program.error('--fault-max-ms must be >= --fault-min-ms', { exitCode: 2 });

// ---- small helpers --------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let seed = opts.seed ?? (randomBytes(4).readUInt32LE() || 1);
const initialSeed = seed;
/** mulberry32: a reproducible schedule for a given --seed. */
function random(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const started = Date.now();
const stamp = () => `[${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s]`;
const log = (line: string) => console.log(`${stamp()} ${line}`);

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer().once('error', reject).listen(0, '127.0.0.1', () => {
      const p = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

// ---- processes ------------------------------------------------------------------------------

interface Proc {
  name: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  running(): boolean;
  output: () => string;
}

function spawnLogged(name: string, command: string, args: string[], env: Record<string, string>, logFile: WriteStream): Proc {
  const child = spawn(command, args, { cwd: ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/root', TMPDIR: workDir, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  allChildren.add(child);
  let tail = '';
  const onData = (chunk: Buffer) => {
    logFile.write(chunk);
    tail = (tail + chunk.toString('utf8')).slice(-200_000);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  logFile.write(`\n==== ${new Date().toISOString()} start ${name} pid ${child.pid}\n`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      logFile.write(`\n==== ${new Date().toISOString()} ${name} pid ${child.pid} exited code ${code} signal ${signal}\n`);
      resolve({ code, signal });
    }),
  );
  return { name, child, exited, running: () => child.exitCode === null && child.signalCode === null, output: () => tail };
}

async function waitForText(proc: Proc, text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.output().includes(text)) {
    if (!proc.running()) throw new Error(`${proc.name} exited before printing "${text}":\n${proc.output().slice(-3000)}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} did not print "${text}" within ${timeoutMs} ms:\n${proc.output().slice(-3000)}`);
    await sleep(100);
  }
}

// ---- setup ----------------------------------------------------------------------------------

const workDir = await mkdtemp(path.join(tmpdir(), 'flowgraph-soak-'));
await chmod(workDir, 0o755); // the postgres OS user must reach the data directory inside
const logDir = path.join(workDir, 'logs');
await mkdir(logDir);
const logs = new Map<string, WriteStream>();
const logOf = (name: string) => {
  let s = logs.get(name);
  if (!s) logs.set(name, (s = createWriteStream(path.join(logDir, `${name}.log`), { flags: 'a' })));
  return s;
};
console.log(`flowgraph soak: ${opts.seconds} s of faults, seed ${initialSeed}, work dir ${workDir}`);

const corpusDir = resolveCorpusDir(process.env);
const books = opts.files.split(',').map((f) => f.trim()).filter(Boolean);
const available = new Set(await readdir(corpusDir).catch(() => [] as string[]));
for (const book of books) if (!available.has(book)) program.error(`no ${book} in the corpus directory ${corpusDir}`, { exitCode: 2 });

// Whatever way the soak ends (a throw, Ctrl-C), nothing it started outlives it.
const allChildren = new Set<ChildProcess>();
let pgPidForExit: number | undefined;
process.on('exit', () => {
  for (const child of allChildren) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (pgPidForExit) {
    try {
      process.kill(pgPidForExit, 'SIGQUIT'); // immediate shutdown of the private PostgreSQL
    } catch {
      // already gone
    }
  }
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

// PostgreSQL
const pgPort = await freePort();
const pgDataDir = path.join(workDir, 'pg');
const startPg = () => startEmbeddedPostgres({ port: pgPort, dataDir: pgDataDir, secretsFile: path.join(workDir, 'secrets.json') });
let pgServer: RunningEmbeddedPostgres = await startPg();
pgPidForExit = pgServer.pid;
const adminUrl = pgServer.adminUrl;
const dbUrls: Record<string, string> = {};
{
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  for (const s of SERVICES) {
    const db = `soak_${s.name}`;
    await admin.query(`CREATE DATABASE "${db}"`);
    dbUrls[s.name] = withDatabase(adminUrl, db);
  }
  await admin.end();
}
log(`PostgreSQL on port ${pgPort} (pid ${pgServer.pid}), databases ${Object.keys(dbUrls).map((s) => `soak_${s}`).join(', ')}`);

// NATS
const natsPort = await freePort();
const natsDir = path.join(workDir, 'nats');
await mkdir(natsDir);
let nats!: Proc;
async function startNats(): Promise<void> {
  nats = spawnLogged('nats-server', NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-sd', natsDir], {}, logOf('nats-server'));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect(natsPort, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (!nats.running() || Date.now() > deadline) throw new Error(`nats-server did not start:\n${nats.output()}`);
    await sleep(100);
  }
}
await startNats();
const natsUrl = `nats://127.0.0.1:${natsPort}`;
log(`nats-server on port ${natsPort}, store ${natsDir}`);

// Services and gateway
const ports: Record<string, number> = { gateway: await freePort() };
for (const s of SERVICES) ports[s.name] = await freePort();
// Credentials of this soak (config/authSecrets.ts): the gateway verifies client tokens with the
// HS256 secret and signs identities the subgraphs verify; nothing reaches a subgraph unsigned.
const secrets = generateAuthSecretsEnv();
const processes = new Map<string, Proc>();
const PROCESS_NAMES = [...SERVICES.map((s) => s.name), 'gateway'];
const restarts: Record<string, number> = {};
/** Processes the soak itself signalled (any other exit is a crash). */
const signalled = new Set<Proc>();
/** Exits nobody asked for, of processes that were serving. */
const crashes: string[] = [];
/** Starts that exited before serving (a dependency down at start), each retried. */
const startFailures: string[] = [];
/** Set once the final stop begins. */
let stopping = false;

function envOf(name: string): Record<string, string> {
  const common = { NODE_ENV: 'development', LOG_LEVEL: opts.logLevel };
  if (name === 'gateway') {
    return {
      ...common,
      GATEWAY_PORT: String(ports.gateway),
      GATEWAY_JWT_SECRET: secrets.GATEWAY_JWT_SECRET,
      FLOWGRAPH_GATEWAY_SIGNING_KEY: secrets.FLOWGRAPH_GATEWAY_SIGNING_KEY,
      ...Object.fromEntries(SERVICES.map((s) => [`${s.envPrefix}_URL`, `http://127.0.0.1:${ports[s.name]}/graphql`])),
    };
  }
  const definition = SERVICES.find((s) => s.name === name)!;
  return {
    ...common,
    NATS_URL: natsUrl,
    NATS_NAMESPACE: 'soak',
    FLOWGRAPH_CURSOR_SECRET: secrets.FLOWGRAPH_CURSOR_SECRET,
    FLOWGRAPH_GATEWAY_PUBLIC_KEYS: secrets.FLOWGRAPH_GATEWAY_PUBLIC_KEYS,
    FLOWGRAPH_CORPUS_DIR: corpusDir,
    [`${definition.envPrefix}_DATABASE_URL`]: dbUrls[name]!,
    [`${definition.envPrefix}_PORT`]: String(ports[name]),
  };
}

/** Starts `name` and waits until it serves; retries (a fault may be under way) up to `attempts` times. */
async function startProcess(name: string, attempts = 10): Promise<Proc> {
  for (let attempt = 1; ; attempt++) {
    const proc = spawnLogged(name, process.execPath, ['--import', 'tsx', path.join('bin', 'start-service.ts'), name], envOf(name), logOf(name));
    processes.set(name, proc);
    let ready = false;
    void proc.exited.then((exit) => {
      if (signalled.has(proc) || stopping) return;
      if (!ready) {
        // Exits before serving (NATS or PostgreSQL down at start, a documented start failure): retried below.
        const reason = proc.output().match(/"message":"([^"]*)"/)?.[1] ?? proc.output().trim().split('\n').find((l) => /Error/.test(l)) ?? `code ${exit.code}`;
        startFailures.push(`${name}: ${reason.slice(0, 160)}`);
        return;
      }
      crashes.push(`${name} pid ${proc.child.pid} exited on its own (code ${exit.code}, signal ${exit.signal}); last output: ${proc.output().slice(-2000)}`);
      log(`CRASH: ${name} exited on its own (code ${exit.code}); restarting`);
      if (!restarting.has(name)) restartInBackground(name);
    });
    try {
      await waitForText(proc, name === 'gateway' ? 'flowgraph gateway ready at' : `flowgraph ${name} subgraph ready at`, 120_000);
      ready = true;
      return proc;
    } catch (error) {
      if (proc.running()) {
        signalled.add(proc);
        proc.child.kill('SIGKILL');
        await proc.exited;
      }
      if (attempt >= attempts) throw error;
      log(`  ${name} did not start (attempt ${attempt}), retrying: ${(error as Error).message.split('\n')[0]}`);
      await sleep(1000);
    }
  }
}

for (const s of SERVICES) await startProcess(s.name);
await startProcess('gateway');
log(`services up: ${PROCESS_NAMES.map((n) => `${n}:${ports[n]}`).join(' ')}`);

const client: GatewayClient = createGatewayClient(`http://127.0.0.1:${ports.gateway}/graphql`, {
  token: await issueToken(secrets.GATEWAY_JWT_SECRET, { subject: 'soak', role: 'operator' }, { lifetimeSeconds: 7 * 86_400 }),
});

// ---- driving --------------------------------------------------------------------------------

const PIPELINE = [
  { name: 'ingest', kind: 'INGEST', timeoutMs: 120_000, retryPolicy: { maxAttempts: 3, backoffMs: 1000 } },
  { name: 'extract', kind: 'EXTRACT', timeoutMs: 300_000, retryPolicy: { maxAttempts: 3, backoffMs: 1000 } },
  { name: 'approve', kind: 'EXTERNAL', timeoutMs: 600_000, retryPolicy: { maxAttempts: 1, backoffMs: 0 } },
];
const EXTERNAL_ONLY = [{ name: 'approve', kind: 'EXTERNAL', timeoutMs: 600_000, retryPolicy: { maxAttempts: 1, backoffMs: 0 } }];

/** Retries `fn` until it succeeds (the gateway or a subgraph may be down) or `timeoutMs` passes. */
async function withRetry<T>(what: string, fn: () => Promise<T>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(error as Error).message}`);
      await sleep(300);
    }
  }
}

async function defineWorkflow(name: string, steps: unknown): Promise<string> {
  return withRetry('defineWorkflow', async () => {
    const r = await client.mustQuery<{ defineWorkflow: { id: string } }>(
      `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { name, steps } },
    );
    return r.defineWorkflow.id;
  });
}
const pipelineWorkflow = await defineWorkflow('soak pipeline', PIPELINE);
const externalWorkflow = await defineWorkflow('soak external', EXTERNAL_ONLY);

interface Tracked { runId: string; kind: 'pipeline' | 'external'; file?: string; status: string }
const runs = new Map<string, Tracked>();
const driverErrors: string[] = [];

/** startRun with an idempotency key, retried with the same key until one attempt answers. */
async function startRun(workflowId: string, input: unknown, kind: Tracked['kind'], file?: string): Promise<void> {
  const key = randomUUID();
  const runId = await withRetry('startRun', async () => {
    const r = await client.query<{ startRun: { id: string } | null }>(
      `mutation($w: ID!, $input: JSON, $key: String) { startRun(workflowId: $w, input: $input, idempotencyKey: $key) { id } }`,
      { w: workflowId, input, key },
      { headers: { 'x-correlation-id': randomUUID() } },
    );
    if (!r.data?.startRun) throw new Error(JSON.stringify(r.errors));
    return r.data.startRun.id;
  }, 60_000);
  runs.set(runId, { runId, kind, file, status: 'RUNNING' });
}

interface RunView { id: string; status: string; steps: { name: string; kind: string; status: string }[] }

/** One pass over the runs not yet seen ending: approves EXTERNAL steps that run, records ends. */
async function approvePass(): Promise<void> {
  for (const run of runs.values()) {
    if (run.status !== 'RUNNING') continue;
    try {
      const r = await client.query<{ run: RunView | null }>(`query($id: ID!) { run(id: $id) { id status steps { name kind status } } }`, { id: run.runId });
      const view = r.data?.run;
      if (!view) continue;
      run.status = view.status;
      const step = view.steps.find((s) => s.kind === 'EXTERNAL' && s.status === 'RUNNING');
      if (view.status === 'RUNNING' && step) {
        await client.query(`mutation($id: ID!, $s: String!, $o: JSON) { completeStep(runId: $id, stepName: $s, output: $o) { id } }`, {
          id: run.runId, s: step.name, o: { approvedBy: 'soak' },
        });
      }
    } catch {
      // the gateway or workflows is down: next pass
    }
  }
}

let driving = true;
let approving = true;
const drivers = [
  (async () => {
    // Corpus pipeline: --pipeline-concurrency books at a time, cycling.
    let i = 0;
    while (driving) {
      const file = books[i++ % books.length]!;
      try {
        await startRun(pipelineWorkflow, { corpusFile: file, title: file.replace(/\.txt$/, '') }, 'pipeline', file);
      } catch (error) {
        driverErrors.push(`pipeline start ${file}: ${(error as Error).message}`);
      }
      // Wait until fewer than --pipeline-concurrency pipeline runs are running (extraction is CPU-bound).
      const deadline = Date.now() + 60_000;
      while (driving && Date.now() < deadline && [...runs.values()].filter((r) => r.kind === 'pipeline' && r.status === 'RUNNING').length >= opts.pipelineConcurrency) await sleep(500);
    }
  })(),
  (async () => {
    let n = 0;
    while (driving) {
      try {
        await startRun(externalWorkflow, { n: n++ }, 'external');
      } catch (error) {
        driverErrors.push(`external start: ${(error as Error).message}`);
      }
      await sleep(opts.externalEveryMs);
    }
  })(),
];
const approver = (async () => {
  while (approving) {
    await approvePass();
    await sleep(300);
  }
})();

// ---- faults ---------------------------------------------------------------------------------

type FaultKind = 'kill9' | 'sigterm' | 'pgRestart' | 'natsRestart' | 'pgTerminate';
const FAULT_KINDS: FaultKind[] = ['kill9', 'sigterm', 'pgRestart', 'natsRestart', 'pgTerminate'];
const faults: { kind: FaultKind; target: string; at: number; ms: number; error?: string }[] = [];
/** Processes being restarted (in the background, so that faults overlap a restart). */
const restarting = new Map<string, Promise<void>>();
/** Stops that needed more than one signal or exited non-zero: SIGTERM faults under load and the final stop. */
const stopProblems: string[] = [];
const stopTimes: number[] = [];

/** SIGTERM, wait up to --grace-seconds, SIGKILL after that; records what happened. @returns ms to exit */
async function stopGracefully(proc: Proc, when: string): Promise<number | 'KILLED'> {
  const t0 = Date.now();
  signalled.add(proc);
  proc.child.kill('SIGTERM');
  const exit = await Promise.race([proc.exited, sleep(opts.graceSeconds * 1000).then(() => undefined)]);
  if (!exit) {
    proc.child.kill('SIGKILL');
    await proc.exited;
    stopProblems.push(`${proc.name} (${when}): still running ${opts.graceSeconds} s after SIGTERM, killed; last output: ${proc.output().slice(-1500)}`);
    return 'KILLED';
  }
  const ms = Date.now() - t0;
  stopTimes.push(ms);
  if (exit.code !== 0) stopProblems.push(`${proc.name} (${when}): exited with code ${exit.code} signal ${exit.signal} after SIGTERM in ${ms} ms; last output: ${proc.output().slice(-1500)}`);
  return ms;
}

function restartInBackground(name: string): void {
  const p = (async () => {
    await sleep(Math.floor(random() * 2000));
    try {
      await startProcess(name);
      restarts[name] = (restarts[name] ?? 0) + 1;
    } catch (error) {
      faults.push({ kind: 'kill9', target: name, at: Date.now(), ms: 0, error: `restart of ${name} failed: ${(error as Error).message}` });
      log(`restart of ${name} FAILED: ${(error as Error).message.split('\n').slice(0, 5).join(' | ')}`);
    }
  })().finally(() => restarting.delete(name));
  restarting.set(name, p);
}

/** Injects one fault of `kind`. @returns its target, or null when there was nothing to inject it into (not counted) */
async function injectFault(kind: FaultKind): Promise<string | null> {
  switch (kind) {
    case 'kill9':
    case 'sigterm': {
      const candidates = PROCESS_NAMES.filter((n) => !restarting.has(n) && processes.get(n)!.running());
      if (candidates.length === 0) return null;
      const name = pick(candidates);
      const proc = processes.get(name)!;
      let how = '';
      if (kind === 'kill9') {
        signalled.add(proc);
        proc.child.kill('SIGKILL');
        await proc.exited;
      } else {
        const ms = await stopGracefully(proc, 'SIGTERM under load');
        how = ms === 'KILLED' ? ' NEEDED SIGKILL' : ` exited in ${ms} ms`;
      }
      restartInBackground(name);
      return `${name}${how} (restarting)`;
    }
    case 'pgRestart': {
      await pgServer.stop();
      await sleep(500 + Math.floor(random() * 1500));
      pgPidForExit = undefined;
      pgServer = await startPg();
      pgPidForExit = pgServer.pid;
      return `postgres pid ${pgServer.pid}`;
    }
    case 'natsRestart': {
      nats.child.kill('SIGTERM');
      await nats.exited;
      await sleep(500 + Math.floor(random() * 1500));
      await startNats();
      return 'nats-server';
    }
    case 'pgTerminate': {
      const name = pick(SERVICES.map((s) => s.name));
      const admin = new pg.Client({ connectionString: adminUrl });
      await admin.connect();
      try {
        const { rowCount } = await admin.query(
          `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [`soak_${name}`],
        );
        return `${name} (${rowCount} connections)`;
      } finally {
        await admin.end();
      }
    }
  }
}

const faultsUntil = Date.now() + opts.seconds * 1000;
log(`driving and injecting faults for ${opts.seconds} s`);
while (Date.now() < faultsUntil) {
  await sleep(opts.faultMinMs + Math.floor(random() * (opts.faultMaxMs - opts.faultMinMs)));
  if (Date.now() >= faultsUntil) break;
  const kind = pick(FAULT_KINDS);
  const at = Date.now();
  try {
    const target = await injectFault(kind);
    if (target === null) continue;
    faults.push({ kind, target, at, ms: Date.now() - at });
    log(`fault ${kind} ${target} (${Date.now() - at} ms)`);
  } catch (error) {
    faults.push({ kind, target: '?', at, ms: Date.now() - at, error: (error as Error).message });
    log(`fault ${kind} FAILED to inject/recover: ${(error as Error).message.split('\n').slice(0, 5).join(' | ')}`);
  }
}
driving = false;
await Promise.all([...drivers, ...restarting.values()]);
log(`faults over; ${runs.size} runs started; waiting for quiescence (at most ${opts.quiesceSeconds} s)`);

// Every process must be up for the drain (a failed restart above is retried here once).
for (const name of PROCESS_NAMES) if (!processes.get(name)!.running()) await startProcess(name).catch((e) => log(`${name} restart failed: ${e.message}`));

// ---- quiescence -----------------------------------------------------------------------------

const pools = Object.fromEntries(SERVICES.map((s) => [s.name, new pg.Pool({ connectionString: dbUrls[s.name], max: 2 })])) as Record<string, pg.Pool>;
for (const p of Object.values(pools)) p.on('error', () => {});
const q = async <T extends pg.QueryResultRow = any>(service: string, sql: string, params: unknown[] = []) => (await pools[service]!.query<T>(sql, params)).rows;

const PUBLIC_TYPES: Record<string, string[]> = {
  workflows: Object.keys(workflowsPublicEvents),
  content: Object.keys(contentPublicEvents),
  knowledge: Object.keys(knowledgePublicEvents),
};
async function publishedBySource(): Promise<Map<string, Set<string>>> {
  const out = new Map<string, Set<string>>();
  for (const source of OBSERVED_SOURCES) {
    const rows = await q<{ event_id: string }>(source, `SELECT event_id::text FROM eventstore.events WHERE type = ANY($1)`, [PUBLIC_TYPES[source]]);
    out.set(source, new Set(rows.map((r) => r.event_id)));
  }
  return out;
}
async function observedBySource(): Promise<Map<string, Set<string>>> {
  const rows = await q<{ source: string; event_id: string }>('monitoring', `SELECT source, event_id::text FROM observed_events`);
  const out = new Map<string, Set<string>>(OBSERVED_SOURCES.map((s) => [s, new Set<string>()]));
  for (const r of rows) (out.get(r.source) ?? out.set(r.source, new Set()).get(r.source)!).add(r.event_id);
  return out;
}

const quiesceDeadline = Date.now() + opts.quiesceSeconds * 1000;
let quiet = false;
let lastSignature = '';
let stableSince = Date.now();
while (Date.now() < quiesceDeadline) {
  await approvePass();
  try {
    const running = (await q<{ n: number }>('workflows', `SELECT count(*)::int AS n FROM workflow_runs WHERE status = 'RUNNING'`))[0]!.n;
    const published = await publishedBySource();
    const observed = await observedBySource();
    const pub = [...published.values()].reduce((a, s) => a + s.size, 0);
    const obs = [...observed.values()].reduce((a, s) => a + s.size, 0);
    const signature = `${running}/${pub}/${obs}`;
    if (signature !== lastSignature) {
      lastSignature = signature;
      stableSince = Date.now();
      log(`  running ${running}, published ${pub}, observed ${obs}`);
    }
    if (running === 0 && pub === obs && Date.now() - stableSince > 3000) {
      quiet = true;
      break;
    }
  } catch (error) {
    log(`  quiescence probe failed: ${(error as Error).message}`);
  }
  await sleep(1000);
}
approving = false;
await approver;
log(quiet ? 'quiescent' : `NOT quiescent after ${opts.quiesceSeconds} s`);

// ---- checks ---------------------------------------------------------------------------------

interface Check { name: string; ok: boolean; figures: string; details: string[] }
const checks: Check[] = [];
const check = (name: string, ok: boolean, figures: string, details: string[] = []) => checks.push({ name, ok, figures, details: details.slice(0, 20) });

check('quiescence reached', quiet, `within ${opts.quiesceSeconds} s: ${quiet}`);

// 1. runs justified by their events
{
  const rows = await q<{ id: string; status: string; step_count: number; completed_steps: number; last_run_event: string | null; failed_step: string | null; failed_step_justified: boolean; live_deadline: boolean }>(
    'workflows',
    `SELECT r.id, r.status,
            (SELECT count(*)::int FROM step_runs s WHERE s.run_id = r.id) AS step_count,
            (SELECT count(DISTINCT e.data->>'stepName')::int FROM eventstore.events e WHERE e.stream_id = 'run-' || r.id AND e.type = 'StepCompleted') AS completed_steps,
            (SELECT e.type FROM eventstore.events e WHERE e.stream_id = 'run-' || r.id AND e.type IN ('RunCompleted','RunFailed','RunCancelled') ORDER BY e.stream_position DESC LIMIT 1) AS last_run_event,
            (SELECT e.data->>'stepName' FROM eventstore.events e WHERE e.stream_id = 'run-' || r.id AND e.type = 'RunFailed' LIMIT 1) AS failed_step,
            EXISTS (SELECT 1 FROM eventstore.events e, eventstore.events f WHERE e.stream_id = 'run-' || r.id AND e.type = 'RunFailed'
                      AND f.stream_id = e.stream_id AND f.type IN ('StepFailed','StepTimedOut') AND f.data->>'stepName' = e.data->>'stepName') AS failed_step_justified,
            EXISTS (SELECT 1 FROM run_deadlines d WHERE d.run_id = r.id AND d.due_at > now()) AS live_deadline
       FROM workflow_runs r`,
  );
  const bad: string[] = [];
  const byStatus: Record<string, number> = {};
  for (const r of rows) {
    byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
    const expected = r.last_run_event === 'RunCompleted' ? 'COMPLETED' : r.last_run_event === 'RunFailed' ? 'FAILED' : r.last_run_event === 'RunCancelled' ? 'CANCELLED' : 'RUNNING';
    if (r.status !== expected) bad.push(`run ${r.id}: read model ${r.status}, log says ${expected}`);
    else if (r.status === 'COMPLETED' && r.completed_steps !== r.step_count) bad.push(`run ${r.id}: COMPLETED with ${r.completed_steps}/${r.step_count} steps completed in its log`);
    else if (r.status === 'FAILED' && !r.failed_step_justified) bad.push(`run ${r.id}: FAILED on ${r.failed_step} without a StepFailed/StepTimedOut of it`);
    else if (r.status === 'RUNNING' && !r.live_deadline) bad.push(`run ${r.id}: RUNNING without a live deadline`);
  }
  const missing = [...runs.keys()].filter((id) => !rows.some((r) => r.id === id));
  for (const id of missing) bad.push(`run ${id}: started through the gateway, absent from workflows' read model`);
  check('every run in a terminal state its events justify', bad.length === 0,
    `${rows.length} runs (${runs.size} started by the driver: ${[...runs.values()].filter((r) => r.kind === 'pipeline').length} pipeline, ${[...runs.values()].filter((r) => r.kind === 'external').length} external): ${Object.entries(byStatus).map(([s, n]) => `${s} ${n}`).join(', ')}`, bad);

  const failed = await q<{ id: string; error: string | null }>('workflows',
    `SELECT r.id, (SELECT e.data::text FROM eventstore.events e WHERE e.stream_id = 'run-' || r.id AND e.type IN ('StepFailed','StepTimedOut') ORDER BY e.stream_position DESC LIMIT 1) AS error
       FROM workflow_runs r WHERE r.status <> 'COMPLETED'`);
  check('no run failed (every fault is transient)', failed.length === 0, `${failed.length} runs not COMPLETED`, failed.map((f) => `run ${f.id}: ${f.error}`));
}

// 2. effects once
{
  const ingestedTwice = await q('content', `SELECT data->>'runId' AS run, data->>'stepName' AS step, count(*)::int AS n FROM eventstore.events
     WHERE type = 'DocumentIngested' AND data->>'runId' IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1`);
  const docsTwice = await q('content', `SELECT run_id, step_name, count(*)::int AS n FROM documents WHERE run_id IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1`);
  const docs = (await q<{ n: number }>('content', `SELECT count(*)::int AS n FROM documents`))[0]!.n;
  check('one document per run and step (content log and read model)', ingestedTwice.length + docsTwice.length === 0,
    `${docs} documents; ${ingestedTwice.length} (run, step) ingested twice in the log, ${docsTwice.length} twice in the read model`,
    [...ingestedTwice, ...docsTwice].map((r) => JSON.stringify(r)));

  const stepTwice = await q('workflows', `SELECT stream_id, type, data->>'stepName' AS step, data->>'attempt' AS attempt, count(*)::int AS n FROM eventstore.events
     WHERE type IN ('StepCompleted','StepFailed','StepTimedOut','StepStarted') GROUP BY 1, 2, 3, 4 HAVING count(*) > 1`);
  const runEndTwice = await q('workflows', `SELECT stream_id, count(*)::int AS n FROM eventstore.events WHERE type IN ('RunCompleted','RunFailed','RunCancelled') GROUP BY 1 HAVING count(*) > 1`);
  check('one start and one outcome per step attempt, one end per run (workflows log)', stepTwice.length + runEndTwice.length === 0,
    `${stepTwice.length} step events twice, ${runEndTwice.length} runs ended twice`, [...stepTwice, ...runEndTwice].map((r) => JSON.stringify(r)));

  const extractedTwice = await q('knowledge', `SELECT data->>'runId' AS run, data->>'stepName' AS step, count(*)::int AS n FROM eventstore.events
     WHERE type IN ('DocumentEntitiesExtracted','ExtractionFailed') AND data->>'runId' IS NOT NULL GROUP BY 1, 2 HAVING count(*) > 1`);
  const extractionFailed = await q('knowledge', `SELECT data::text AS data FROM eventstore.events WHERE type = 'ExtractionFailed'`);
  check('one extraction outcome per run and step (knowledge log)', extractedTwice.length === 0,
    `${extractedTwice.length} (run, step) with two outcomes; ${extractionFailed.length} ExtractionFailed`, extractedTwice.map((r) => JSON.stringify(r)));
  check('no ExtractionFailed (faults are transient)', extractionFailed.length === 0, `${extractionFailed.length} ExtractionFailed`, extractionFailed.map((r) => r.data));

  const observedTwice = await q('monitoring', `SELECT data->>'source' AS source, data->>'eventId' AS event_id, count(*)::int AS n FROM eventstore.events
     WHERE type = 'IntegrationEventObserved' GROUP BY 1, 2 HAVING count(*) > 1`);
  const observations = (await q<{ n: number }>('monitoring', `SELECT count(*)::int AS n FROM eventstore.events WHERE type = 'IntegrationEventObserved'`))[0]!.n;
  check('one observation per event id (monitoring log)', observedTwice.length === 0, `${observations} observations, ${observedTwice.length} event ids observed more than once`,
    observedTwice.map((r) => JSON.stringify(r)));
}

// 3. monitoring = sources' outboxes
{
  const published = await publishedBySource();
  const observed = await observedBySource();
  const details: string[] = [];
  const per: string[] = [];
  for (const source of OBSERVED_SOURCES) {
    const p = published.get(source)!;
    const o = observed.get(source)!;
    const missing = [...p].filter((id) => !o.has(id));
    const extra = [...o].filter((id) => !p.has(id));
    per.push(`${source} ${p.size} published / ${o.size} observed`);
    if (missing.length) details.push(`${source}: ${missing.length} published, not observed (e.g. ${missing.slice(0, 3).join(', ')})`);
    if (extra.length) details.push(`${source}: ${extra.length} observed, not in its log (e.g. ${extra.slice(0, 3).join(', ')})`);
  }
  for (const source of observed.keys()) if (!OBSERVED_SOURCES.includes(source)) details.push(`observed events of unknown source ${source}`);
  check('monitoring holds exactly the events the sources published', details.length === 0, per.join(', '), details);
}

// 4. parking
{
  const parked: string[] = [];
  let total = 0;
  for (const s of SERVICES) {
    const rows = await q<{ consumer: string; type: string; status: string; attempts: number; error: string }>(s.name,
      `SELECT consumer, type, status, attempts, error FROM eventstore.parked_events`).catch(() => []);
    total += rows.length;
    for (const r of rows) parked.push(`${s.name}: ${r.consumer} ${r.type} ${r.status} after ${r.attempts} attempts: ${r.error}`);
  }
  const events: Record<string, number> = {};
  for (const s of SERVICES) events[s.name] = (await q<{ n: number }>(s.name, `SELECT count(*)::int AS n FROM eventstore.events`))[0]!.n;
  check('no event parked or failing (faults are transient)', total === 0, `${total} parked_events rows; events in the logs: ${Object.entries(events).map(([s, n]) => `${s} ${n}`).join(', ')}`, parked);
}

check('no serving process exited on its own', crashes.length === 0, `${crashes.length} crashes`, crashes);

// 6. stop: one SIGTERM each (the final stop here, and the SIGTERM faults under load above)
stopping = true;
{
  const times: string[] = [];
  for (const name of ['gateway', ...SERVICES.map((s) => s.name)]) {
    const proc = processes.get(name)!;
    if (!proc.running()) {
      stopProblems.push(`${name}: not running at the end`);
      continue;
    }
    const ms = await stopGracefully(proc, 'final stop');
    times.push(`${name} ${ms === 'KILLED' ? 'KILLED' : `${ms} ms`}`);
  }
  const underLoad = faults.filter((f) => f.kind === 'sigterm').length;
  check('every process stopped on one SIGTERM', stopProblems.length === 0,
    `final: ${times.join(', ')}; ${underLoad} SIGTERMs under load; slowest exit of all ${stopTimes.length} ${Math.max(0, ...stopTimes)} ms`, stopProblems);
}

// 5. read models = rebuild (services stopped)
{
  const READ_MODELS: Record<string, string[]> = {
    workflows: ['workflows', 'workflow_steps', 'workflow_runs', 'step_runs', 'idempotency_keys', 'run_deadlines'],
    content: ['documents', 'chunks'],
    knowledge: ['extraction_requests', 'document_extractions', 'entities', 'entity_mentions', 'relations'],
    monitoring: ['observed_events', 'event_counters'],
  };
  const dump = async (service: string) => {
    const out: Record<string, string[]> = {};
    for (const table of READ_MODELS[service]!) out[table] = (await q(service, `SELECT to_jsonb(t)::text AS row FROM ${table} t`)).map((r) => r.row).sort();
    return out;
  };
  const details: string[] = [];
  const figures: string[] = [];
  for (const s of SERVICES) {
    const before = await dump(s.name);
    const rebuild = spawnLogged(`rebuild-${s.name}`, process.execPath, ['--import', 'tsx', path.join('bin', 'rebuild-projection.ts'), '--service', s.name, '--no-progress'],
      { LOG_LEVEL: 'info', [`${s.envPrefix}_DATABASE_URL`]: dbUrls[s.name]! }, logOf('rebuild'));
    const exit = await rebuild.exited;
    if (exit.code !== 0) {
      details.push(`${s.name}: rebuild exited ${exit.code}: ${rebuild.output().slice(-1500)}`);
      continue;
    }
    const after = await dump(s.name);
    let rows = 0;
    for (const table of READ_MODELS[s.name]!) {
      const a = new Set(before[table]);
      const b = new Set(after[table]);
      rows += a.size;
      const onlyBefore = before[table]!.filter((r) => !b.has(r));
      const onlyAfter = after[table]!.filter((r) => !a.has(r));
      if (onlyBefore.length || onlyAfter.length || before[table]!.length !== after[table]!.length) {
        details.push(`${s.name}.${table}: ${before[table]!.length} rows live, ${after[table]!.length} rebuilt; ${onlyBefore.length} only live (e.g. ${onlyBefore.slice(0, 2).join(' ')}), ${onlyAfter.length} only rebuilt (e.g. ${onlyAfter.slice(0, 2).join(' ')})`);
      }
    }
    figures.push(`${s.name} ${rows} rows`);
  }
  check('every read model equals a rebuild from its log', details.length === 0, figures.join(', '), details);
}

// ---- report ---------------------------------------------------------------------------------

nats.child.kill('SIGTERM');
await nats.exited;
for (const p of Object.values(pools)) await p.end();
await pgServer.stop();
pgPidForExit = undefined;
for (const s of logs.values()) s.end();

const byKind = Object.fromEntries(FAULT_KINDS.map((k) => [k, faults.filter((f) => f.kind === k && !f.error?.startsWith('restart of')).length]));
console.log('\n=== soak figures');
console.log(`seconds of faults: ${opts.seconds}, seed ${initialSeed}, total wall ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log(`faults injected: ${faults.filter((f) => !f.error?.startsWith('restart of')).length} (${Object.entries(byKind).map(([k, n]) => `${k} ${n}`).join(', ')}); restarts after kill9/sigterm/crash: ${Object.entries(restarts).map(([k, n]) => `${k} ${n}`).join(', ') || '-'}`);
const failedFaults = faults.filter((f) => f.error);
if (failedFaults.length) console.log(`faults whose recovery failed: ${failedFaults.map((f) => `${f.kind}: ${f.error?.split('\n')[0]}`).join('; ')}`);
const startFailureKinds = new Map<string, number>();
for (const f of startFailures) startFailureKinds.set(f, (startFailureKinds.get(f) ?? 0) + 1);
console.log(`starts that exited before serving (retried): ${startFailures.length}${[...startFailureKinds].map(([f, n]) => `\n  ${n} × ${f}`).join('')}`);
console.log(`runs started: ${runs.size} (pipeline ${[...runs.values()].filter((r) => r.kind === 'pipeline').length}, external ${[...runs.values()].filter((r) => r.kind === 'external').length}); driver errors: ${driverErrors.length}`);
for (const e of driverErrors.slice(0, 5)) console.log(`  ${e}`);
console.log('\n=== checks');
for (const c of checks) {
  console.log(`${c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.figures}`);
  for (const d of c.details) console.log(`        ${d}`);
}
const ok = checks.every((c) => c.ok) && failedFaults.length === 0;
console.log(`\n${ok ? 'soak passed' : 'soak FAILED'}; logs ${ok && !opts.keep ? 'removed' : `in ${logDir}`}`);
if (ok && !opts.keep) await rm(workDir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
