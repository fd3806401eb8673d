/**
 * `npm run bench:subscriptions`: subscription delivery through flowgraph's gateway, directly
 * from the owning subgraph, and through Hive Gateway (the peer), in one run (issue 6).
 *
 * Workload: monitoring's `eventFeed` subscription, every update of which selects a field of
 * another subgraph (`event { run { status } }`: the run is a workflows entity, one `_entities`
 * fetch per event). Events are real appends to monitoring's database through its own append
 * path for an observed event (bench/subscriptionAppender.ts), `--rate` per second (default 50),
 * open loop, each naming one of `--runs` RUNNING workflow runs. For 1, 100 and 1,000 concurrent
 * subscriptions (one socket each, all the same operation), per target:
 *
 * - `flowgraph`: `subscription { eventFeed { cursor event { eventId type run { id status } } } }`
 *   through gateway/server.ts (`startGateway`, default settings: authentication on, every
 *   client's `connection_init` carries `authorization: Bearer <HS256 JWT>`, verified);
 * - `flowgraph-anonymous`: the same gateway in anonymous mode (`GATEWAY_ANONYMOUS_ROLE=viewer`,
 *   no client token verified), for issue 7's goal: auth on within 10 % of it;
 * - `direct`: the same subscription's monitoring fields only
 *   (`eventFeed { cursor event { eventId type run { id } } }`) straight from monitoring's /graphql,
 *   each socket's `connection_init` carrying an identity signed with the run's gateway key;
 * - `hive`: the flowgraph query through Hive Gateway 2.15 (bench/subscriptionGateway.ts), which
 *   sends the subgraphs a signed identity on its fetches and upstream sockets.
 *
 * Credentials: fresh ones per run (a client JWT secret and a gateway key pair, in this process's
 * environment, which the children inherit).
 *
 * Each target's first update is checked (the entity field filled) before anything is measured.
 * A cell: open the subscriptions; warm up (appends until every subscription has received one,
 * at most ~20,000 deliveries), wait until the gateway and services are idle again, then
 * `--duration` seconds of appends and at most `--drain` seconds for the last deliveries.
 *
 * Measured: latency = receipt time in this process − the commit time of the append in the
 * appender process (both on CLOCK_MONOTONIC), p50/p99/max over every (subscriber, event), and
 * the p50 of the last tenth of the events (far above the p50: a backlog grew); events lost =
 * events committed × subscribers − distinct events received after the drain; the gateway
 * process's CPU time (all threads, /proc/<pid>/task/<tid>/schedstat) over the measured window
 * per delivered event, and the services' and this process's (near 1 core: the client limits
 * the figures); the gateway's memory per idle subscription: RSS and, after full GCs, heap used
 * and total, before and after opening `--idle` idle subscriptions, beside a bare `ws` server's
 * (the floor: what one socket costs). The targets of issue 6 are printed with PASS or MISS.
 *
 * Process layout: this process (orchestration and every subscriber), one child with the
 * workflows and monitoring services, one child appending, one child per gateway (and one for
 * the floor), so that each gateway's CPU and memory are its own. A subscription to monitoring
 * matching nothing stays open for the whole run (`KEEPER_QUERY`: works around a race in
 * federation/live/logFollower.ts). `--profile` CPU-profiles the gateways and the services during
 * the measured windows at the largest subscriber count (top self time printed, .cpuprofile
 * files kept in the OS temp directory).
 *
 * Flags: see `--help` (`--quick`: 1 and 100 subscribers, 10 s). Env: FLOWGRAPH_ADMIN_DATABASE_URL
 * (default the machine's PostgreSQL); for diagnosis, BENCH_HIVE_LOGGING=debug (Hive's log
 * level) and BENCH_DUMP_CHILD=<file> (a failing payload check writes the child's output there).
 * Ctrl-C stops the children and drops the databases.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'commander';
import { redactUrl } from '../db/url.ts';
import { createMigratedBenchDatabase, withAdmin, type BenchDatabase } from './benchDatabase.ts';
import { spawnBenchChild, processCpuMicros, processRssBytes, type BenchChild } from './childProcess.ts';
import { DEFAULT_ADMIN_URL } from './config.ts';
import type { SelfTime } from './cpuProfile.ts';
import { benchClientToken, benchSubgraphIdentity, installBenchCredentials } from './credentials.ts';
import { openSubscriber, parseBenchEventId, type Subscriber } from './subscriptionClient.ts';
import WebSocket from 'ws';

const TARGETS = ['flowgraph', 'flowgraph-anonymous', 'direct', 'hive', 'flowgraph-no-metrics', 'flowgraph-traced'] as const;
/** What runs without `--only`: issue 6's and 7's comparisons (`--observability` runs issue 9's). */
const DEFAULT_TARGETS = ['flowgraph', 'flowgraph-anonymous', 'direct', 'hive'] as const;
/** Issue 9: the gateway's observability, each against `flowgraph-no-metrics`. */
const OBSERVABILITY_TARGETS = ['flowgraph-no-metrics', 'flowgraph', 'flowgraph-traced'] as const;
/** Issue 9's goals: metrics (tracing off, the default `flowgraph`) within 5 % of no observability, metrics + tracing within 15 %. */
const OBSERVABILITY_GOALS = { flowgraph: 1.05, 'flowgraph-traced': 1.15 } as const;
type Target = (typeof TARGETS)[number];
type GatewayTarget = Exclude<Target, 'direct'>;
/** Issue 7: the subscription figures with authentication on stay within 10 % of the same run without it. */
const TARGET_AUTH_RATIO = 1.1;

const GATEWAY_QUERY = 'subscription BenchFeed { eventFeed { cursor event { eventId type run { id status } } } }';
const DIRECT_QUERY = 'subscription BenchFeed { eventFeed { cursor event { eventId type run { id } } } }';

/** Targets of issue 6, printed beside the figures. */
const TARGET_P99_RATIO = 1.5;
const TARGET_CPU_US = 10;
const TARGET_IDLE_KIB = 10;
const TARGET_AT = 1000;
/**
 * A subscription to monitoring held open for the whole run, matching no event. Without it,
 * monitoring's log follower stops each time a cell's last subscription leaves, and a known race
 * there (federation/live/logFollower.ts: the stopping tail's late `onPosition` sets `position`
 * again, so the next `register` starts no tail) leaves the next cell's subscriptions without
 * any event. With one feed always registered the follower never stops. Reported, not fixed, here.
 */
