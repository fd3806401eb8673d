/**
 * `npm run bench:append`: append throughput of flowgraph's event store against Emmett's
 * PostgreSQL event store (the peer) and plain `INSERT`s (the physical reference), in one run
 * on one PostgreSQL. Each cell (workload × writers × implementation) runs in a fresh database
 * created and dropped here. Prints a header, a results table, a ratios table, and, as the
 * last line of stdout, one JSON object with everything. Progress goes to stderr.
 *
 * Flags and environment: see `parseBenchConfig` and bench/README.md.
 */
import os from 'node:os';
import { createBenchDatabase, withAdmin, type BenchDatabase } from './benchDatabase.ts';
import { parseBenchConfig, type BenchConfig, type TargetName } from './config.ts';
import pg from 'pg';
import { cellRunner, type CellMeasurement, type CellRunner } from './measureCell.ts';
import { openTarget, BENCH_EVENT, tracingProviderRegistered, type TargetSession } from './targets.ts';
import { spawnBenchChild } from './childProcess.ts';
import { registerProvider } from '../observability/tracing.ts';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { redactUrl } from '../db/url.ts';

/** One workload: `writers` concurrent writers, each appending `batchSize` events per call. */
interface Workload {
  kind: 'single' | 'batch';
  writers: number;
  batchSize: number;
}

/** One measured cell. */
interface CellResult extends Omit<CellMeasurement, 'totalAppendsPerWriter'> {
  workload: string;
  kind: Workload['kind'];
  writers: number;
  batchSize: number;
  target: TargetName;
  eventsPerSecond: number;
  /** Approximate WAL bytes per event stored in measured slices (cluster-wide WAL position delta). */
  walBytesPerEvent: number | null;
  verified: boolean;
}

interface ServerInfo {
  version: string;
  fsync: string;
  synchronousCommit: string;
  walSyncMethod: string;
  fullPageWrites: string;
  commitDelay: string;
  sharedBuffers: string;
}

