/**
 * `npm run bench:pipeline` (issue 13, "The document pipeline"): the corpus pipeline's wall time
 * beside the NLP alone over the same chunks on the same cores, in one run.
 *
 * 1. Pipeline: `bin/start.ts` (every service and the gateway in one process, in-process transport
 *    unless `--nats`) on fresh databases of the machine's PostgreSQL; the pipeline workflow
 *    (INGEST → EXTRACT → EXTERNAL approve, client/pipeline.ts as `npm run demo` drives it) started
 *    on every corpus file at once (`--concurrency`, default all); wall time from the first
 *    `startRun` to the last run's end, and each step's wall time per document (its StepStarted to
 *    its end, workflows' own timestamps).
 * 2. NLP alone: the chunks the pipeline stored (knowledge's `chunks` table, so exactly the same
 *    text) extracted again with `extractDocument` on a pool of as many workers as the knowledge
 *    service had (`--workers`, default the cores), every document queued at once, nothing else
 *    running; and, for the profile, on one thread one document after another.
 *
 * Target: pipeline wall time ≤ 1.25 × NLP alone on the same workers (PASS/MISS printed).
 * Output: tables on stdout, progress on stderr, the last stdout line one JSON object.
 * Flags: `--files a.txt,b.txt` (default every `.txt` of the corpus), `--concurrency N`,
 * `--workers N` (KNOWLEDGE_EXTRACTION_WORKERS of the run), `--nats` (NATS_URL or
 * nats://127.0.0.1:4222, a namespace of its own), `--no-single-thread` (skip the one-thread NLP).
 * Env: FLOWGRAPH_ADMIN_DATABASE_URL (default the machine's PostgreSQL), FLOWGRAPH_CORPUS_DIR.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import pg from 'pg';
import { createGatewayClient } from '../client/gatewayClient.ts';
import { definePipelineWorkflow, runPipeline, type PipelineResult } from '../client/pipeline.ts';
import { watchRuns } from '../client/runWakeups.ts';
import { requireCorpus } from '../config/corpus.ts';
import { SERVICES } from '../config/services.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { extractDocument } from '../subgraphs/knowledge/extraction/extractDocument.ts';
import { createExtractionPool, MAX_EXTRACTION_WORKERS } from '../subgraphs/knowledge/extraction/extractionPool.ts';
import { silentLogger } from '../eventstore/logger.ts';
import { DEFAULT_ADMIN_URL } from './config.ts';
import { cpuDelta, cpuTotal, postgresCpu, threadCpu, type CpuReading } from './cpuAccounting.ts';
import { benchClientToken, installBenchCredentials } from './credentials.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The issue's target: the whole pipeline within 1.25 × the NLP alone. */
const TARGET_RATIO = 1.25;

const int = (min: number, max: number) => (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
  return n;
};
const opts = new Command('bench:pipeline')
  .description('corpus pipeline wall time per step and in total, beside the NLP alone over the same chunks on the same cores')
  .option('--files <names>', 'comma-separated corpus files (default: every .txt file)')
  .option('--concurrency <n>', 'documents in flight at once (default: all)', int(1, 64))
  .option('--workers <n>', 'extraction workers (KNOWLEDGE_EXTRACTION_WORKERS) of the pipeline and of the NLP-alone pool', int(1, MAX_EXTRACTION_WORKERS), availableParallelism())
  .option('--nats', 'services joined by NATS JetStream (NATS_URL) instead of the in-process transport')
  .option('--no-single-thread', 'skip the one-thread NLP pass')
  .parse()
  .opts<{ files?: string; concurrency?: number; workers: number; nats?: boolean; singleThread: boolean }>();

process.env.FLOWGRAPH_ADMIN_DATABASE_URL ||= DEFAULT_ADMIN_URL;
installBenchCredentials();
const log = (message: string) => process.stderr.write(`${message}\n`);
const corpusDir = requireCorpus();
const files = opts.files
  ? opts.files.split(',').map((f) => f.trim()).filter(Boolean)
  : (await readdir(corpusDir)).filter((f) => f.endsWith('.txt')).sort();
if (files.length === 0) throw new Error(`no corpus files in ${corpusDir}`);
const concurrency = opts.concurrency ?? files.length;