const KEEPER_QUERY = 'subscription BenchKeeper { eventFeed(filter: { source: "bench-keeper-matches-nothing" }) { cursor } }';
/** Hive upstream sockets: one per this many clients (flowgraph subgraphs accept 100 subscriptions per socket). */
const HIVE_BUCKET = 100;

// ---------------------------------------------------------------------------------------------
// Configuration

interface Config {
  adminUrl: string;
  durationS: number;
  warmupS: number;
  drainS: number;
  rate: number;
  subscribers: number[];
  targets: Target[];
  idle: number;
  settleS: number;
  runs: number;
  profile: boolean;
  quick: boolean;
}

function parseConfig(argv: readonly string[]): Config {
  const program = new Command('bench:subscriptions')
    .description('Subscription delivery latency, loss, CPU and memory: flowgraph gateway vs direct subgraph vs Hive Gateway')
    .option('--quick', 'short run: 1 and 100 subscribers, 10 s per cell (flags given explicitly still win)')
    .option('--duration <seconds>', 'measured seconds of appends per cell (default 20; --quick 10)')
    .option('--warmup <seconds>', 'unmeasured seconds of appends per cell before measuring (default 2)')
    .option('--drain <seconds>', 'longest wait after the last commit for every delivery (default 10)')
    .option('--rate <events/s>', 'appends per second (default 50)')
    .option('--subscribers <list>', 'concurrent subscriptions per cell (default 1,100,1000; --quick 1,100)')
    .option('--only <list>', `targets, in this order within each subscriber count: some of ${TARGETS.join(',')} (default ${DEFAULT_TARGETS.join(',')})`)
    .option('--observability', `issue 9: the gateway without metrics, with metrics (default settings) and with metrics + tracing exported over OTLP/HTTP to a sink process: --only ${OBSERVABILITY_TARGETS.join(',')}`)
    .option('--idle <n>', 'idle subscriptions opened for the memory figure (default the largest --subscribers)')
    .option('--settle <seconds>', 'wait after the idle subscriptions are established before reading memory (default 2)')
    .option('--runs <n>', 'workflow runs the events name, round robin (default 10)')
    .option('--profile', 'CPU-profile each gateway during its measured windows at the largest subscriber count (perturbs those figures)')
    .option('--url <url>', 'admin (superuser) connection string; env FLOWGRAPH_ADMIN_DATABASE_URL');
  program.parse([...argv]);
  const o = program.opts<Record<string, string | boolean | undefined>>();
  const quick = o.quick === true;
  const num = (name: string, value: unknown, fallback: number, min: number, max: number, integer = false) => {
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) throw new Error(`--${name}: expected ${integer ? 'an integer' : 'a number'} in ${min}..${max}, got ${String(value)}`);
    return n;
  };
  const list = (name: string, value: unknown, fallback: string) =>
    String(value ?? fallback)
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '');
  const subscribers = list('subscribers', o.subscribers, quick ? '1,100' : '1,100,1000').map((s) => num('subscribers', s, 1, 1, 20_000, true));
  const targets = list('only', o.only, (o.observability === true ? OBSERVABILITY_TARGETS : DEFAULT_TARGETS).join(','));
  for (const t of targets) if (!(TARGETS as readonly string[]).includes(t)) throw new Error(`--only: unknown target ${t}: expected some of ${TARGETS.join(',')}`);
  if (subscribers.length === 0 || targets.length === 0) throw new Error('--subscribers and --only need at least one value');
  return {
    adminUrl: (o.url as string | undefined) ?? (process.env.FLOWGRAPH_ADMIN_DATABASE_URL || DEFAULT_ADMIN_URL),
    durationS: num('duration', o.duration, quick ? 10 : 20, 1, 600),
    warmupS: num('warmup', o.warmup, 2, 0.1, 120),
    drainS: num('drain', o.drain, 10, 1, 300),
    rate: num('rate', o.rate, 50, 0.1, 5000),
    subscribers,
    targets: targets as Target[],
    idle: num('idle', o.idle, Math.max(...subscribers), 1, 20_000, true),
    settleS: num('settle', o.settle, 2, 0, 600),
    runs: num('runs', o.runs, 10, 1, 1000, true),
    profile: o.profile === true,
    quick,
  };
}

// ---------------------------------------------------------------------------------------------
// Small helpers

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const nowNs = () => Number(process.hrtime.bigint());

async function waitFor(check: () => boolean, timeoutMs: number, intervalMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await sleep(intervalMs);
  }
  return true;
}

const fmt = (n: number | null | undefined, digits = 0) =>
  n === null || n === undefined || !Number.isFinite(n) ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const log = (message: string) => process.stderr.write(`${message}\n`);