const SETTINGS = ['server_version', 'fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'commit_delay', 'shared_buffers'];

async function serverInfo(adminUrl: string): Promise<ServerInfo> {
  return withAdmin(adminUrl, async (c) => {
    const { rows } = await c.query<{ name: string; setting: string }>(
      `SELECT name, current_setting(name) AS setting FROM unnest($1::text[]) AS name`,
      [SETTINGS],
    );
    const get = (n: string) => rows.find((r) => r.name === n)?.setting ?? '?';
    return {
      version: get('server_version'),
      fsync: get('fsync'),
      synchronousCommit: get('synchronous_commit'),
      walSyncMethod: get('wal_sync_method'),
      fullPageWrites: get('full_page_writes'),
      commitDelay: get('commit_delay'),
      sharedBuffers: get('shared_buffers'),
    };
  });
}

/** Current WAL insert position in bytes (cluster-wide: other databases' writes count too). */
async function walPosition(admin: pg.Client): Promise<bigint> {
  const { rows } = await admin.query<{ b: string }>(`SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint::text AS b`);
  return BigInt(rows[0]!.b);
}

const workloadLabel = (w: Workload) => (w.kind === 'single' ? `single x${w.writers}` : `batch${w.batchSize} x${w.writers}`);

/** What is open right now, for cleanup on a signal. */
const open = new Set<{ db: BenchDatabase; session?: TargetSession }>();

/**
 * Runs one workload for every target: a fresh database each, warm-up each, then `rounds`
 * measured slices per target, interleaved and in a rotating order so that background load
 * falls on every target alike; then verification, close and drop.
 */
async function runWorkload(config: BenchConfig, admin: pg.Client, workload: Workload): Promise<CellResult[]> {
  if (config.checkpoint) await admin.query('CHECKPOINT');
  interface Cell {
    target: TargetName;
    slot: { db: BenchDatabase; session?: TargetSession };
    runner?: CellRunner;
    wal: bigint;
  }
  const cells: Cell[] = [];
  try {
    for (const target of config.targets) {
      const db = await createBenchDatabase(config.adminUrl, `${target}_${workload.kind}_${workload.writers}`);
      const cell: Cell = { target, slot: { db }, wal: 0n };
      cells.push(cell);
      open.add(cell.slot);
      cell.slot.session = await openTarget(target, {
        url: db.url,
        writers: workload.writers,
        batchSize: workload.batchSize,
        poolMax: workload.writers + 2,
      });
      cell.runner = cellRunner(cell.slot.session, workload.writers);
    }
    for (const cell of cells) await cell.runner!.run(config.warmupMs, false);
    const sliceMs = config.durationMs / config.rounds;
    for (let round = 0; round < config.rounds; round++) {
      for (let i = 0; i < cells.length; i++) {
        const cell = cells[(i + round) % cells.length]!;
        const before = await walPosition(admin);
        await cell.runner!.run(sliceMs, true);
        cell.wal += (await walPosition(admin)) - before;
      }
    }
    const results: CellResult[] = [];
    for (const cell of cells) {
      const m = cell.runner!.result();
      const problem = await cell.slot.session!.verify(m.totalAppendsPerWriter);
      if (problem) throw new Error(`verification failed for ${cell.target} ${workloadLabel(workload)}: ${problem}`);
      const { totalAppendsPerWriter: _, ...rest } = m;
      results.push({
        workload: workloadLabel(workload),
        kind: workload.kind,
        writers: workload.writers,
        batchSize: workload.batchSize,
        target: cell.target,
        ...rest,
        eventsPerSecond: m.appendsPerSecond * workload.batchSize,
        walBytesPerEvent: m.appends > 0 ? Number(cell.wal) / (m.appends * workload.batchSize) : null,
        verified: true,
      });
    }
    return results;
  } finally {
    for (const cell of cells) {
      await cell.slot.session?.close().catch(() => {});
      await cell.slot.db.drop();
      open.delete(cell.slot);
    }
  }
}

const fmt = (n: number | null, digits = 0) =>
  n === null || !Number.isFinite(n) ? '-' : n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

function table(headers: string[], rows: string[][], rightAlign: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (rightAlign[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

interface Ratio {
  workload: string;
  flowgraphPerEmmett: number | null;
  flowgraphPerPlain: number | null;
  p50FlowgraphPerEmmett: number | null;
  p50FlowgraphPerPlain: number | null;
}

function ratios(cells: CellResult[]): Ratio[] {
  const workloads = [...new Set(cells.map((c) => c.workload))];
  return workloads.map((workload) => {
    const of = (t: TargetName) => cells.find((c) => c.workload === workload && c.target === t);
    const fg = of('flowgraph');
    const em = of('emmett');
    const pl = of('plain');
    const r = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : null);
    return {
      workload,
      flowgraphPerEmmett: r(fg?.appendsPerSecond, em?.appendsPerSecond),
      flowgraphPerPlain: r(fg?.appendsPerSecond, pl?.appendsPerSecond),
      p50FlowgraphPerEmmett: r(fg?.p50Ms, em?.p50Ms),
      p50FlowgraphPerPlain: r(fg?.p50Ms, pl?.p50Ms),
    };
  });
}

/** flowgraph-metrics and flowgraph-traced against flowgraph, per workload (null where a target did not run). */
interface Overhead {
  workload: string;
  metricsPerOff: number | null;
  tracedPerOff: number | null;
  p50MetricsPerOff: number | null;
  p50TracedPerOff: number | null;
  /** Node CPU per append, instrumented / off (> 1: the instrumentation's client-side cost). */
  cpuMetricsPerOff: number | null;
  cpuTracedPerOff: number | null;
}

function observabilityOverhead(cells: CellResult[]): Overhead[] {
  if (!cells.some((c) => c.target === 'flowgraph-metrics' || c.target === 'flowgraph-traced')) return [];
  return [...new Set(cells.map((c) => c.workload))].map((workload) => {
    const of = (t: TargetName) => cells.find((c) => c.workload === workload && c.target === t);
    const off = of('flowgraph');
    const r = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? a / b : null);
    return {
      workload,
      metricsPerOff: r(of('flowgraph-metrics')?.appendsPerSecond, off?.appendsPerSecond),
      tracedPerOff: r(of('flowgraph-traced')?.appendsPerSecond, off?.appendsPerSecond),
      p50MetricsPerOff: r(of('flowgraph-metrics')?.p50Ms, off?.p50Ms),
      p50TracedPerOff: r(of('flowgraph-traced')?.p50Ms, off?.p50Ms),
      cpuMetricsPerOff: r(of('flowgraph-metrics')?.cpuMicrosPerAppend, off?.cpuMicrosPerAppend),
      cpuTracedPerOff: r(of('flowgraph-traced')?.cpuMicrosPerAppend, off?.cpuMicrosPerAppend),
    };
  });
}

/** Registers a tracer provider exporting to an OTLP sink child process (bench/otlpSink.ts), off until a flowgraph-traced run. */
async function startBenchTracing(): Promise<{ url: string; stop(): Promise<{ requests: number; bytes: number; spans: number }> }> {
  const sink = spawnBenchChild('otlp-sink', 'otlpSink.ts');
  const { url } = await sink.call<{ url: string }>('start');
  const { provider, shutdown } = registerProvider('flowgraph-bench', {}, [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${url}/v1/traces` }))]);
  tracingProviderRegistered(() => provider.forceFlush());
  return {
    url,
    async stop() {
      await shutdown();
      const stats = await sink.call<{ requests: number; bytes: number; spans: number }>('stats');
      await sink.stop();
      return stats;
    },
  };
}

async function main(): Promise<void> {
  const config = parseBenchConfig(process.argv, process.env);
  const server = await serverInfo(config.adminUrl);
  const workloads: Workload[] = [
    ...config.singleWriters.map((writers) => ({ kind: 'single' as const, writers, batchSize: 1 })),
    ...config.batchWriters.map((writers) => ({ kind: 'batch' as const, writers, batchSize: config.batchSize })),
  ];
  const started = new Date();
  const eventBytes = Buffer.byteLength(JSON.stringify(BENCH_EVENT.data));
  console.log('flowgraph bench:append');
  console.log(`  server      PostgreSQL ${server.version} at ${redactUrl(config.adminUrl)}`);
  console.log(`  durability  fsync=${server.fsync} synchronous_commit=${server.synchronousCommit} wal_sync_method=${server.walSyncMethod} full_page_writes=${server.fullPageWrites} commit_delay=${server.commitDelay} shared_buffers=${server.sharedBuffers}`);
  console.log(`  client      Node ${process.version}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), PostgreSQL on the same machine: ${/127\.0\.0\.1|localhost/.test(config.adminUrl)}`);
  const load = () => os.loadavg().map((l) => l.toFixed(2)).join(' / ');
  const loadAtStart = os.loadavg();
  console.log(`  load        ${load()} (1/5/15 min averages at start; other work on this machine skews every figure)`);
  console.log(`  cells       warm-up ${config.warmupMs} ms + measured ${config.durationMs} ms in ${config.rounds} slices interleaved across targets, fresh database each, pool size = writers + 2, CHECKPOINT before each workload: ${config.checkpoint}`);
  console.log(`  event       ${BENCH_EVENT.type}, data ${eventBytes} bytes of JSON, exact expected version, one stream per writer`);
  if (server.fsync !== 'on' || server.synchronousCommit !== 'on') {
    console.log('  WARNING     durability is not as in production (fsync and synchronous_commit should be on): figures are not comparable');
  }
  console.log('');

  // flowgraph-traced: a tracer provider exporting OTLP/HTTP to a sink process, switched on only in that target's runs.
  const tracing = config.targets.includes('flowgraph-traced') ? await startBenchTracing() : undefined;
  if (tracing) console.log(`  tracing     flowgraph-traced: BatchSpanProcessor + OTLP/HTTP exporter to a sink process at ${tracing.url} (flushed at the end of each of its runs, inside the run's time)`);

  const cells: CellResult[] = [];
  const admin = new pg.Client({ connectionString: config.adminUrl });
  admin.on('error', () => {});
  await admin.connect();
  try {
    for (const workload of workloads) {
      process.stderr.write(`  ${workloadLabel(workload).padEnd(14)} ... `);
      const results = await runWorkload(config, admin, workload);
      cells.push(...results);
      process.stderr.write(results.map((c) => `${c.target} ${fmt(c.appendsPerSecond)}/s`).join(', ') + ' (verified)\n');
    }
  } finally {
    await admin.end().catch(() => {});
  }
  const exported = await tracing?.stop();

  console.log('Results (appends/s = calls of appendToStream or INSERT statements per second; latency of one call, client side)');
  console.log(
    table(
      ['workload', 'writers', 'target', 'appends/s', 'events/s', 'p50 ms', 'p99 ms', 'max ms', 'CPU µs/append', 'appends', 'WAL B/event', 'verified'],
      cells.map((c) => [
        c.kind === 'single' ? 'single' : `batch ${c.batchSize}`,
        String(c.writers),
        c.target,
        fmt(c.appendsPerSecond),
        fmt(c.eventsPerSecond),
        fmt(c.p50Ms, 2),
        fmt(c.p99Ms, 2),
        fmt(c.maxMs, 1),
        fmt(c.cpuMicrosPerAppend),
        String(c.appends),
        fmt(c.walBytesPerEvent),
        c.verified ? 'yes' : 'NO',
      ]),
      [false, true, false, true, true, true, true, true, true, true, true, false],
    ),
  );
  console.log('');
  const rs = ratios(cells);
  if (rs.some((r) => r.flowgraphPerEmmett !== null || r.flowgraphPerPlain !== null)) console.log('Ratios (throughput: > 1 means flowgraph is faster; p50 latency: < 1 means flowgraph is faster)');
  console.log(
    table(
      ['workload', 'flowgraph/emmett', 'flowgraph/plain', 'p50 flowgraph/emmett', 'p50 flowgraph/plain'],
      rs.map((r) => [r.workload, fmt(r.flowgraphPerEmmett, 2), fmt(r.flowgraphPerPlain, 2), fmt(r.p50FlowgraphPerEmmett, 2), fmt(r.p50FlowgraphPerPlain, 2)]),
      [false, true, true, true, true],
    ),
  );
  const overhead = observabilityOverhead(cells);
  if (overhead.length > 0) {
    console.log('');
    console.log('Observability overhead (same run, interleaved slices): throughput and p50 latency relative to flowgraph without metrics or tracing; goals: metrics alone (tracing off) costs at most 5 %, metrics + tracing at most 15 %');
    console.log(
      table(
        ['workload', 'metrics/off', 'traced/off', 'p50 metrics/off', 'p50 traced/off', 'CPU metrics/off', 'CPU traced/off', 'metrics ≤ 5 %', 'traced ≤ 15 %'],
        overhead.map((o) => [
          o.workload,
          fmt(o.metricsPerOff, 3),
          fmt(o.tracedPerOff, 3),
          fmt(o.p50MetricsPerOff, 3),
          fmt(o.p50TracedPerOff, 3),
          fmt(o.cpuMetricsPerOff, 3),
          fmt(o.cpuTracedPerOff, 3),
          o.metricsPerOff === null ? '-' : o.metricsPerOff >= 0.95 ? 'met' : 'MISSED',
          o.tracedPerOff === null ? '-' : o.tracedPerOff >= 0.85 ? 'met' : 'MISSED',
        ]),
        [false, true, true, true, true, true, true, false, false],
      ),
    );
    if (exported) console.log(`Spans exported by flowgraph-traced: ${exported.spans} in ${exported.requests} OTLP requests (${fmt(exported.bytes)} bytes)`);
  }
  console.log('');
  console.log(`Total ${((Date.now() - started.getTime()) / 1000).toFixed(1)} s; load average at end ${load()}. WAL B/event is approximate (cluster-wide WAL position delta over the measured slices).`);
  if (Math.max(loadAtStart[0]!, os.loadavg()[0]!) > os.cpus().length) {
    console.log(`WARNING: the 1-minute load average exceeded the ${os.cpus().length} CPUs during the run: other processes competed with the benchmark; rerun on a quiet machine before trusting these figures.`);
  }
  console.log(JSON.stringify({ bench: 'append', startedAt: started.toISOString(), server, node: process.version, cpus: os.cpus().length, loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg(), config: { ...config, adminUrl: redactUrl(config.adminUrl) }, cells, ratios: rs, observabilityOverhead: overhead, exportedSpans: exported ?? null }));
}

async function cleanupAndExit(code: number): Promise<never> {
  for (const { db, session } of open) {
    await session?.close().catch(() => {});
    await db.drop().catch(() => {});
  }
  process.exit(code);
}

process.once('SIGINT', () => void cleanupAndExit(130));
process.once('SIGTERM', () => void cleanupAndExit(143));

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    void cleanupAndExit(1);
  },
);