const databases: TestDatabase[] = [];
let dataDir: string | undefined;
let stack: ReturnType<typeof spawn> | undefined;
async function cleanUp() {
  if (stack && stack.exitCode === null && stack.signalCode === null) {
    const exited = new Promise((resolve) => stack!.once('exit', resolve));
    stack.kill('SIGTERM');
    const timer = setTimeout(() => stack?.kill('SIGKILL'), 40_000);
    await exited;
    clearTimeout(timer);
  }
  await Promise.all(databases.splice(0).map((db) => db.drop().catch(() => {})));
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
}
process.once('SIGINT', () => void cleanUp().finally(() => process.exit(130)));

async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Mean of `values`, or null. */
const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);
const seconds = (ms: number | null | undefined) => (ms === null || ms === undefined ? '-' : (ms / 1000).toFixed(2));

function table(headers: string[], rows: (string | number)[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells: (string | number)[]) => cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]!) : String(c).padStart(widths[i]!))).join('  ');
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

try {
  // 1. The pipeline, through `npm start`'s process.
  const env: Record<string, string | undefined> = { ...process.env, NODE_ENV: 'development', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn', FLOWGRAPH_CORPUS_DIR: corpusDir, KNOWLEDGE_EXTRACTION_WORKERS: String(opts.workers) };
  if (opts.nats) {
    env.NATS_URL ||= 'nats://127.0.0.1:4222';
    env.NATS_NAMESPACE = `benchpipe${randomBytes(3).toString('hex')}`;
  } else delete env.NATS_URL;
  for (const service of SERVICES) {
    const db = await createTestDatabase(`benchpipe_${service.name}`);
    databases.push(db);
    env[`${service.envPrefix}_DATABASE_URL`] = db.url;
    env[`${service.envPrefix}_PORT`] = String(await freePort());
  }
  const gatewayPort = await freePort();
  env.GATEWAY_PORT = String(gatewayPort);
  dataDir = await mkdtemp(path.join(tmpdir(), 'flowgraph-bench-pipeline-'));
  env.FLOWGRAPH_DATA_DIR = dataDir;
  log(`bench:pipeline: starting bin/start.ts (${opts.nats ? 'NATS' : 'in-process transport'}, ${opts.workers} extraction workers)`);
  stack = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bin', 'start.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  stack.stdout?.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-20_000)));
  stack.stderr?.on('data', (b: Buffer) => (output = (output + b.toString()).slice(-20_000)));
  // BENCH_PIPELINE_LOG=<file>: the stack's whole output there (with LOG_LEVEL=info, its per-document extraction lines).
  if (process.env.BENCH_PIPELINE_LOG) {
    const { createWriteStream } = await import('node:fs');
    const file = createWriteStream(process.env.BENCH_PIPELINE_LOG);
    stack.stdout?.pipe(file);
    stack.stderr?.pipe(file);
  }
  const gateway = `http://127.0.0.1:${gatewayPort}`;
  for (let deadline = Date.now() + 120_000; ; ) {
    if (stack.exitCode !== null) throw new Error(`bin/start.ts exited (${stack.exitCode}):\n${output}`);
    if (await fetch(`${gateway}/health`).then((r) => r.ok, () => false)) break;
    if (Date.now() > deadline) throw new Error(`the gateway did not answer within 120 s:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const client = createGatewayClient(`${gateway}/graphql`, { token: await benchClientToken() });
  // The runs are read again when workflows' events of them are observed (the gateway's live feed),
  // every 2 s otherwise: a 100 ms poll of six runs cost the stack about 1.7 s of main-thread CPU
  // beside the pipeline, a 1 s poll delayed every approval by up to a second.
  const wakeups = watchRuns(`ws://127.0.0.1:${gatewayPort}/graphql`, () => benchClientToken());
  const workflowId = await definePipelineWorkflow(client, 'bench pipeline');
  log(`bench:pipeline: ${files.length} documents, ${concurrency} at once`);
  const results: PipelineResult[] = [];
  const cpuBefore = { stack: threadCpu(stack.pid!), postgres: postgresCpu() };
  // Cores busy per second of the pipeline (the stack's threads and PostgreSQL), to show idle stretches.
  const busyPerSecond: { stack: number; postgres: number }[] = [];
  let lastSample = { stack: cpuTotal(cpuBefore.stack), postgres: cpuTotal(cpuBefore.postgres) };
  const sampler = setInterval(() => {
    const now = { stack: cpuTotal(threadCpu(stack!.pid!)), postgres: cpuTotal(postgresCpu()) };
    busyPerSecond.push({ stack: now.stack - lastSample.stack, postgres: now.postgres - lastSample.postgres });
    lastSample = now;
  }, 1000);
  const started = Date.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, files.length) }, async () => {
      for (let file = files[next++]; file !== undefined; file = files[next++]) {
        const result = await runPipeline(client, workflowId, file, { pollMs: 2000, wakeups, timeoutMs: 900_000 });
        log(`  ${file}: ${result.status} in ${seconds(result.wallMs)} s`);
        results.push(result);
      }
    }),
  );
  const pipelineMs = Date.now() - started;
  clearInterval(sampler);
  await wakeups.close();
  const pipelineCpu = { stack: cpuDelta(cpuBefore.stack, threadCpu(stack.pid!)), postgres: cpuDelta(cpuBefore.postgres, postgresCpu()) };
  const failed = results.filter((r) => r.status !== 'COMPLETED');
  if (failed.length > 0) throw new Error(`runs not completed: ${failed.map((r) => `${r.corpusFile} ${r.status} ${JSON.stringify(r.error)}`).join('; ')}`);
  const exitedStack = new Promise((resolve) => stack!.once('exit', resolve));
  stack.kill('SIGTERM');
  await exitedStack;

  // 2. The NLP alone, over the chunks the pipeline stored.
  const knowledgeUrl = env[`${SERVICES.find((s) => s.name === 'knowledge')!.envPrefix}_DATABASE_URL`]!;
  const knowledge = new pg.Client({ connectionString: knowledgeUrl });
  await knowledge.connect();
  const documents = new Map<string, { chunkIndex: number; text: string }[]>();
  try {
    for (const r of results) {
      const { rows } = await knowledge.query<{ chunk_index: number; text: string }>('SELECT chunk_index, text FROM chunks WHERE document_id = $1 ORDER BY chunk_index', [r.documentId]);
      documents.set(r.corpusFile, rows.map((c) => ({ chunkIndex: c.chunk_index, text: c.text })));
    }
  } finally {
    await knowledge.end();
  }
  log(`bench:pipeline: NLP alone on ${opts.workers} workers`);
  const pool = createExtractionPool({ size: opts.workers, logger: silentLogger });
  let nlpPoolMs: number;
  let nlpCpu: CpuReading = {};
  try {
    // Every worker started and warm first (the pipeline's workers are warm after its first documents).
    await Promise.all(Array.from({ length: pool.size }, () => pool.extract([{ chunkIndex: 0, text: 'Warm-up: Dr. Jekyll met Mr. Utterson in London.' }])));
    const threadsBefore = threadCpu(process.pid);
    const t0 = Date.now();
    await Promise.all([...documents.values()].map((chunks) => pool.extract(chunks)));
    nlpPoolMs = Date.now() - t0;
    nlpCpu = cpuDelta(threadsBefore, threadCpu(process.pid));
  } finally {
    await pool.close();
  }
  const nlpSingleMs = new Map<string, number>();
  if (opts.singleThread) {
    log('bench:pipeline: NLP alone on one thread');
    for (const [file, chunks] of documents) {
      const t0 = Date.now();
      await extractDocument(chunks, { yieldBetweenChunks: false });
      nlpSingleMs.set(file, Date.now() - t0);
    }
  }

  // 3. The report.
  const stepNames = results[0]!.steps.map((s) => s.name);
  const rows = results
    .sort((a, b) => a.corpusFile.localeCompare(b.corpusFile))
    .map((r) => [
      r.corpusFile,
      documents.get(r.corpusFile)!.length,
      ...stepNames.map((name) => seconds(r.steps.find((s) => s.name === name)?.wallMs)),
      seconds(r.wallMs),
      ...(opts.singleThread ? [seconds(nlpSingleMs.get(r.corpusFile))] : []),
    ]);
  console.log(`bench:pipeline: ${files.length} corpus documents, ${concurrency} at once, ${opts.workers} extraction workers, ${opts.nats ? 'NATS' : 'in-process transport'}; load average ${(await import('node:os')).loadavg().map((l) => l.toFixed(2)).join(' ')}\n`);
  console.log('Per document: wall time of each step and of the run, s (steps as workflows recorded them, queueing included)');
  console.log(table(['document', 'chunks', ...stepNames, 'run', ...(opts.singleThread ? ['NLP 1 thread'] : [])], rows));
  const singleTotal = opts.singleThread ? [...nlpSingleMs.values()].reduce((a, b) => a + b, 0) : null;
  const ratio = pipelineMs / nlpPoolMs;
  console.log('');
  console.log(
    table(
      ['measure', 's'],
      [
        ['whole pipeline (first startRun to last run end)', seconds(pipelineMs)],
        [`NLP alone, same chunks, ${opts.workers} workers`, seconds(nlpPoolMs)],
        ...(singleTotal !== null ? [['NLP alone, one thread, one document after another', seconds(singleTotal)] as [string, string]] : []),
        ...stepNames.map((name) => [`sum of ${name} steps`, seconds(results.reduce((a, r) => a + (r.steps.find((s) => s.name === name)?.wallMs ?? 0), 0))] as [string, string]),
      ],
    ),
  );
  // Where the pipeline's CPU went (Linux /proc; bench/cpuAccounting.ts): the stack's main thread
  // runs the gateway's and the four services' JavaScript, its other threads are chiefly the
  // extraction workers; PostgreSQL by database.
  const cores = (await import('node:os')).availableParallelism();
  const cpuRows: [string, string][] = [
    ...Object.entries(pipelineCpu.stack).map(([part, s]) => [`pipeline: bin/start.ts ${part}`, s.toFixed(1)] as [string, string]),
    ...Object.entries(pipelineCpu.postgres)
      .sort((a, b) => b[1] - a[1])
      .map(([part, s]) => [`pipeline: PostgreSQL ${part}`, s.toFixed(1)] as [string, string]),
    ['pipeline: all of the above', cpuTotal(pipelineCpu.stack) + cpuTotal(pipelineCpu.postgres) > 0 ? (cpuTotal(pipelineCpu.stack) + cpuTotal(pipelineCpu.postgres)).toFixed(1) : '-'],
    [`pipeline: wall time × ${cores} cores`, ((pipelineMs / 1000) * cores).toFixed(1)],
    ...Object.entries(nlpCpu).map(([part, s]) => [`NLP alone: bench process ${part}`, s.toFixed(1)] as [string, string]),
    [`NLP alone: wall time × ${cores} cores`, ((nlpPoolMs / 1000) * cores).toFixed(1)],
  ];
  console.log('\nCPU time, s (user + system, from /proc)');
  console.log(table(['part', 'CPU s'], cpuRows));
  console.log(`\nCores busy in each second of the pipeline (bin/start.ts + PostgreSQL), of ${cores}:`);
  console.log(busyPerSecond.map((b) => (b.stack + b.postgres).toFixed(1)).join(' '));
  console.log(`\npipeline / NLP alone = ${ratio.toFixed(2)} (target ≤ ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? 'PASS' : 'MISS'})`);
  console.log(
    JSON.stringify({
      files,
      concurrency,
      workers: opts.workers,
      transport: opts.nats ? 'nats' : 'in-process',
      pipelineMs,
      nlpPoolMs,
      nlpSingleThreadMs: singleTotal,
      ratio,
      cpuSeconds: { pipeline: pipelineCpu, nlpAlone: nlpCpu, busyPerSecond },
      target: TARGET_RATIO,
      pass: ratio <= TARGET_RATIO,
      documents: results.map((r) => ({
        file: r.corpusFile,
        chunks: documents.get(r.corpusFile)!.length,
        runMs: r.wallMs,
        steps: Object.fromEntries(r.steps.map((s) => [s.name, s.wallMs])),
        nlpSingleThreadMs: nlpSingleMs.get(r.corpusFile) ?? null,
      })),
      meanRunMs: mean(results.map((r) => r.wallMs)),
    }),
  );
} finally {
  await cleanUp();
}