/** Waits until every pid uses under 10 % of a core over 500 ms (the previous cell's backlog is gone), at most `maxMs`. */
async function waitQuiet(pids: number[], maxMs: number): Promise<boolean> {
  const deadline = Date.now() + maxMs;
  while (Date.now() < deadline) {
    const before = await Promise.all(pids.map((pid) => processCpuMicros(pid)));
    await sleep(500);
    const after = await Promise.all(pids.map((pid) => processCpuMicros(pid)));
    if (after.every((a, i) => a - before[i]! < 50_000)) return true;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// Subscribers

/** Every subscription of one cell, and what they received. */
class SubscriberGroup {
  readonly subscribers: Subscriber[] = [];
  /** Receipt time (ns) per subscriber per sequence number of the measured append run. */
  received: Float64Array[] = [];
  measuredCell = -1;
  /** Append runs whose events only count as "seen" (warm-up, probes). */
  probeCell = -1;
  seen: Uint8Array;
  seenCount = 0;
  delivered = 0;
  duplicates = 0;
  /** Updates whose entity field (`run.status`) is missing or null. */
  incomplete = 0;
  errorPayloads = 0;
  failures = 0;
  readonly failureSamples: string[] = [];
  firstPayload: unknown;

  constructor(
    readonly size: number,
    private readonly prefix: string,
    private readonly needsEntity: boolean,
  ) {
    this.seen = new Uint8Array(size);
  }

  /** Opens `size` subscriptions, `concurrency` at a time. */
  async open(url: string, query: string, connectionParams: (i: number) => Record<string, unknown> | undefined, concurrency = 50): Promise<void> {
    const wsUrl = url.replace(/^http/, 'ws');
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(concurrency, this.size) }, async () => {
        for (;;) {
          const i = next++;
          if (i >= this.size) return;
          const params = connectionParams(i);
          this.subscribers[i] = await openSubscriber({
            url: wsUrl,
            query,
            ...(params ? { connectionParams: params } : {}),
            timeoutMs: 30_000,
            handlers: {
              next: (payload, receivedNs) => this.onNext(i, payload, receivedNs),
              error: (description) => {
                this.failures++;
                if (this.failureSamples.length < 5) this.failureSamples.push(description);
              },
            },
          });
        }
      }),
    );
  }

  private onNext(i: number, payload: { data?: any; errors?: unknown[] }, receivedNs: number): void {
    if (payload.errors && payload.errors.length > 0) {
      this.errorPayloads++;
      if (this.failureSamples.length < 5) this.failureSamples.push(`errors: ${JSON.stringify(payload.errors).slice(0, 400)}`);
    }
    const event = payload.data?.eventFeed?.event;
    const id = parseBenchEventId(this.prefix, event?.eventId);
    if (!id) return;
    if (this.needsEntity && typeof event.run?.status !== 'string') this.incomplete++;
    if (id.cell === this.measuredCell) {
      const row = this.received[i]!;
      if (id.seq >= row.length) return;
      if (row[id.seq] === row[id.seq]) this.duplicates++;
      else {
        row[id.seq] = receivedNs;
        this.delivered++;
      }
    } else if (id.cell === this.probeCell) {
      this.firstPayload ??= payload;
      if (this.seen[i] === 0) {
        this.seen[i] = 1;
        this.seenCount++;
      }
    }
  }

  /** Counts events of append run `cell` as "seen"; `reset` forgets what earlier probes saw. */
  probe(cell: number, reset: boolean): void {
    this.probeCell = cell;
    if (reset) {
      this.seen.fill(0);
      this.seenCount = 0;
    }
  }

  measure(cell: number, count: number): void {
    this.received = Array.from({ length: this.size }, () => new Float64Array(count).fill(NaN));
    this.delivered = 0;
    this.duplicates = 0;
    this.measuredCell = cell;
  }

  /** Closes every subscription (and waits for their sockets, at most 10 s). */
  async close(): Promise<void> {
    for (const s of this.subscribers) s?.close();
    await Promise.race([Promise.all(this.subscribers.map((s) => s?.closed)), sleep(10_000)]);
    await sleep(200);
  }
}

// ---------------------------------------------------------------------------------------------
// The run

interface CellResult {
  target: Target;
  subscribers: number;
  eventsCommitted: number;
  appendFailures: number;
  deliveries: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** p50 of the last tenth of the events (a backlog shows as a value far above p50). */
  lastTenthP50Ms: number;
  lost: number;
  duplicates: number;
  incomplete: number;
  errors: number;
  failures: string[];
  notLiveAfterWarmup: number;
  drainTimedOut: boolean;
  /** Gateway process CPU per delivered event, µs (null for direct). */
  gatewayCpuUsPerDelivery: number | null;
  gatewayCpuCores: number | null;
  /** Services process (workflows + monitoring) CPU per delivered event, µs. */
  subgraphsCpuUsPerDelivery: number | null;
  subgraphsCpuCores: number;
  /** This process (every subscriber) over the window, in cores: near 1, the client limits the figures. */
  clientCpuCores: number;
  /** False when the gateway or services were still busy with the warm-up's backlog after 60 s. */
  quietBeforeMeasuring: boolean;
  appendP50Ms: number;
  appendP99Ms: number;
  windowS: number;
  profile?: { file: string; totalMs: number; top: SelfTime[] };
  /** The services process (workflows + monitoring) over the same window. */
  servicesProfile?: { file: string; totalMs: number; top: SelfTime[] };
}

interface MemoryResult {
  /** `floor`: a bare ws server holding the same subscriptions (the cost of the socket alone). */
  target: 'floor' | 'flowgraph' | 'hive';
  idleSubscriptions: number;
  rssKiBPerSubscription: number;
  heapKiBPerSubscription: number;
  externalKiBPerSubscription: number;
  heapTotalKiBPerSubscription: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  gcExposed: boolean;
  notLive: number;
}

const percentile = (sorted: Float64Array | number[], p: number) => (sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!);

const open = { children: new Set<BenchChild>(), databases: new Set<BenchDatabase>(), groups: new Set<SubscriberGroup>() };

/** The close code a gateway answers a `connection_init` without a token with (4403 when authentication is on), or 0 when it acknowledges it. */
async function connectionRefusal(httpUrl: string): Promise<number> {
  const socket = new WebSocket(httpUrl.replace(/^http/, 'ws'), 'graphql-transport-ws');
  return new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.terminate();
      reject(new Error(`${httpUrl}: no answer to connection_init within 10 s`));
    }, 10_000);
    socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init' })));
    socket.on('message', (data) => {
      if (JSON.parse(String(data)).type === 'connection_ack') {
        clearTimeout(timer);
        socket.close();
        resolve(0);
      }
    });
    socket.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
    socket.on('error', () => {});
  });
}

