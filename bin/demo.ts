/**
 * `npm run demo` (with the gateway up through `npm start`): defines the document pipeline
 * workflow (INGEST → EXTRACT → EXTERNAL), runs it on every `.txt` file of the corpus through
 * GraphQL with a progress bar, and prints per document its chunks, entities, top 5 relations
 * and the wall time of each step; then the cross-service `trace` of one run.
 *
 * Options: --gateway <url> (default GATEWAY_URL or http://127.0.0.1:4000/graphql),
 * --corpus <dir> (where the file names are listed; default FLOWGRAPH_CORPUS_DIR, absolute or
 * relative to the working directory, else ../shared/corpus next to the repository: config/corpus.ts),
 * --files a.txt,b.txt (default all), --concurrency N (default 2), --token <jwt> (default
 * FLOWGRAPH_TOKEN, else an operator token signed with GATEWAY_JWT_SECRET or the development
 * secret `npm start` stored: config/authSecrets.ts `clientTokenSigner`).
 *
 * A run that ends other than COMPLETED is printed with its failed step's name, status and error
 * (e.g. `... [CORPUS_FILE_NOT_FOUND]` when the content service has no such file in ITS corpus
 * directory); the exit code is then 1.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { Command } from 'commander';
import { createGatewayClient } from '../client/gatewayClient.ts';
import { definePipelineWorkflow, PIPELINE_STEPS, runPipeline, type PipelineResult } from '../client/pipeline.ts';
import { fetchTraceWhen, formatTrace, pipelineTraceComplete } from '../client/trace.ts';
import { CORPUS_HINT, corpusProblem, resolveCorpusDir } from '../config/corpus.ts';
import { configOrExit, optionalHttpUrlVar, parseCommonEnv, parseEnv } from '../config/env.ts';
import { clientTokenSigner, issueToken } from '../config/authSecrets.ts';
import { parseDatabaseConfig } from '../config/database.ts';

// Bad variables (LOG_LEVEL, GATEWAY_URL, FLOWGRAPH_CORPUS_DIR...): their message, exit 2.
const defaults = await configOrExit(() => {
  parseCommonEnv(process.env);
  const { GATEWAY_URL } = parseEnv(process.env, { GATEWAY_URL: optionalHttpUrlVar });
  const { secretsFile } = parseDatabaseConfig(process.env, []);
  return { gateway: GATEWAY_URL ?? 'http://127.0.0.1:4000/graphql', corpus: resolveCorpusDir(process.env), secretsFile };
});

const program = new Command('demo')
  .description('run the document pipeline on the corpus through the gateway')
  .option('--gateway <url>', 'gateway GraphQL endpoint', defaults.gateway)
  .option('--corpus <dir>', 'corpus directory (default: FLOWGRAPH_CORPUS_DIR, else ../shared/corpus next to the repository)', defaults.corpus)
  .option('--files <names>', 'comma-separated corpus files (default: every .txt file)')
  .option('--concurrency <n>', 'documents in flight at once', '2')
  .option('--token <jwt>', 'client token (default: FLOWGRAPH_TOKEN, else an operator token of GATEWAY_JWT_SECRET or of the development secret of `npm start`)')
  .parse();
const opts = program.opts<{ gateway: string; corpus: string; files?: string; concurrency: string; token?: string }>();
const concurrency = Number(opts.concurrency);
if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 16) program.error('--concurrency must be an integer from 1 to 16');

const corpusDir = path.resolve(opts.corpus);
const problem = opts.files ? undefined : corpusProblem(corpusDir);
if (problem) program.error(`corpus not found at ${corpusDir} (${problem}): ${CORPUS_HINT}`);
const files = opts.files
  ? opts.files.split(',').map((f) => f.trim()).filter(Boolean)
  : (await readdir(corpusDir)).filter((f) => f.endsWith('.txt')).sort();
if (files.length === 0) program.error(`no .txt files in ${corpusDir}`);

let token = opts.token ?? (process.env.FLOWGRAPH_TOKEN || undefined);
if (token === undefined) {
  const signer = await configOrExit(() => clientTokenSigner(process.env, defaults.secretsFile));
  if (!signer) throw program.error(`no token: pass --token or FLOWGRAPH_TOKEN (\`npm start\` prints one), or set GATEWAY_JWT_SECRET`);
  token = await issueToken(signer.secret, { subject: 'demo', role: 'operator' }, { issuer: signer.issuer, audience: signer.audience, lifetimeSeconds: 3600 });
}
const client = createGatewayClient(opts.gateway, { token });
const health = await fetch(new URL('/health', opts.gateway)).catch(() => undefined);
if (!health?.ok) program.error(`the gateway at ${opts.gateway} does not answer: start it with \`npm start\` first`);

const workflowId = await definePipelineWorkflow(client, `document pipeline (demo ${new Date().toISOString()})`);
console.log(`workflow ${workflowId}: ${PIPELINE_STEPS.map((s) => `${s.name} (${s.kind})`).join(' → ')}`);
console.log(`running it on ${files.length} documents from ${corpusDir}, ${concurrency} at a time\n`);

const tty = Boolean(process.stdout.isTTY);
const bars = tty
  ? new cliProgress.MultiBar(
      { format: ' {file} [{bar}] {value}/{total} steps | {step}', hideCursor: true, clearOnComplete: false, stopOnComplete: false },
      cliProgress.Presets.shades_classic,
    )
  : undefined;
const width = Math.max(...files.map((f) => f.length));
const results: PipelineResult[] = [];
const failures: { file: string; error: string }[] = [];
const stepIndex = (name: string) => PIPELINE_STEPS.findIndex((s) => s.name === name);
const started = Date.now();

let next = 0;
await Promise.all(
  Array.from({ length: Math.min(concurrency, files.length) }, async () => {
    for (;;) {
      const file = files[next++];
      if (!file) return;
      const bar = bars?.create(PIPELINE_STEPS.length, 0, { file: file.padEnd(width), step: 'starting' });
      try {
        const result = await runPipeline(client, workflowId, file, {
          onProgress(step, status) {
            if (step === 'done') bar?.update(status === 'COMPLETED' ? PIPELINE_STEPS.length : bar.getProgress() * PIPELINE_STEPS.length, { step: status });
            else bar?.update(Math.max(0, stepIndex(step)), { step: `${step} ${status.toLowerCase()}` });
            if (!tty) console.log(`  ${file}: ${step} ${status}`);
          },
        });
        results.push(result);
      } catch (error) {
        failures.push({ file, error: (error as Error).message });
        bar?.update({ step: 'error' });
      }
    }
  }),
);
bars?.stop();

const notCompleted = results.filter((r) => r.status !== 'COMPLETED');
console.log(
  `\n${results.length} documents in ${((Date.now() - started) / 1000).toFixed(1)} s: ${results.length - notCompleted.length} completed` +
    `${notCompleted.length ? `, ${notCompleted.length} not completed` : ''}${failures.length ? `, ${failures.length} ended in an error (below)` : ''}\n`,
);
/** The lines explaining why run `r` did not complete: its failed step(s) with status and error. */
function whyNotCompleted(r: PipelineResult): string[] {
  const failed = r.steps.filter((s) => s.name === r.error?.stepName || ['FAILED', 'TIMED_OUT', 'CANCELLED'].includes(s.status));
  const lines = failed.map((s) => `  failed step: ${s.name} (${s.kind}) ${s.status} after ${s.attempt} attempt(s) — ${s.error?.message ?? r.error?.message ?? 'no error recorded'}`);
  if (lines.length === 0) lines.push(`  run ${r.status}: ${r.error?.message ?? r.cancelReason ?? 'no error recorded'}`);
  if (lines.some((l) => l.includes('CORPUS_FILE_NOT_FOUND'))) {
    lines.push(`  hint: the content service looks corpusFile names up in its own corpus directory (FLOWGRAPH_CORPUS_DIR of \`npm start\`, logged at its start), which may differ from ${corpusDir}`);
  }
  return lines;
}
for (const r of results.sort((a, b) => a.corpusFile.localeCompare(b.corpusFile))) {
  console.log(`${r.corpusFile} — run ${r.runId} ${r.status}, document ${r.documentId ?? '-'}`);
  if (r.status !== 'COMPLETED') for (const line of whyNotCompleted(r)) console.log(line);
  console.log(`  chunks: ${r.chunkCount ?? '-'}   entities: ${r.entityCount}`);
  // Document.entities is ordered by mentions in this document, but Entity.mentionCount counts every document.
  console.log(
    `  most mentioned in this document (count = mentions in all documents): ${r.entities.slice(0, 5).map((e) => `${e.name} (${e.kind.toLowerCase()}, ${e.mentionCount})`).join(', ') || '-'}`,
  );
  console.log('  top relations:');
  for (const rel of r.topRelations) console.log(`    ${rel.from} — ${rel.to} (${rel.weight} chunks)`);
  console.log(`  wall time per step: ${r.steps.map((s) => `${s.name} ${s.wallMs === null ? '-' : `${(s.wallMs / 1000).toFixed(2)} s`}${s.attempt > 1 ? ` (attempt ${s.attempt})` : ''}`).join(', ')}; run ${(r.wallMs / 1000).toFixed(2)} s\n`);
}
for (const f of failures) console.log(`${f.file}: FAILED — ${f.error}`);

const traced = results.find((r) => r.status === 'COMPLETED') ?? results[0];
if (traced) {
  console.log(`trace of ${traced.corpusFile} (correlation id ${traced.correlationId}):`);
  // Monitoring consumes each service at its own position: wait (up to 10 s) until it has observed the whole run.
  console.log(formatTrace(await fetchTraceWhen(client, traced.correlationId, pipelineTraceComplete(traced.chunkCount), { first: 10_000 }), { maxRepeats: 3 }));
}
process.exitCode = failures.length > 0 || notCompleted.length > 0 ? 1 : 0;
