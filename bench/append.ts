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
import { openTarget, BENCH_EVENT, type TargetSession } from './targets.ts';
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

  console.log('Results (appends/s = calls of appendToStream or INSERT statements per second; latency of one call, client side)');
  console.log(
    table(
      ['workload', 'writers', 'target', 'appends/s', 'events/s', 'p50 ms', 'p99 ms', 'max ms', 'appends', 'WAL B/event', 'verified'],
      cells.map((c) => [
        c.kind === 'single' ? 'single' : `batch ${c.batchSize}`,
        String(c.writers),
        c.target,
        fmt(c.appendsPerSecond),
        fmt(c.eventsPerSecond),
        fmt(c.p50Ms, 2),
        fmt(c.p99Ms, 2),
        fmt(c.maxMs, 1),
        String(c.appends),
        fmt(c.walBytesPerEvent),
        c.verified ? 'yes' : 'NO',
      ]),
      [false, true, false, true, true, true, true, true, true, true, false],
    ),
  );
  console.log('');
  const rs = ratios(cells);
  console.log('Ratios (throughput: > 1 means flowgraph is faster; p50 latency: < 1 means flowgraph is faster)');
  console.log(
    table(
      ['workload', 'flowgraph/emmett', 'flowgraph/plain', 'p50 flowgraph/emmett', 'p50 flowgraph/plain'],
      rs.map((r) => [r.workload, fmt(r.flowgraphPerEmmett, 2), fmt(r.flowgraphPerPlain, 2), fmt(r.p50FlowgraphPerEmmett, 2), fmt(r.p50FlowgraphPerPlain, 2)]),
      [false, true, true, true, true],
    ),
  );
  console.log('');
  console.log(`Total ${((Date.now() - started.getTime()) / 1000).toFixed(1)} s; load average at end ${load()}. WAL B/event is approximate (cluster-wide WAL position delta over the measured slices).`);
  if (Math.max(loadAtStart[0]!, os.loadavg()[0]!) > os.cpus().length) {
    console.log(`WARNING: the 1-minute load average exceeded the ${os.cpus().length} CPUs during the run: other processes competed with the benchmark; rerun on a quiet machine before trusting these figures.`);
  }
  console.log(JSON.stringify({ bench: 'append', startedAt: started.toISOString(), server, node: process.version, cpus: os.cpus().length, loadAverageAtStart: loadAtStart, loadAverageAtEnd: os.loadavg(), config: { ...config, adminUrl: redactUrl(config.adminUrl) }, cells, ratios: rs }));
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
