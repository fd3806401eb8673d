/**
 * `npm run bench:gateway`: HTTP queries through gateways. By default the cost of authentication (issue 7), in one
 * run: the same query workload through two flowgraph gateways on the same subgraphs, one with
 * authentication ON (every request carries `Authorization: Bearer <HS256 JWT>`, verified per
 * request; the gateway signs the caller's identity for the subgraphs, which verify it) and one in
 * anonymous mode (no client token verified; the subgraphs still verify the gateway's identity,
 * as they always do).
 *
 * Workload: `query BenchRun($id: ID!) { run(id: $id) { id status workflow { id name } timeline(first: 5) { event { type } } } }`,
 * a workflows query with a monitoring entity fetch (two subgraph requests per operation), on one
 * of `--runs` runs picked in turn; `--concurrency` closed-loop clients in this process.
 * `--rounds` rounds of `--duration` seconds per mode, ordered on/anon, anon/on, ... so that drift
 * (caches, JIT, autovacuum) falls on both. Each mode's first round is preceded by a 3 s warm-up.
 *
 * Printed per mode: operations/s (median round), latency p50/p99 over every request, the
 * gateway's CPU time per operation (all threads, /proc/<pid>/task/<tid>/schedstat) and the
 * services' — and the ratio auth/anonymous with the issue's goal (within 10 %: PASS/MISS).
 *
 * With `--observability` (issue 9) the modes are instead the whole stack — gateway and services —
 * with authentication on and observability off (`FLOWGRAPH_METRICS=off`, no OTLP endpoint), with
 * metrics (the default: `/metrics` on every port, tracing off) and with metrics and tracing
 * (`OTEL_EXPORTER_OTLP_ENDPOINT` pointing at an OTLP sink process, bench/otlpSink.ts: every
 * request traced and exported): one gateway child and one services child per mode, each on its
 * own databases, rounds rotating across modes; goals: metrics within 5 %, metrics + tracing within 15 %.
 *
 * Process layout: this process (clients), one child with the workflows and monitoring services
 * (bench/subscriptionServices.ts) per observability setting, one child per gateway (bench/httpGateway.ts).
 *
 * With `--peers` (issue 13, bench/gatewayPeers.ts) the targets are instead flowgraph's gateway
 * (bench/httpGateway.ts, default settings, and with `dedupeInFlight: false`), stock
 * `@apollo/gateway` + `@apollo/server` with no plugin added, Hive Gateway (default settings, and
 * with its HTTP transport's `deduplicateInflightRequests: false`; both in bench/peerGateway.ts)
 * and the workflows subgraph directly (Q1 only), each in its own child, over the four subgraphs
 * in one more child (bench/peerServices.ts, seeded with workflows, runs and documents with
 * entities); three queries (Q1 `workflows`, Q2 `runs` with steps and `timeline(first: 5)`, Q3
 * `documents` with `entities(first: 10)`), each with 20 concurrent identical requests and with
 * 20 distinct ones; every answer checked against a reference (a wrong one aborts). Printed per
 * cell: rps, p50/p99, gateway CPU ms per request, max gateway RSS; then flowgraph's ratios to
 * stock and Hive with the issue's targets (≥ 3× stock, ≥ Hive default, RSS ≤ stock) as PASS/MISS.
 *
 * Flags: see `--help` (`--quick`: 1 round of 5 s; with `--peers` 1 round of 3 s). Env:
 * FLOWGRAPH_ADMIN_DATABASE_URL (default the machine's PostgreSQL). Last line of stdout (`--peers`): one JSON object.
 */