async function main(): Promise<void> {
  const config = parseConfig(process.argv);
  // Credentials of this run, inherited by every child (spawnBenchChild passes process.env).
  installBenchCredentials();
  const clientToken = await benchClientToken('bench', 'viewer');
  const subgraphIdentity = await benchSubgraphIdentity({ subject: 'bench', role: 'viewer' });
  const started = Date.now();
  const loadAtStart = os.loadavg();
  const server = await withAdmin(config.adminUrl, async (c) => {
    const { rows } = await c.query(`SELECT current_setting('server_version') AS v, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc`);
    return rows[0] as { v: string; fsync: string; sc: string };
  });
  const prefix = randomBytes(4).toString('hex');
  const eventsPerCell = Math.round(config.durationS * config.rate);
  const warmupEvents = Math.max(1, Math.round(config.warmupS * config.rate));
  const needGateway: Record<GatewayTarget, boolean> = {
    flowgraph: config.targets.includes('flowgraph'),
    'flowgraph-anonymous': config.targets.includes('flowgraph-anonymous'),
    hive: config.targets.includes('hive'),
    'flowgraph-no-metrics': config.targets.includes('flowgraph-no-metrics'),
    'flowgraph-traced': config.targets.includes('flowgraph-traced'),
  };

  console.log('flowgraph bench:subscriptions');
  console.log(`  server      PostgreSQL ${server.v} at ${redactUrl(config.adminUrl)} (fsync=${server.fsync} synchronous_commit=${server.sc})`);
  console.log(`  machine     Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load ${loadAtStart.map((l) => l.toFixed(2)).join(' / ')} (1/5/15 min)`);
  console.log(`  workload    monitoring eventFeed, each update selecting event.run.status (one workflows entity fetch per event); ${config.rate} appends/s (one observed event per append, monitoring's append path), ${config.durationS} s measured (${eventsPerCell} events) after ${config.warmupS} s warm-up, drain ≤ ${config.drainS} s`);
  console.log(`  cells       subscribers ${config.subscribers.join(', ')} × ${config.targets.join(', ')}; one socket per subscription; idle-memory figure with ${config.idle} subscriptions`);
  console.log(`  latency     receipt here − commit in the appender process (CLOCK_MONOTONIC), over every (subscriber, event)`);
  if (needGateway.hive) console.log(`  hive        @graphql-hive/gateway ${hiveVersion()}, upstream ws, one upstream socket per ${HIVE_BUCKET} clients (flowgraph subgraphs take ≤ 100 subscriptions per socket)`);
  if (config.profile) console.log('  profile     ON: gateways are CPU-profiled in their measured windows at the largest subscriber count; those figures are perturbed');
  console.log('');

  // Databases, services, appender, gateways.
  log('preparing databases...');
  const databases: Record<'workflows' | 'monitoring', BenchDatabase> = {} as never;
  for (const service of ['workflows', 'monitoring'] as const) {
    const db = await createMigratedBenchDatabase(config.adminUrl, `subs_${service}`, service);
    open.databases.add(db);
    databases[service] = db;
  }
  log('starting services...');
  const services = spawnBenchChild('services', 'subscriptionServices.ts');
  open.children.add(services);
  const urls = await services.call<{ workflows: string; monitoring: string; runIds: string[] }>('start', {
    workflowsUrl: databases.workflows.url,
    monitoringUrl: databases.monitoring.url,
    runs: config.runs,
  });
  const keeper = new SubscriberGroup(1, prefix, false);
  open.groups.add(keeper);
  await keeper.open(urls.monitoring, KEEPER_QUERY, () => ({ identity: subgraphIdentity }));
  const appender = spawnBenchChild('appender', 'subscriptionAppender.ts');
  open.children.add(appender);
  await appender.call('open', { monitoringUrl: databases.monitoring.url, prefix });

  const supergraphSdl = readFileSync(new URL('../supergraph.graphql', import.meta.url), 'utf8');
  const gateways: Partial<Record<GatewayTarget, { child: BenchChild; url: string }>> = {};
  // flowgraph-traced exports its spans over OTLP/HTTP to a sink process (bench/otlpSink.ts), as to a collector.
  let otlpSink: BenchChild | undefined;
  if (needGateway['flowgraph-traced']) {
    otlpSink = spawnBenchChild('otlp-sink', 'otlpSink.ts');
    open.children.add(otlpSink);
  }
  const sinkUrl = otlpSink ? (await otlpSink.call<{ url: string }>('start')).url : '';
  const observabilityEnv = (kind: GatewayTarget): Record<string, string> =>
    kind === 'flowgraph-no-metrics' ? { FLOWGRAPH_METRICS: 'off' } : kind === 'flowgraph-traced' ? { FLOWGRAPH_METRICS: 'on', OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl } : {};
  for (const kind of ['flowgraph', 'flowgraph-anonymous', 'hive', 'flowgraph-no-metrics', 'flowgraph-traced'] as const) {
    if (!needGateway[kind]) continue;
    log(`starting ${kind} gateway...`);
    const child = spawnBenchChild(`${kind} gateway`, 'subscriptionGateway.ts', { execArgv: ['--expose-gc'], env: observabilityEnv(kind) });
    open.children.add(child);
    const { url } = await child.call<{ url: string }>('start', {
      kind: kind === 'hive' ? 'hive' : 'flowgraph',
      auth: kind === 'flowgraph-anonymous' ? 'anonymous' : 'on',
      supergraphSdl,
      urls: { workflows: urls.workflows, monitoring: urls.monitoring },
      subgraphIdentity,
    });
    gateways[kind] = { child, url };
  }
  const endpoint = (target: Target) => (target === 'direct' ? urls.monitoring : gateways[target]!.url);
  const queryOf = (target: Target) => (target === 'direct' ? DIRECT_QUERY : GATEWAY_QUERY);
  const paramsOf = (target: Target) => (i: number): Record<string, unknown> | undefined => {
    if (target === 'hive') return { bucket: Math.floor(i / HIVE_BUCKET) };
    if (target === 'flowgraph' || target === 'flowgraph-no-metrics' || target === 'flowgraph-traced') return { authorization: `Bearer ${clientToken}` };
    if (target === 'direct') return { identity: subgraphIdentity };
    return undefined;
  };
  // Authentication is really on at `flowgraph`: a connection without a token is refused.
  if (needGateway.flowgraph) {
    const refused = await connectionRefusal(gateways.flowgraph!.url);
    if (refused !== 4403) throw new Error(`the flowgraph gateway accepted a connection_init without a token (close code ${refused})`);
  }

  let nextCell = 1;
  const appendRun = (count: number) =>
    appender.call<{ commitNs: number[]; appendMs: number[]; failures: number; lastError: string; lateMs: number }>(
      'run',
      { cell: nextCell++, count, rate: config.rate, runIds: urls.runIds },
      Math.max(120_000, (count / config.rate) * 1000 * 3),
    );

  /** Appends (rate-paced) until every member of `group` has seen one event of the current probe, at most `maxMs`. */
  async function probeUntilLive(group: SubscriberGroup, eventsPerRound: number, maxMs: number): Promise<number> {
    const deadline = Date.now() + maxMs;
    let first = true;
    while (first || (group.seenCount < group.size && Date.now() < deadline)) {
      group.probe(nextCell, first);
      first = false;
      await appendRun(eventsPerRound);
      await waitFor(() => group.seenCount >= group.size, 2_000);
    }
    return group.size - group.seenCount;
  }

  // 1. Each target delivers the federated payload.
  log('checking payloads...');
  const samples: Partial<Record<Target, unknown>> = {};
  for (const target of config.targets) {
    const group = new SubscriberGroup(1, prefix, target !== 'direct');
    open.groups.add(group);
    await group.open(endpoint(target), queryOf(target), paramsOf(target));
    const notLive = await probeUntilLive(group, 3, 20_000);
    await group.close();
    open.groups.delete(group);
    const event = (group.firstPayload as { data?: any } | undefined)?.data?.eventFeed?.event;
    const childOutput = () => {
      const child = target === 'direct' ? services : gateways[target]!.child;
      if (process.env.BENCH_DUMP_CHILD) writeFileSync(process.env.BENCH_DUMP_CHILD, child.output());
      return `\n--- ${child.name} output (last lines) ---\n${child.output().split('\n').slice(-30).join('\n')}`;
    };
    if (notLive > 0 || !event) {
      // Which side is stuck: does monitoring itself deliver to a new direct subscriber now?
      const probe = new SubscriberGroup(1, prefix, false);
      open.groups.add(probe);
      await probe.open(urls.monitoring, DIRECT_QUERY, () => undefined);
      const directWorks = (await probeUntilLive(probe, 3, 10_000)) === 0;
      await probe.close();
      open.groups.delete(probe);
      throw new Error(
        `${target}: no update received within 20 s${group.failureSamples.length ? `: ${group.failureSamples.join('; ')}` : ''}` +
          `; a direct subscription to monitoring opened afterwards ${directWorks ? 'does' : 'does NOT'} receive updates${childOutput()}`,
      );
    }
    if (target !== 'direct' && (typeof event.run?.status !== 'string' || group.incomplete > 0)) {
      throw new Error(`${target}: the update lacks the workflows field run.status: ${JSON.stringify(group.firstPayload)}${childOutput()}`);
    }
    if (group.errorPayloads > 0) throw new Error(`${target}: updates carry errors: ${group.failureSamples.join('; ')}${childOutput()}`);
    samples[target] = group.firstPayload;
  }
  console.log('Payloads (first update received by each target, verified before measuring)');
  for (const target of config.targets) console.log(`  ${target.padEnd(19)} ${JSON.stringify(samples[target])}`);
  console.log('');

  // 2. Memory per idle subscription: each gateway, and a bare ws server as the floor.
  const memory: MemoryResult[] = [];
  const floorChild = spawnBenchChild('ws floor', 'subscriptionGateway.ts', { execArgv: ['--expose-gc'] });
  open.children.add(floorChild);
  const floorUrl = (await floorChild.call<{ url: string }>('start', { kind: 'floor', supergraphSdl: '', urls: {} })).url;
  for (const kind of ['floor', 'flowgraph', 'hive'] as const) {
    const child = kind === 'floor' ? floorChild : gateways[kind]?.child;
    if (!child) continue;
    const url = kind === 'floor' ? floorUrl : gateways[kind]!.url;
    log(`idle memory: ${kind}, ${config.idle} subscriptions...`);
    await waitQuiet([child.pid, services.pid], 30_000);
    const before = await child.call<NodeJS.MemoryUsage & { gcExposed: boolean }>('memory');
    const rssBefore = await processRssBytes(child.pid);
    const group = new SubscriberGroup(config.idle, prefix, true);
    open.groups.add(group);
    await group.open(url, GATEWAY_QUERY, paramsOf(kind === 'floor' ? 'flowgraph' : kind));
    let notLive = 0;
    if (kind === 'floor') {
      // Nothing flows from the floor: wait until it holds every subscription.
      const deadline = Date.now() + 30_000;
      while ((await child.call<number>('subscriptions')) < config.idle && Date.now() < deadline) await sleep(100);
      notLive = config.idle - (await child.call<number>('subscriptions'));
    } else {
      // One event each proves every subscription is established end to end; then nothing flows.
      notLive = await probeUntilLive(group, 1, 30_000);
    }
    await sleep(config.settleS * 1000);
    const after = await child.call<NodeJS.MemoryUsage & { gcExposed: boolean }>('memory');
    const rssAfter = await processRssBytes(child.pid);
    await group.close();
    open.groups.delete(group);
    const per = (a: number, b: number) => (a - b) / config.idle / 1024;
    memory.push({
      target: kind,
      idleSubscriptions: config.idle,
      rssKiBPerSubscription: per(rssAfter, rssBefore),
      heapKiBPerSubscription: per(after.heapUsed, before.heapUsed),
      externalKiBPerSubscription: per(after.external, before.external),
      heapTotalKiBPerSubscription: per(after.heapTotal, before.heapTotal),
      rssBeforeMiB: rssBefore / 1024 / 1024,
      rssAfterMiB: rssAfter / 1024 / 1024,
      gcExposed: after.gcExposed,
      notLive,
    });
  }
  await floorChild.stop();
  open.children.delete(floorChild);

  // 3. Latency, loss and CPU cells.
  const cells: CellResult[] = [];
  const largest = Math.max(...config.subscribers);
  for (const n of config.subscribers) {
    for (const target of config.targets) {
      const gateway = target === 'direct' ? undefined : gateways[target];
      const pids = [services.pid, ...(gateway ? [gateway.child.pid] : []), ...Object.values(gateways).map((g) => g!.child.pid)];
      await waitQuiet([...new Set(pids)], 60_000);
      log(`${String(n).padStart(5)} × ${target}: opening...`);
      const group = new SubscriberGroup(n, prefix, target !== 'direct');
      open.groups.add(group);
      await group.open(endpoint(target), queryOf(target), paramsOf(target));
      log(`${String(n).padStart(5)} × ${target}: warm-up...`);
      // Warm-up: --warmup seconds of appends, at most ~20,000 deliveries (a slow target's backlog stays bounded).
      const notLive = await probeUntilLive(group, Math.min(warmupEvents, Math.max(3, Math.ceil(20_000 / n))), 30_000);
      // The measured window starts on an empty pipeline: whatever the warm-up queued is delivered first.
      const quietBeforeMeasuring = await waitQuiet([...new Set(pids)], 60_000);

      const cell = nextCell;
      group.measure(cell, eventsPerCell);
      const profiling = config.profile && gateway !== undefined && n === largest;
      if (profiling) {
        await gateway.child.call('profileStart');
        await services.call('profileStart');
      }
      const gwCpu0 = gateway ? await processCpuMicros(gateway.child.pid) : 0;
      const svcCpu0 = await processCpuMicros(services.pid);
      const clientCpu0 = process.cpuUsage();
      const t0 = nowNs();
      log(`${String(n).padStart(5)} × ${target}: measuring ${config.durationS} s...`);
      const run = await appendRun(eventsPerCell);
      const committed = run.commitNs.filter((t) => t === t).length;
      // Drain: until every subscriber has every committed event, or --drain seconds.
      const expected = committed * n;
      const drained = await waitFor(() => group.delivered >= expected, config.drainS * 1000, 10);
      const gwCpu1 = gateway ? await processCpuMicros(gateway.child.pid) : 0;
      const svcCpu1 = await processCpuMicros(services.pid);
      const clientCpu = process.cpuUsage(clientCpu0);
      const windowS = (nowNs() - t0) / 1e9;
      let profile: CellResult['profile'];
      let servicesProfile: CellResult['profile'];
      if (profiling) {
        const dir = await mkdtemp(path.join(os.tmpdir(), 'fg-bench-subs-'));
        profile = await gateway.child.call('profileStop', { file: path.join(dir, `${target}-${n}.cpuprofile`) });
        servicesProfile = await services.call('profileStop', { file: path.join(dir, `services-during-${target}-${n}.cpuprofile`) });
      }
      group.measuredCell = -1;

      // Latencies over every (subscriber, committed event).
      const latencies = new Float64Array(group.delivered);
      let k = 0;
      let receivedOfCommitted = 0;
      for (const row of group.received) {
        for (let seq = 0; seq < row.length; seq++) {
          const commit = run.commitNs[seq]!;
          const received = row[seq]!;
          if (commit !== commit || received !== received) continue;
          latencies[k++] = (received - commit) / 1e6;
          receivedOfCommitted++;
        }
      }
      // The last tenth of the events alone: far above the whole p50, a backlog grew during the window.
      const tailFrom = Math.floor(eventsPerCell * 0.9);
      const tail: number[] = [];
      for (const row of group.received) {
        for (let seq = tailFrom; seq < row.length; seq++) {
          const commit = run.commitNs[seq]!;
          const received = row[seq]!;
          if (commit === commit && received === received) tail.push((received - commit) / 1e6);
        }
      }
      tail.sort((a, b) => a - b);
      const sorted = latencies.subarray(0, k).sort();
      const appendSorted = run.appendMs.filter((t) => t === t).sort((a, b) => a - b);
      const deliveries = group.delivered;
      const result: CellResult = {
        target,
        subscribers: n,
        eventsCommitted: committed,
        appendFailures: run.failures,
        deliveries,
        p50Ms: percentile(sorted, 50),
        p99Ms: percentile(sorted, 99),
        maxMs: sorted.length ? sorted[sorted.length - 1]! : NaN,
        lastTenthP50Ms: percentile(tail, 50),
        lost: expected - receivedOfCommitted,
        duplicates: group.duplicates,
        incomplete: group.incomplete,
        errors: group.errorPayloads + group.failures,
        failures: [...group.failureSamples],
        notLiveAfterWarmup: notLive,
        drainTimedOut: !drained,
        gatewayCpuUsPerDelivery: gateway && deliveries > 0 ? (gwCpu1 - gwCpu0) / deliveries : null,
        gatewayCpuCores: gateway ? (gwCpu1 - gwCpu0) / 1e6 / windowS : null,
        subgraphsCpuUsPerDelivery: deliveries > 0 ? (svcCpu1 - svcCpu0) / deliveries : null,
        subgraphsCpuCores: (svcCpu1 - svcCpu0) / 1e6 / windowS,
        clientCpuCores: (clientCpu.user + clientCpu.system) / 1e6 / windowS,
        quietBeforeMeasuring,
        appendP50Ms: percentile(appendSorted, 50),
        appendP99Ms: percentile(appendSorted, 99),
        windowS,
        ...(profile ? { profile } : {}),
        ...(servicesProfile ? { servicesProfile } : {}),
      };
      cells.push(result);
      log(
        `${String(n).padStart(5)} × ${target}: p50 ${fmt(result.p50Ms, 1)} ms, p99 ${fmt(result.p99Ms, 1)} ms, lost ${result.lost}` +
          (result.gatewayCpuUsPerDelivery !== null ? `, gateway ${fmt(result.gatewayCpuUsPerDelivery, 1)} µs/delivery` : '') +
          (run.failures ? `, ${run.failures} append failures (${run.lastError})` : ''),
      );
      await group.close();
      open.groups.delete(group);
    }
  }

  // Output.
  console.log(`Delivery (${eventsPerCell} events per cell at ${config.rate}/s; latency = client receipt − append commit; lost = committed × subscribers − received after ≤ ${config.drainS} s drain)`);
  console.log(
    table(
      ['subs', 'target', 'events', 'deliveries', 'p50 ms', 'p99 ms', 'max ms', 'p50 last 10%', 'lost', 'dup', 'errors', 'no entity', 'gw CPU µs/deliv', 'gw cores', 'subgraphs µs/deliv', 'subgraphs cores', 'client cores', 'append p50 ms'],
      cells.map((c) => [
        fmt(c.subscribers),
        c.target,
        fmt(c.eventsCommitted),
        fmt(c.deliveries),
        fmt(c.p50Ms, 2),
        fmt(c.p99Ms, 2),
        fmt(c.maxMs, 1),
        fmt(c.lastTenthP50Ms, 1),
        fmt(c.lost) + (c.drainTimedOut ? '*' : ''),
        fmt(c.duplicates),
        fmt(c.errors),
        c.target === 'direct' ? '-' : fmt(c.incomplete),
        c.gatewayCpuUsPerDelivery === null ? '-' : fmt(c.gatewayCpuUsPerDelivery, 1),
        c.gatewayCpuCores === null ? '-' : fmt(c.gatewayCpuCores, 2),
        fmt(c.subgraphsCpuUsPerDelivery, 1),
        fmt(c.subgraphsCpuCores, 2),
        fmt(c.clientCpuCores, 2),
        fmt(c.appendP50Ms, 2),
      ]),
      [true, false, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true, true],
    ),
  );
  if (cells.some((c) => c.drainTimedOut)) console.log('  * the drain period ended before every delivery arrived: the missing ones count as lost');
  for (const c of cells) {
    if (c.failures.length) console.log(`  ${c.subscribers} × ${c.target}: ${c.errors} errors, e.g. ${c.failures.slice(0, 2).join(' | ')}`);
    if (c.notLiveAfterWarmup) console.log(`  ${c.subscribers} × ${c.target}: ${c.notLiveAfterWarmup} subscriptions had received nothing after the warm-up`);
    if (c.appendFailures) console.log(`  ${c.subscribers} × ${c.target}: ${c.appendFailures} appends failed`);
    if (!c.quietBeforeMeasuring) console.log(`  ${c.subscribers} × ${c.target}: still busy with the warm-up's backlog 60 s after it; measured anyway`);
    if (c.clientCpuCores > 0.8) console.log(`  ${c.subscribers} × ${c.target}: the subscribers' process used ${fmt(c.clientCpuCores, 2)} cores: the client may limit these figures`);
  }
  console.log('');

  const of = (target: Target, n: number) => cells.find((c) => c.target === target && c.subscribers === n);
  const ratio = (a: number | null | undefined, b: number | null | undefined) => (a !== null && a !== undefined && b !== null && b !== undefined && b > 0 ? a / b : null);
  console.log('Ratios (p99 latency: < 1 means the first is faster; CPU: < 1 means the first uses less per delivery)');
  console.log(
    table(
      ['subs', 'auth/anonymous p50', 'auth/anonymous p99', 'auth/anonymous CPU', 'flowgraph/direct p99', 'hive/direct p99', 'flowgraph/hive p99', 'flowgraph/hive p50', 'flowgraph/hive CPU'],
      config.subscribers.map((n) => [
        fmt(n),
        fmt(ratio(of('flowgraph', n)?.p50Ms, of('flowgraph-anonymous', n)?.p50Ms), 2),
        fmt(ratio(of('flowgraph', n)?.p99Ms, of('flowgraph-anonymous', n)?.p99Ms), 2),
        fmt(ratio(of('flowgraph', n)?.gatewayCpuUsPerDelivery, of('flowgraph-anonymous', n)?.gatewayCpuUsPerDelivery), 2),
        fmt(ratio(of('flowgraph', n)?.p99Ms, of('direct', n)?.p99Ms), 2),
        fmt(ratio(of('hive', n)?.p99Ms, of('direct', n)?.p99Ms), 2),
        fmt(ratio(of('flowgraph', n)?.p99Ms, of('hive', n)?.p99Ms), 2),
        fmt(ratio(of('flowgraph', n)?.p50Ms, of('hive', n)?.p50Ms), 2),
        fmt(ratio(of('flowgraph', n)?.gatewayCpuUsPerDelivery, of('hive', n)?.gatewayCpuUsPerDelivery), 2),
      ]),
      [true, true, true, true, true, true, true, true, true],
    ),
  );
  console.log('');

  if (memory.length) {
    console.log('Memory per idle subscription (one socket each; after − before opening them, full GCs first; RSS from /proc; floor = a bare ws server holding the same subscriptions, no GraphQL)');
    console.log(
      table(
        ['gateway', 'idle subs', 'RSS KiB/sub', 'heap used KiB/sub', 'heap total KiB/sub', 'external KiB/sub', 'RSS before MiB', 'RSS after MiB'],
        memory.map((m) => [
          m.target,
          fmt(m.idleSubscriptions),
          fmt(m.rssKiBPerSubscription, 1),
          fmt(m.heapKiBPerSubscription, 1),
          fmt(m.heapTotalKiBPerSubscription, 1),
          fmt(m.externalKiBPerSubscription, 2),
          fmt(m.rssBeforeMiB, 1),
          fmt(m.rssAfterMiB, 1),
        ]),
        [false, true, true, true, true, true, true, true],
      ),
    );
    for (const m of memory) if (m.notLive) console.log(`  ${m.target}: ${m.notLive} idle subscriptions never received the probe event`);
    console.log('');
  }

  // Targets.
  const verdict = (ok: boolean | null) => (ok === null ? 'n/a' : ok ? 'PASS' : 'MISS');
  const at = config.subscribers.includes(TARGET_AT) ? TARGET_AT : largest;
  const atNote = at === TARGET_AT ? `at ${fmt(TARGET_AT)} subscribers` : `at ${fmt(at)} subscribers (the target is stated at ${fmt(TARGET_AT)}, not measured in this run)`;
  const fg = of('flowgraph', at);
  const direct = of('direct', at);
  const p99Ratio = ratio(fg?.p99Ms, direct?.p99Ms);
  const fgCells = cells.filter((c) => c.target === 'flowgraph');
  const lostTotal = fgCells.reduce((sum, c) => sum + c.lost, 0);
  const fgMemory = memory.find((m) => m.target === 'flowgraph');
  const floorMemory = memory.find((m) => m.target === 'floor');
  const targets = [
    {
      name: `p99 through flowgraph's gateway ≤ ${TARGET_P99_RATIO}× direct ${atNote}`,
      value: p99Ratio === null ? 'not measured' : `${fmt(fg!.p99Ms, 2)} ms vs ${fmt(direct!.p99Ms, 2)} ms direct = ${fmt(p99Ratio, 2)}×`,
      ok: p99Ratio === null ? null : p99Ratio <= TARGET_P99_RATIO,
    },
    {
      name: "0 events lost through flowgraph's gateway (every cell)",
      value: fgCells.length ? `${fmt(lostTotal)} lost (${fgCells.map((c) => `${c.subscribers}: ${c.lost}`).join(', ')})` : 'not measured',
      ok: fgCells.length ? lostTotal === 0 : null,
    },
    {
      name: `gateway CPU ≤ ${TARGET_CPU_US} µs per delivery ${atNote}`,
      value: fg ? `${fmt(fg.gatewayCpuUsPerDelivery, 1)} µs (${fgCells.map((c) => `${c.subscribers}: ${fmt(c.gatewayCpuUsPerDelivery, 1)}`).join(', ')})` : 'not measured',
      ok: fg ? (fg.gatewayCpuUsPerDelivery ?? Infinity) <= TARGET_CPU_US : null,
    },
    {
      name: `gateway memory ≤ ${TARGET_IDLE_KIB} KiB per idle subscription (RSS, ${fmt(config.idle)} idle)`,
      value: fgMemory
        ? `${fmt(fgMemory.rssKiBPerSubscription, 1)} KiB RSS (heap ${fmt(fgMemory.heapKiBPerSubscription, 1)} KiB${floorMemory ? `; ${fmt(fgMemory.rssKiBPerSubscription - floorMemory.rssKiBPerSubscription, 1)} KiB RSS above the bare-ws floor of ${fmt(floorMemory.rssKiBPerSubscription, 1)}` : ''})`
        : 'not measured',
      ok: fgMemory ? fgMemory.rssKiBPerSubscription <= TARGET_IDLE_KIB : null,
    },
  ];
  console.log('Targets (issue 6)');
  for (const t of targets) console.log(`  ${verdict(t.ok).padEnd(4)}  ${t.name}: ${t.value}`);
  console.log('');
  const authTargets = config.subscribers.flatMap((n) => {
    const on = of('flowgraph', n);
    const anonymous = of('flowgraph-anonymous', n);
    if (!on || !anonymous) return [];
    return (
      [
        ['p50', on.p50Ms, anonymous.p50Ms],
        ['p99', on.p99Ms, anonymous.p99Ms],
        ['gateway CPU per delivery', on.gatewayCpuUsPerDelivery, anonymous.gatewayCpuUsPerDelivery],
      ] as const
    ).map(([what, a, b]) => {
      const r = ratio(a, b);
      return { name: `${what} with authentication on ≤ ${TARGET_AUTH_RATIO}× anonymous at ${fmt(n)} subscribers`, value: `${fmt(a, 2)} vs ${fmt(b, 2)} = ${fmt(r, 2)}×`, ok: r === null ? null : r <= TARGET_AUTH_RATIO };
    });
  });
  if (authTargets.length) {
    console.log('Targets (issue 7: authentication on vs anonymous, same run)');
    for (const t of authTargets) console.log(`  ${verdict(t.ok).padEnd(4)}  ${t.name}: ${t.value}`);
    console.log('');
  }
  const observabilityTargets = config.subscribers.flatMap((n) => {
    const off = of('flowgraph-no-metrics', n);
    if (!off) return [];
    return (['flowgraph', 'flowgraph-traced'] as const).flatMap((target) => {
      const on = of(target, n);
      if (!on) return [];
      const goal = OBSERVABILITY_GOALS[target];
      const what = target === 'flowgraph' ? 'metrics (tracing off)' : 'metrics + tracing';
      return (
        [
          ['p50', on.p50Ms, off.p50Ms],
          ['p99', on.p99Ms, off.p99Ms],
          ['gateway CPU per delivery', on.gatewayCpuUsPerDelivery, off.gatewayCpuUsPerDelivery],
        ] as const
      ).map(([measure, a, b]) => {
        const r = ratio(a, b);
        return { name: `${measure} with ${what} ≤ ${goal}× without observability at ${fmt(n)} subscribers`, value: `${fmt(a, 2)} vs ${fmt(b, 2)} = ${fmt(r, 3)}×`, ok: r === null ? null : r <= goal };
      });
    });
  });
  if (observabilityTargets.length) {
    console.log('Targets (issue 9: the gateway with metrics, and with metrics + tracing, vs without observability, same run; the services are shared and keep their default metrics)');
    for (const t of observabilityTargets) console.log(`  ${verdict(t.ok).padEnd(4)}  ${t.name}: ${t.value}`);
    if (otlpSink) {
      const exported = await otlpSink.call<{ requests: number; bytes: number; spans: number }>('stats');
      console.log(`  spans received by the OTLP sink from flowgraph-traced: ${exported.spans} in ${exported.requests} requests (${exported.bytes} bytes)`);
    }
    console.log('');
  }

  for (const c of cells) {
    for (const [what, p] of [[`${c.target} gateway`, c.profile], ['services (workflows + monitoring)', c.servicesProfile]] as const) {
      if (!p) continue;
      console.log(`CPU profile: ${what}, ${c.target} cell, ${c.subscribers} subscribers, measured window (${fmt(p.totalMs, 0)} ms of samples, idle included; ${p.file})`);
      console.log(
        table(
          ['self ms', '%', 'function', 'location'],
          p.top.slice(0, 20).map((t) => [fmt(t.selfMs, 1), fmt(t.percent, 1), t.functionName, t.location]),
          [true, true, false, false],
        ),
      );
      console.log('');
    }
  }

  const loadAtEnd = os.loadavg();
  console.log(`Total ${((Date.now() - started) / 1000).toFixed(1)} s; load average at end ${loadAtEnd.map((l) => l.toFixed(2)).join(' / ')}.`);
  if (Math.max(loadAtStart[0]!, loadAtEnd[0]!) > os.cpus().length) {
    console.log(`WARNING: the 1-minute load average exceeded the ${os.cpus().length} CPUs during the run: other processes competed with the benchmark; rerun on a quiet machine before trusting these figures.`);
  }
  console.log(
    JSON.stringify({
      bench: 'subscriptions',
      startedAt: new Date(started).toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      server,
      loadAverageAtStart: loadAtStart,
      loadAverageAtEnd: loadAtEnd,
      config: { ...config, adminUrl: redactUrl(config.adminUrl) },
      cells: cells.map(({ profile, servicesProfile, ...c }) => ({
        ...c,
        ...(profile ? { profile: { file: profile.file, top: profile.top.slice(0, 10) } } : {}),
        ...(servicesProfile ? { servicesProfile: { file: servicesProfile.file, top: servicesProfile.top.slice(0, 10) } } : {}),
      })),
      memory,
      targets: targets.map((t) => ({ ...t, verdict: verdict(t.ok) })),
    }),
  );
}

function hiveVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../node_modules/@graphql-hive/gateway/package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  return (cleaning ??= (async () => {
    for (const group of open.groups) for (const s of group.subscribers) s?.close();
    await Promise.all([...open.children].map((child) => child.stop(5_000).catch(() => {})));
    for (const db of open.databases) await db.drop().catch((error: unknown) => console.error(`could not drop ${db.name}: ${String(error)}`));
  })());
}

async function cleanupAndExit(code: number): Promise<never> {
  const force = setTimeout(() => process.exit(code), 20_000);
  force.unref();
  await cleanup();
  process.exit(code);
}

// Ctrl-C reaches every process of the group, and `tsx` relays it once more: a second SIGINT
// within 2 s is that echo; a later one exits at once.
let interruptedAt = 0;
process.on('SIGINT', () => {
  if (interruptedAt === 0) {
    interruptedAt = Date.now();
    process.stderr.write('\ninterrupted: stopping children and dropping databases (Ctrl-C again to exit at once)...\n');
    void cleanupAndExit(130);
  } else if (Date.now() - interruptedAt > 2_000) process.exit(130);
});
process.once('SIGTERM', () => void cleanupAndExit(143));

main().then(
  () => cleanupAndExit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : error);
    void cleanupAndExit(1);
  },
);
