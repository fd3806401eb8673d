/**
 * `npx tsx bench/entities.ts`: the monitoring subgraph's `_entities` directly, as the gateway
 * calls it for Q2 (`runs(first: 20) { id status steps {…} timeline(first: 5) {…} }`: one
 * `_entities` request with the page's 20 WorkflowRun representations and `timeline(first: 5)`).
 *
 * One process: a fresh migrated monitoring database (`--runs` saga runs of 13 observed events
 * each, published through the in-process transport), the monitoring service on it, and
 * `--concurrency` closed-loop clients, each request checked (20 entities, 5 entries each, the
 * asked ids in order). Printed per round and as the median: requests/s, p50/p99 latency, SQL
 * statements per request (every client's `query` counted, BEGIN/COMMIT aside), PostgreSQL CPU ms per request (utime +
 * stime of the database's backends, /proc/<pid>/stat) and this process's CPU ms per request.
 *
 * Flags: --duration <s> (5), --rounds <n> (3), --concurrency <n> (8), --runs <n> (1000).
 * Env: FLOWGRAPH_ADMIN_DATABASE_URL (default the machine's PostgreSQL).
 */
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import pg from 'pg';
import { createInProcessTransport } from '../broker/in-process.ts';
import { silentLogger } from '../eventstore/index.ts';
import { IDENTITY_HEADER } from '../federation/gatewayIdentity.ts';
import { startMonitoringService } from '../subgraphs/monitoring/service.ts';
import { sagaRun } from '../subgraphs/monitoring/testing/sagaEvents.ts';
import { createMigratedBenchDatabase } from './benchDatabase.ts';
import { DEFAULT_ADMIN_URL } from './config.ts';
import { benchSubgraphIdentity, installBenchCredentials } from './credentials.ts';

const int = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
  return n;
};
const opts = new Command('bench:entities')
  .description("monitoring's _entities with 20 WorkflowRun representations and timeline(first: 5)")
  .option('--duration <s>', 'seconds per round', int(1, 600), 5)
  .option('--rounds <n>', 'rounds', int(1, 20), 3)
  .option('--concurrency <n>', 'closed-loop clients', int(1, 256), 8)
  .option('--runs <n>', 'seeded runs', int(20, 100_000), 1000)
  .parse()
  .opts<{ duration: number; rounds: number; concurrency: number; runs: number }>();

const PAGE = 20;
const FIRST = 5;
const QUERY = `query Q2($reps: [_Any!]!) { _entities(representations: $reps) { ... on WorkflowRun { id
  timeline(first: ${FIRST}) { sinceRunStartMs sincePreviousMs durationSinceCauseMs event { eventId source type runId occurredAt observedAt lagMs summary } } } } }`;

installBenchCredentials();
const adminUrl = process.env.FLOWGRAPH_ADMIN_DATABASE_URL || DEFAULT_ADMIN_URL;
const log = (message: string) => process.stderr.write(`${message}\n`);