import { Command, InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { createMigratedBenchDatabase, type BenchDatabase } from './benchDatabase.ts';
import { processCpuMicros, spawnBenchChild, type BenchChild } from './childProcess.ts';
import { DEFAULT_ADMIN_URL } from './config.ts';
import { parseAuthConfig } from '../config/authConfig.ts';
import { createAuthenticator } from '../gateway/auth.ts';
import { benchClientToken, installBenchCredentials } from './credentials.ts';
import { PEER_QUERIES, PEER_TARGETS, PEER_WORKLOADS, runPeers, type PeerQuery, type PeerTarget, type PeerWorkload } from './gatewayPeers.ts';

const QUERY = 'query BenchRun($id: ID!) { run(id: $id) { id status workflow { id name } timeline(first: 5) { event { type } } } }';
/** The issue's goal: authentication ON within 10 % of the same run without it. */
const GOAL_RATIO = 1.1;
/** Issue 9's goals against observability off: metrics (tracing off) within 5 %, metrics + tracing within 15 %. */
const OBSERVABILITY_GOALS = { metrics: 1.05, traced: 1.15 } as const;
/** `on`/`anonymous`: authentication compared (observability as by default); `off`/`metrics`/`traced`: observability compared, authentication on. */
type Mode = 'on' | 'anonymous' | 'off' | 'metrics' | 'traced';

const int = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
  return n;
};
const list = <T extends string>(allowed: readonly T[]) => (value: string): T[] => {
  const items = value.split(',').map((item) => item.trim()).filter(Boolean);
  const unknown = items.filter((item) => !allowed.includes(item as T));
  if (items.length === 0 || unknown.length > 0) throw new InvalidArgumentError(`expected a comma-separated list of ${allowed.join(', ')}`);
  return items as T[];
};
const parsed = new Command('bench:gateway')
  .description('HTTP query throughput, latency and CPU through the gateway: authentication on vs anonymous (default), observability (--observability), or flowgraph vs stock @apollo/gateway and Hive Gateway (--peers)')
  .option('--concurrency <n>', 'closed-loop clients (default 8; 20 with --peers)', int(1, 256))
  .option('--duration <s>', 'seconds per round (default 10; 5 with --peers)', int(1, 600))
  .option('--rounds <n>', 'rounds per mode (default 3; 2 with --peers)', int(1, 20))
  .option('--runs <n>', 'workflow runs queried in turn', int(1, 1000), 50)
  .option('--quick', '1 round of 5 s (--peers: 1 round of 3 s, 1 s warm-up)')
  .option('--observability', 'compare observability off, metrics, metrics + tracing (authentication on) instead of authentication on vs anonymous')
  .option('--peers', "compare flowgraph's gateway with stock @apollo/gateway and Hive Gateway on Q1-Q3 (issue 13)")
  .option('--targets <list>', `--peers: targets (${PEER_TARGETS.join(',')})`, list(PEER_TARGETS), [...PEER_TARGETS])
  .option('--queries <list>', `--peers: queries (${PEER_QUERIES.join(',')})`, list(PEER_QUERIES), [...PEER_QUERIES])
  .option('--workloads <list>', `--peers: workloads (${PEER_WORKLOADS.join(',')})`, list(PEER_WORKLOADS), [...PEER_WORKLOADS])
  .option('--warmup <s>', '--peers: unmeasured seconds per cell before the rounds (default 2)', int(0, 60))
  .option('--profile', "--peers: afterwards, CPU profiles of flowgraph's and stock's gateways under Q1 in the first --workloads given (default identical), their top self time printed")
  .parse()
  .opts<{
    concurrency?: number;
    duration?: number;
    rounds?: number;
    runs: number;
    quick?: boolean;
    observability?: boolean;
    peers?: boolean;
    targets: PeerTarget[];
    queries: PeerQuery[];
    workloads: PeerWorkload[];
    warmup?: number;
    profile?: boolean;
  }>();
const adminUrl = process.env.FLOWGRAPH_ADMIN_DATABASE_URL || DEFAULT_ADMIN_URL;
if (parsed.peers) {
  if (parsed.observability) throw new InvalidArgumentError('--peers and --observability are separate modes');
  if (parsed.profile && !parsed.queries.includes('Q1')) throw new InvalidArgumentError('--profile profiles under Q1: add Q1 to --queries');
  if (parsed.profile && !parsed.targets.some((t) => t === 'flowgraph' || t === 'stock')) throw new InvalidArgumentError('--profile profiles flowgraph and stock: add one of them to --targets');
  await runPeers({
    adminUrl,
    concurrency: parsed.concurrency ?? 20,
    duration: parsed.duration ?? (parsed.quick ? 3 : 5),
    rounds: parsed.rounds ?? (parsed.quick ? 1 : 2),
    warmup: parsed.warmup ?? (parsed.quick ? 1 : 2),
    targets: parsed.targets,
    queries: parsed.queries,
    workloads: parsed.workloads,
    profile: parsed.profile ?? false,
  });
  process.exit(process.exitCode ?? 0);
}
const opts = {
  ...parsed,
  concurrency: parsed.concurrency ?? 8,
  duration: parsed.quick ? 5 : (parsed.duration ?? 10),
  rounds: parsed.quick ? 1 : (parsed.rounds ?? 3),
};

// Credentials of this run, inherited by every child (spawnBenchChild passes process.env).
installBenchCredentials();

