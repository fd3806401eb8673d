/**
 * Issue 3, "Done means": the document pipeline (INGEST → EXTRACT → EXTERNAL) through the real
 * `npm start` process (all four subgraphs and the gateway, in-process transport), on two corpus
 * files, driven by the same code as `npm run demo` (client/pipeline.ts). Checks real content:
 * chunk counts follow content's documented chunking rule, Sherlock Holmes and Watson are
 * related entities of sign-of-the-four.txt (found by the NLP package, not listed anywhere),
 * and the run's trace spans the three services in causal order with its correlation id.
 */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePipelineWorkflow, runPipeline, type PipelineResult } from '../client/pipeline.ts';
import { watchRuns, type RunWakeups } from '../client/runWakeups.ts';
import { fetchTraceWhen, pipelineTraceComplete } from '../client/trace.ts';
import { chunkText } from '../subgraphs/content/text/chunkText.ts';
import { decodeText } from '../subgraphs/content/text/decodeText.ts';
import { requireCorpus } from '../config/corpus.ts';
import { testToken } from './support/auth.ts';
import { createGatewayClient, type GatewayClient } from './support/client.ts';
import { freeServicePorts, freshServiceDatabases, spawnStart, waitForHealth, type FlowgraphProcess } from './support/process.ts';

const FILES = ['sign-of-the-four.txt', 'jekyll-and-hyde.txt'];
/** FLOWGRAPH_CORPUS_DIR or ../shared/corpus, absolute (passed on to `npm start`); a missing corpus fails this file with one message. */
const CORPUS_DIR = requireCorpus();

describe('the document pipeline across services, through the gateway', () => {
  let databases: { env: Record<string, string>; drop(): Promise<void> };
  let dataDir: string;
  let started: FlowgraphProcess;
  let client: GatewayClient;
  let wakeups: RunWakeups;
  const results = new Map<string, PipelineResult>();

  beforeAll(async () => {
    databases = await freshServiceDatabases('e2e_pipeline');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-pipeline-'));
    const ports = await freeServicePorts();
    started = spawnStart({ dataDir, databaseEnv: databases.env, portsEnv: ports.env, corpusDir: CORPUS_DIR });
    await waitForHealth(ports.gatewayBase, started, 120_000);
    client = createGatewayClient(`${ports.gatewayBase}/graphql`);
    wakeups = watchRuns(`${ports.gatewayBase.replace(/^http/, 'ws')}/graphql`, () => testToken());
  }, 130_000);

  afterAll(async () => {
    await wakeups?.close();
    await started?.kill();
    await databases?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('runs both documents to completion, each step completed by its own service', async () => {
    const workflowId = await definePipelineWorkflow(client, 'e2e pipeline');
    // The second run polls once a minute: it finishes within a minute only because the live
    // feed's events of it (client/runWakeups.ts) end its waits.
    const runs = await Promise.all([
      runPipeline(client, workflowId, FILES[0]!, { timeoutMs: 240_000 }),
      runPipeline(client, workflowId, FILES[1]!, { timeoutMs: 240_000, pollMs: 60_000, wakeups }),
    ]);
    expect(runs[1]!.wallMs, 'a run woken by its events').toBeLessThan(60_000);
    for (const r of runs) results.set(r.corpusFile, r);
    for (const r of runs) {
      expect(r.status, `${r.corpusFile}: ${started.output().slice(-2000)}`).toBe('COMPLETED');
      expect(r.steps.map((s) => [s.kind, s.status])).toEqual([
        ['INGEST', 'COMPLETED'],
        ['EXTRACT', 'COMPLETED'],
        ['EXTERNAL', 'COMPLETED'],
      ]);
      expect(r.documentId).toBeTruthy();
      expect(r.entityCount).toBeGreaterThan(10);
      expect(r.topRelations.length).toBe(5);
    }
  }, 300_000);

  it.each(FILES)('%s: the chunk count follows the documented chunking rule', async (file) => {
    const r = results.get(file)!;
    const { text } = decodeText(new Uint8Array(await readFile(path.join(CORPUS_DIR, file))));
    const expected = chunkText(text).length;
    expect(expected).toBeGreaterThan(50);
    expect(r.chunkCount).toBe(expected);
  });

  it('sign-of-the-four.txt: Sherlock Holmes and Watson are entities, related to each other', async () => {
    const r = results.get('sign-of-the-four.txt')!;
    expect(r.entities.map((e) => e.name)).toContain('Sherlock Holmes');
    const { searchEntities } = await client.mustQuery<{ searchEntities: { id: string; name: string; kind: string }[] }>(
      '{ searchEntities(name: "Holmes") { id name kind } }',
    );
    const holmes = searchEntities.find((e) => e.name === 'Sherlock Holmes');
    expect(holmes?.kind).toBe('PERSON');
    const { neighbors } = await client.mustQuery<{ neighbors: { depth: number; weight: number; entity: { name: string } }[] }>(
      'query($id: ID!) { neighbors(entityId: $id, depth: 1, first: 200) { depth weight entity { name } } }',
      { id: holmes!.id },
    );
    const watson = neighbors.find((n) => /\bWatson\b/.test(n.entity.name));
    expect(watson, JSON.stringify(neighbors.slice(0, 10))).toBeDefined();
    expect(watson!.weight).toBeGreaterThanOrEqual(5);
  });

  it("the run's trace crosses the three services in causal order, and its timeline is on WorkflowRun", async () => {
    const r = results.get('jekyll-and-hyde.txt')!;
    const trace = await fetchTraceWhen(client, r.correlationId, pipelineTraceComplete(r.chunkCount), { first: 5000 });
    expect(trace).not.toBeNull();
    expect(trace!.sources).toEqual(['content', 'knowledge', 'workflows']);
    const types = trace!.events.map((e) => `${e.event.source}.${e.event.type}`);
    const first = (t: string) => types.indexOf(t);
    expect(first('workflows.RunStarted')).toBe(0);
    expect(first('workflows.StepStarted')).toBeLessThan(first('content.DocumentIngested'));
    expect(first('content.DocumentProcessed')).toBeLessThan(first('knowledge.DocumentEntitiesExtracted'));
    expect(types).toContain('workflows.RunCompleted');
    expect(types.filter((t) => t === 'content.DocumentChunked')).toHaveLength(r.chunkCount!);
    // Causal order: every event's cause comes before it.
    const seen = new Set<string>();
    for (const e of trace!.events) {
      if (e.causeEventId) expect(seen.has(e.causeEventId), `${e.event.type} before its cause`).toBe(true);
      if (e.depth > 0) expect(e.durationSinceCauseMs).not.toBeNull();
      seen.add(e.event.eventId);
    }
    expect(trace!.events.filter((e) => e.depth > 0).length).toBeGreaterThan(trace!.eventCount / 2);
    const { run } = await client.mustQuery<{ run: { timeline: { event: { type: string; source: string } }[] } }>(
      'query($id: ID!) { run(id: $id) { timeline(first: 10000) { event { type source } } } }',
      { id: r.runId },
    );
    expect(run.timeline.map((t) => t.event.type)).toEqual(expect.arrayContaining(['RunStarted', 'DocumentProcessed', 'DocumentEntitiesExtracted', 'RunCompleted']));
  });
});