const db = await createMigratedBenchDatabase(adminUrl, 'entities', 'monitoring');
const pool = new pg.Pool({ connectionString: db.url, max: 10, idleTimeoutMillis: 0 });
pool.on('error', () => {});
let statements = 0;
// Counted on every client (pool.query runs on one too), transaction control aside: the timelines
// run in a read-only transaction with jit off (subgraphs/monitoring/readModel.ts withoutJit).
const TRANSACTION_CONTROL = /^\s*(BEGIN|COMMIT|ROLLBACK)\b/i;
pool.on('connect', (client) => {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const first = args[0];
    const text = typeof first === 'string' ? first : (first as { text?: string } | undefined)?.text ?? '';
    if (!TRANSACTION_CONTROL.test(text)) statements++;
    return query(...args);
  };
});
const transport = createInProcessTransport();
const service = await startMonitoringService({ pool, port: 0, logger: silentLogger, transport });
try {
  log(`seeding ${opts.runs} runs (${opts.runs * 13} observed events)…`);
  const base = new Date('2025-03-01T10:00:00.000Z');
  const runIds: string[] = [];
  for (let i = 0; i < opts.runs; i += 50) {
    const runs = Array.from({ length: Math.min(50, opts.runs - i) }, (_, j) => sagaRun(new Date(base.getTime() + (i + j) * 1000)));
    runIds.push(...runs.map((r) => r.runId));
    for (const source of ['content', 'knowledge', 'workflows']) await transport.publish(runs.flatMap((r) => r.inCausalOrder.filter((e) => e.source === source)));
  }
  for (;;) {
    const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM observed_events');
    if (rows[0]!.n >= opts.runs * 13) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  await pool.query('VACUUM ANALYZE observed_events');

  const identity = await benchSubgraphIdentity();
  const headers = { 'content-type': 'application/json', [IDENTITY_HEADER]: identity };
  let page = 0;
  async function request(): Promise<void> {
    const start = (page++ * PAGE) % (runIds.length - PAGE + 1);
    const ids = runIds.slice(start, start + PAGE);
    const response = await fetch(service.url, {
      method: 'POST',
      headers,
      body: JSON.stringify({ query: QUERY, variables: { reps: ids.map((id) => ({ __typename: 'WorkflowRun', id })) } }),
    });
    const body = (await response.json()) as { data?: { _entities: { id: string; timeline: { event: { type: string } }[] }[] }; errors?: unknown };
    const entities = body.data?._entities;
    if (body.errors || !entities || entities.length !== PAGE || entities.some((e, i) => e.id !== ids[i] || e.timeline.length !== FIRST || e.timeline[0]!.event.type !== 'RunStarted')) {
      throw new Error(`unexpected answer: ${JSON.stringify(body).slice(0, 500)}`);
    }
  }

  async function backendCpuMs(): Promise<number> {
    const { rows } = await pool.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = current_database()');
    let ticks = 0;
    for (const { pid } of rows) {
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        ticks += Number(fields[11]) + Number(fields[12]);
      } catch {
        // a backend that just ended
      }
    }
    return ticks * 10; // USER_HZ = 100
  }

  async function round(seconds: number) {
    const latencies: number[] = [];
    const deadline = performance.now() + seconds * 1000;
    const pgBefore = await backendCpuMs();
    const cpuBefore = process.cpuUsage();
    const statementsBefore = statements;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: opts.concurrency }, async () => {
        while (performance.now() < deadline) {
          const t = performance.now();
          await request();
          latencies.push(performance.now() - t);
        }
      }),
    );
    const elapsed = (performance.now() - started) / 1000;
    const n = latencies.length;
    const cpu = process.cpuUsage(cpuBefore);
    const pgMs = (await backendCpuMs()) - pgBefore;
    latencies.sort((a, b) => a - b);
    return {
      rps: n / elapsed,
      p50: latencies[Math.floor(n * 0.5)]!,
      p99: latencies[Math.min(n - 1, Math.floor(n * 0.99))]!,
      // The two statements of backendCpuMs() are not the requests'.
      sqlPerRequest: (statements - statementsBefore - 1) / n,
      pgMsPerRequest: pgMs / n,
      nodeMsPerRequest: (cpu.user + cpu.system) / 1000 / n,
    };
  }

  await round(2); // warm-up
  const rounds = [];
  for (let r = 0; r < opts.rounds; r++) {
    const result = await round(opts.duration);
    rounds.push(result);
    log(`round ${r + 1}: ${result.rps.toFixed(1)} req/s`);
  }
  const median = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
  const fmt = (v: number, d = 1) => v.toFixed(d);
  console.log(`_entities × ${PAGE} WorkflowRun { timeline(first: ${FIRST}) }, ${opts.runs} runs seeded, concurrency ${opts.concurrency}, ${opts.rounds} × ${opts.duration} s`);
  console.log('| round | req/s | p50 ms | p99 ms | SQL statements/req | PostgreSQL CPU ms/req | node CPU ms/req |');
  console.log('|---|---|---|---|---|---|---|');
  rounds.forEach((r, i) =>
    console.log(`| ${i + 1} | ${fmt(r.rps)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.sqlPerRequest, 2)} | ${fmt(r.pgMsPerRequest, 2)} | ${fmt(r.nodeMsPerRequest, 2)} |`),
  );
  console.log(
    `| median | ${fmt(median(rounds.map((r) => r.rps)))} | ${fmt(median(rounds.map((r) => r.p50)))} | ${fmt(median(rounds.map((r) => r.p99)))} | ${fmt(median(rounds.map((r) => r.sqlPerRequest)), 2)} | ${fmt(median(rounds.map((r) => r.pgMsPerRequest)), 2)} | ${fmt(median(rounds.map((r) => r.nodeMsPerRequest)), 2)} |`,
  );
  console.log(`load average: ${readFileSync('/proc/loadavg', 'utf8').trim()}`);
} finally {
  await service.close();
  await transport.close();
  await pool.end();
  await db.drop();
}