const log = (message: string) => process.stderr.write(`${message}\n`);
const children: BenchChild[] = [];
const databases: BenchDatabase[] = [];
let stopping = false;
async function cleanUp() {
  for (const child of children.splice(0)) await child.stop().catch(() => {});
  for (const db of databases.splice(0)) await db.drop().catch(() => {});
}
process.once('SIGINT', () => {
  stopping = true;
  void cleanUp().finally(() => process.exit(130));
});

interface Round {
  mode: Mode;
  operations: number;
  errors: number;
  seconds: number;
  latenciesMs: number[];
  gatewayCpuUs: number;
  servicesCpuUs: number;
}

try {
  const modes: Mode[] = opts.observability ? ['off', 'metrics', 'traced'] : ['on', 'anonymous'];
  let sink: BenchChild | undefined;
  let sinkUrl = '';
  if (opts.observability) {
    sink = spawnBenchChild('otlp-sink', 'otlpSink.ts');
    children.push(sink);
    sinkUrl = (await sink.call<{ url: string }>('start')).url;
  }
  /** The environment of a mode's children: its observability setting (the rest inherited). */
  const envOf = (mode: Mode): Record<string, string> =>
    mode === 'off' ? { FLOWGRAPH_METRICS: 'off' } : mode === 'traced' ? { FLOWGRAPH_METRICS: 'on', OTEL_EXPORTER_OTLP_ENDPOINT: sinkUrl } : { FLOWGRAPH_METRICS: 'on' };
  // The authentication comparison shares one services child (same observability); the observability one needs one per mode.
  const servicesKey = (mode: Mode) => (opts.observability ? mode : 'default');
  const servicesOf = new Map<string, { child: BenchChild; workflows: string; monitoring: string; runIds: string[] }>();
  for (const mode of modes) {
    const key = servicesKey(mode);
    if (servicesOf.has(key)) continue;
    log(`preparing databases and starting services (${key})...`);
    const urls: Record<string, string> = {};
    for (const service of ['workflows', 'monitoring'] as const) {
      const db = await createMigratedBenchDatabase(adminUrl, `gw_${key}_${service}`, service);
      databases.push(db);
      urls[service] = db.url;
    }
    const child = spawnBenchChild(`services (${key})`, 'subscriptionServices.ts', { env: opts.observability ? envOf(mode) : {} });
    children.push(child);
    const result = await child.call<{ workflows: string; monitoring: string; runIds: string[] }>(
      'start',
      { workflowsUrl: urls.workflows, monitoringUrl: urls.monitoring, runs: opts.runs },
      120_000,
    );
    servicesOf.set(key, { child, ...result });
  }
  const supergraphSdl = readFileSync(new URL('../supergraph.graphql', import.meta.url), 'utf8');
  const gateways = {} as Record<Mode, { child: BenchChild; url: string; services: BenchChild; runIds: string[] }>;
  for (const mode of modes) {
    log(`starting the gateway (${mode})...`);
    const child = spawnBenchChild(`gateway (${mode})`, 'httpGateway.ts', { env: opts.observability ? envOf(mode) : {} });
    children.push(child);
    const services = servicesOf.get(servicesKey(mode))!;
    const { url } = await child.call<{ url: string }>('start', { auth: mode === 'anonymous' ? 'anonymous' : 'on', supergraphSdl, urls: { workflows: services.workflows, monitoring: services.monitoring } });
    gateways[mode] = { child, url, services: services.child, runIds: services.runIds };
  }
  const token = await benchClientToken('bench', 'operator');
  const headersOf = (mode: Mode): Record<string, string> => ({
    'content-type': 'application/json',
    ...(mode !== 'anonymous' ? { authorization: `Bearer ${token}` } : {}),
  });

  // Every mode answers the workload (and auth is really on: no token, no answer).
  for (const mode of modes) {
    const id = gateways[mode].runIds[0];
    const body = await (await fetch(gateways[mode].url, { method: 'POST', headers: headersOf(mode), body: JSON.stringify({ query: QUERY, variables: { id } }) })).json() as { data?: any; errors?: unknown };
    if (body.errors || body.data?.run?.id !== id || !Array.isArray(body.data.run.timeline)) throw new Error(`gateway (${mode}) answered ${JSON.stringify(body)}`);
  }
  const authOn = opts.observability ? 'metrics' : 'on';
  const refused = await fetch(gateways[authOn].url, { method: 'POST', headers: headersOf('anonymous'), body: JSON.stringify({ query: QUERY, variables: { id: gateways[authOn].runIds[0] } }) });
  if (refused.status !== 401) throw new Error(`the gateway with authentication on answered HTTP ${refused.status} to a request without a token`);
  // Observability really on and off where it should be: /metrics 404 with FLOWGRAPH_METRICS=off, 200 otherwise.
  if (opts.observability) {
    for (const mode of modes) {
      const status = (await fetch(new URL('/metrics', gateways[mode].url))).status;
      if (status !== (mode === 'off' ? 404 : 200)) throw new Error(`gateway (${mode}) answered /metrics with HTTP ${status}`);
    }
  }

  let next = 0;
  async function load(mode: Mode, seconds: number, record: boolean): Promise<Round> {
    const { url, child, services, runIds } = gateways[mode];
    const headers = headersOf(mode);
    const latenciesMs: number[] = [];
    let operations = 0;
    let errors = 0;
    const gw0 = await processCpuMicros(child.pid);
    const svc0 = await processCpuMicros(services.pid);
    const t0 = performance.now();
    const deadline = t0 + seconds * 1000;
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (!stopping && performance.now() < deadline) {
          const id = runIds[next++ % runIds.length];
          const start = performance.now();
          const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query: QUERY, variables: { id } }) });
          const body = (await response.json()) as { errors?: unknown };
          const ms = performance.now() - start;
          if (response.status !== 200 || body.errors) errors++;
          else operations++;
          if (record) latenciesMs.push(ms);
        }
      }),
    );
    const elapsed = (performance.now() - t0) / 1000;
    return {
      mode,
      operations,
      errors,
      seconds: elapsed,
      latenciesMs,
      gatewayCpuUs: (await processCpuMicros(child.pid)) - gw0,
      servicesCpuUs: (await processCpuMicros(services.pid)) - svc0,
    };
  }

  log('warming up...');
  for (const mode of modes) await load(mode, 3, false);
  const rounds: Round[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    // Rotating order, so that drift falls on every mode alike.
    const order = modes.map((_, i) => modes[(i + r) % modes.length]!);
    for (const mode of order) {
      log(`round ${r + 1}/${opts.rounds}: ${mode}, ${opts.duration} s...`);
      rounds.push(await load(mode, opts.duration, true));
    }
  }

  const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const median = (values: number[]) => quantile([...values].sort((a, b) => a - b), 0.5);
  const summary = (mode: Mode) => {
    const mine = rounds.filter((round) => round.mode === mode);
    const latencies = mine.flatMap((round) => round.latenciesMs).sort((a, b) => a - b);
    const operations = mine.reduce((sum, round) => sum + round.operations, 0);
    return {
      opsPerSecond: median(mine.map((round) => round.operations / round.seconds)),
      p50: quantile(latencies, 0.5),
      p99: quantile(latencies, 0.99),
      gatewayUsPerOp: mine.reduce((sum, round) => sum + round.gatewayCpuUs, 0) / Math.max(1, operations),
      servicesUsPerOp: mine.reduce((sum, round) => sum + round.servicesCpuUs, 0) / Math.max(1, operations),
      errors: mine.reduce((sum, round) => sum + round.errors, 0),
      operations,
    };
  };
  const fmt = (n: number, digits = 1) => n.toFixed(digits).padStart(9);
  if (opts.observability) {
    const summaries = Object.fromEntries(modes.map((mode) => [mode, summary(mode)])) as Record<Mode, ReturnType<typeof summary>>;
    console.log(`\nbench:gateway --observability — ${opts.concurrency} clients, ${opts.rounds} round(s) × ${opts.duration} s per mode, ${opts.runs} runs, authentication on; query: ${QUERY}`);
    console.log(`node ${(process.version)}, ${(await import('node:os')).cpus().length} cores; clients, gateways, services and the OTLP sink share them\n`);
    console.log('mode           ops/s   p50 ms   p99 ms   gateway µs/op  services µs/op  errors  operations');
    for (const mode of modes) {
      const m = summaries[mode];
      console.log(`${mode.padEnd(10)}${fmt(m.opsPerSecond)}${fmt(m.p50, 2)}${fmt(m.p99, 2)}${fmt(m.gatewayUsPerOp, 0).padStart(16)}${fmt(m.servicesUsPerOp, 0).padStart(16)}${String(m.errors).padStart(8)}${String(m.operations).padStart(12)}`);
    }
    const off = summaries.off;
    for (const mode of ['metrics', 'traced'] as const) {
      const m = summaries[mode];
      const goal = OBSERVABILITY_GOALS[mode];
      const v = (ratio: number) => `${ratio.toFixed(3)} ${ratio <= goal ? 'PASS' : 'MISS'} (goal ≤ ${goal})`;
      console.log(`\n${mode} / off:`);
      console.log(`  throughput   off/${mode} ${v(off.opsPerSecond / m.opsPerSecond)}`);
      console.log(`  p50 latency  ${mode}/off ${v(m.p50 / off.p50)}`);
      console.log(`  p99 latency  ${mode}/off ${v(m.p99 / off.p99)}`);
      console.log(`  CPU per op   ${mode}/off gateway ${v(m.gatewayUsPerOp / off.gatewayUsPerOp)}, services ${v(m.servicesUsPerOp / off.servicesUsPerOp)}`);
    }
    console.log(`  (ops/s per round: ${modes.map((mode) => `${mode} ${rounds.filter((r) => r.mode === mode).map((r) => (r.operations / r.seconds).toFixed(0)).join(', ')}`).join('; ')})`);
    const exported = await sink!.call<{ requests: number; bytes: number; spans: number }>('stats');
    console.log(`  spans received by the OTLP sink: ${exported.spans} in ${exported.requests} requests (${exported.bytes} bytes)`);
    if (exported.spans === 0) throw new Error('the traced mode exported no span');
    if (modes.some((mode) => summaries[mode].errors > 0)) process.exitCode = 1;
  } else {
    const on = summary('on');
    const anonymous = summary('anonymous');
    console.log(`\nbench:gateway — ${opts.concurrency} clients, ${opts.rounds} round(s) × ${opts.duration} s per mode, ${opts.runs} runs; query: ${QUERY}`);
    console.log(`node ${process.version}, ${(await import('node:os')).cpus().length} cores; clients, gateways and services share them\n`);
    console.log('mode           ops/s   p50 ms   p99 ms   gateway µs/op  services µs/op  errors  operations');
    for (const [name, s] of [['auth on', on], ['anonymous', anonymous]] as const) {
      console.log(`${name.padEnd(10)}${fmt(s.opsPerSecond)}${fmt(s.p50, 2)}${fmt(s.p99, 2)}${fmt(s.gatewayUsPerOp, 0).padStart(16)}${fmt(s.servicesUsPerOp, 0).padStart(16)}${String(s.errors).padStart(8)}${String(s.operations).padStart(12)}`);
    }
    const verdict = (ratio: number) => `${ratio.toFixed(3)} ${ratio <= GOAL_RATIO ? 'PASS' : 'MISS'} (goal ≤ ${GOAL_RATIO})`;
    console.log(`\nauth on / anonymous (goal: within 10 %):`);
    console.log(`  throughput   anonymous/on ${verdict(anonymous.opsPerSecond / on.opsPerSecond)}`);
    console.log(`  p50 latency  on/anonymous ${verdict(on.p50 / anonymous.p50)}`);
    console.log(`  p99 latency  on/anonymous ${verdict(on.p99 / anonymous.p99)}`);
    console.log(`  gateway CPU  on/anonymous ${verdict(on.gatewayUsPerOp / anonymous.gatewayUsPerOp)}`);
    // The subgraphs do the same work in both modes: how far their CPU per operation differs shows the run's noise.
    console.log(`  (noise: services CPU on/anonymous ${(on.servicesUsPerOp / anonymous.servicesUsPerOp).toFixed(3)}; ops/s per round, on: ${rounds.filter((r) => r.mode === 'on').map((r) => (r.operations / r.seconds).toFixed(0)).join(', ')}; anonymous: ${rounds.filter((r) => r.mode === 'anonymous').map((r) => (r.operations / r.seconds).toFixed(0)).join(', ')})`);

    // What the authentication hook itself costs per request, in this process (same token each time, as the load sends).
    const hookCost = async (cacheEntries: number) => {
      const authenticate = createAuthenticator(parseAuthConfig(process.env), { cacheEntries });
      const request = { headers: headersOf('on') };
      for (let i = 0; i < 200; i++) await authenticate(request);
      const calls = 5_000;
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < calls; i++) await authenticate(request);
      return Number(process.hrtime.bigint() - t0) / 1000 / calls;
    };
    const cached = await hookCost(10_000);
    const uncached = await hookCost(0);
    console.log(
      `  authentication hook (gateway/auth.ts, measured here): ${cached.toFixed(1)} µs per request with the verified-token cache, ${uncached.toFixed(1)} µs verifying every token` +
        ` (${((cached / on.gatewayUsPerOp) * 100).toFixed(2)} % / ${((uncached / on.gatewayUsPerOp) * 100).toFixed(1)} % of the gateway's CPU per operation)`,
    );
    if (on.errors + anonymous.errors > 0) process.exitCode = 1;
  }
} finally {
  await cleanUp();
}
