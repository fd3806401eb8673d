/**
 * The document pipeline driven through the gateway (issue 3, "The saga"): a workflow
 * INGEST (content) → EXTRACT (knowledge) → EXTERNAL (a person approves, here the driver), run
 * on corpus files. Shared by `npm run demo` and `test/pipeline.e2e.spec.ts`, so the test checks
 * exactly what the demo shows.
 */
import { randomUUID } from 'node:crypto';
import type { GatewayClient } from './gatewayClient.ts';
import type { RunWakeups } from './runWakeups.ts';

/** Steps of the pipeline workflow, in order. */
export const PIPELINE_STEPS = [
  // A book of 880 KB is ingested in a few seconds; extraction is CPU-bound (≈ 20 s for it).
  { name: 'ingest', kind: 'INGEST', timeoutMs: 120_000, retryPolicy: { maxAttempts: 2, backoffMs: 1000 } },
  { name: 'extract', kind: 'EXTRACT', timeoutMs: 300_000, retryPolicy: { maxAttempts: 2, backoffMs: 1000 } },
  { name: 'approve', kind: 'EXTERNAL', timeoutMs: 600_000, retryPolicy: { maxAttempts: 1, backoffMs: 0 } },
] as const;

/** Defines the pipeline workflow (a new definition on every call). @returns its id */
export async function definePipelineWorkflow(client: GatewayClient, name = 'document pipeline'): Promise<string> {
  const { defineWorkflow } = await client.mustQuery<{ defineWorkflow: { id: string } }>(
    /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
    { input: { name, steps: PIPELINE_STEPS } },
  );
  return defineWorkflow.id;
}

/** A step of a run as the driver saw it at the end. */
export interface StepTiming {
  name: string;
  kind: string;
  status: string;
  attempt: number;
  /** Wall time from the step's (last) start to its end, in ms; null when it did not end. */
  wallMs: number | null;
  output: unknown;
  /** `{ message }` of the last failed or timed-out attempt (workflows' `StepRun.error`), else null. */
  error: { message?: string } | null;
}

/** What one document's run produced, read back through the gateway. */
export interface PipelineResult {
  corpusFile: string;
  runId: string;
  correlationId: string;
  status: string;
  /** `{ stepName, message }` once the run FAILED (workflows' `WorkflowRun.error`), else null. */
  error: { stepName?: string; message?: string } | null;
  /** Why the run was cancelled, else null. */
  cancelReason: string | null;
  documentId: string | null;
  title: string | null;
  chunkCount: number | null;
  entityCount: number;
  entities: { name: string; kind: string; mentionCount: number }[];
  topRelations: { from: string; to: string; weight: number }[];
  steps: StepTiming[];
  /** From startRun to the run's end, in ms. */
  wallMs: number;
}

/** Options of `runPipeline`. */
export interface RunPipelineOptions {
  /** Called whenever the run's current step changes: `(stepName | 'done', status)`. */
  onProgress?(step: string, status: string): void;
  /** Give up after this many ms. @default 600000 */
  timeoutMs?: number;
  /** Poll interval, in ms (with `wakeups`, the fallback between two events of the run). @default 250 */
  pollMs?: number;
  /** Reads the run again as soon as one of its events is observed (`client/runWakeups.ts` `watchRuns`). */
  wakeups?: RunWakeups;
  /** Entities returned in the result (most mentioned first). @default 10 */
  entities?: number;
}

interface RunView {
  id: string;
  status: string;
  error: PipelineResult['error'];
  cancelReason: string | null;
  steps: { name: string; kind: string; status: string; attempt: number; output: unknown; error: StepTiming['error']; startedAt: string | null; endedAt: string | null }[];
}

const RUN_QUERY = /* GraphQL */ `query($id: ID!) { run(id: $id) { id status error cancelReason steps { name kind status attempt output error startedAt endedAt } } }`;

/**
 * Runs the pipeline on one corpus file: starts a run (with its own correlation id), approves
 * the EXTERNAL step when it starts, waits for the run to end and reads the document back.
 * @throws Error when the run does not end within `timeoutMs`, or a GraphQL call fails
 */
export async function runPipeline(client: GatewayClient, workflowId: string, corpusFile: string, options: RunPipelineOptions = {}): Promise<PipelineResult> {
  const correlationId = randomUUID();
  const headers = { 'x-correlation-id': correlationId };
  const started = Date.now();
  const startedRun = await client.query<{ startRun: { id: string } }>(
    /* GraphQL */ `mutation($workflowId: ID!, $input: JSON, $key: String) { startRun(workflowId: $workflowId, input: $input, idempotencyKey: $key) { id } }`,
    { workflowId, input: { corpusFile, title: corpusFile.replace(/\.txt$/, '') }, key: `${corpusFile}:${correlationId}` },
    { headers },
  );
  if (startedRun.errors?.length || !startedRun.data) throw new Error(`startRun failed: ${JSON.stringify(startedRun.errors)}`);
  const runId = startedRun.data.startRun.id;
  const deadline = started + (options.timeoutMs ?? 600_000);
  let last = '';
  let run: RunView;
  for (;;) {
    ({ run } = await client.mustQuery<{ run: RunView }>(RUN_QUERY, { id: runId }));
    const current = run.steps.find((s) => s.status !== 'COMPLETED' && s.status !== 'PENDING') ?? run.steps.find((s) => s.status === 'PENDING');
    const label = run.status === 'RUNNING' ? `${current?.name}:${current?.status}` : run.status;
    if (label !== last) {
      last = label;
      options.onProgress?.(run.status === 'RUNNING' ? current?.name ?? '?' : 'done', run.status === 'RUNNING' ? current?.status ?? '?' : run.status);
    }
    if (run.status !== 'RUNNING') break;
    if (current?.kind === 'EXTERNAL' && current.status === 'RUNNING') {
      await client.query(
        /* GraphQL */ `mutation($runId: ID!, $step: String!, $output: JSON) { completeStep(runId: $runId, stepName: $step, output: $output) { id } }`,
        { runId, step: current.name, output: { approvedBy: 'flowgraph demo' } },
        { headers },
      );
      continue;
    }
    if (Date.now() > deadline) throw new Error(`run ${runId} (${corpusFile}) still ${label} after ${options.timeoutMs ?? 600_000} ms`);
    if (options.wakeups) await options.wakeups.wait(runId, options.pollMs ?? 250);
    else await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 250));
  }
  const wallMs = Date.now() - started;
  const ingest = run.steps.find((s) => s.kind === 'INGEST');
  const documentId = (ingest?.output as { documentId?: string } | null)?.documentId ?? null;
  interface DocumentView {
    title: string;
    chunkCount: number;
    // Knowledge's fields on content's Document are nullable (null, with an error, when knowledge fails).
    entities: PipelineResult['entities'] | null;
    relations: { from: { name: string }; to: { name: string }; weight: number }[] | null;
  }
  let document: DocumentView | null = null;
  // The EXTRACT step's output is knowledge's DocumentEntitiesExtracted summary.
  const extract = run.steps.find((s) => s.kind === 'EXTRACT');
  const entityCount = (extract?.output as { entityCount?: number } | null)?.entityCount ?? 0;
  if (documentId) {
    const read = await client.mustQuery<{ document: DocumentView | null }>(
      /* GraphQL */ `query($id: ID!, $n: Int) { document(id: $id) {
        title chunkCount
        entities(first: $n) { name kind mentionCount }
        relations(first: 5) { from { name } to { name } weight }
      } }`,
      { id: documentId, n: options.entities ?? 10 },
    );
    document = read.document;
  }
  return {
    corpusFile,
    runId,
    correlationId,
    status: run.status,
    error: run.error ?? null,
    cancelReason: run.cancelReason ?? null,
    documentId,
    title: document?.title ?? null,
    chunkCount: document?.chunkCount ?? null,
    entityCount,
    entities: document?.entities ?? [],
    topRelations: (document?.relations ?? []).map((r) => ({ from: r.from.name, to: r.to.name, weight: r.weight })),
    steps: run.steps.map((s) => ({
      name: s.name,
      kind: s.kind,
      status: s.status,
      attempt: s.attempt,
      wallMs: s.startedAt && s.endedAt ? Date.parse(s.endedAt) - Date.parse(s.startedAt) : null,
      output: s.output,
      error: s.error ?? null,
    })),
    wallMs,
  };
}
