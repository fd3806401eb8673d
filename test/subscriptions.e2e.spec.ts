/**
 * Issue 6, "Done means": a real client library, Apollo Client 4 (`GraphQLWsLink` over
 * graphql-ws), subscribed at the gateway of the real `npm start` process to
 * `runUpdated(runId)` while the corpus pipeline (INGEST → EXTRACT → EXTERNAL approve, see
 * client/pipeline.ts) runs on jekyll-and-hyde.txt. One operation selects fields of three
 * subgraphs: workflows (the run as of each event), content (`steps { document { … } }`) and
 * monitoring (`timeline` as of the event).
 *
 * The run is started first and subscribed to with its id: `runUpdated` starts at the run's first
 * event, so the whole history arrives, then the live events; the test approves the EXTERNAL step
 * when its StepStarted arrives. Checked: every event once, in order (`asOfVersion` 0, 1, 2, …,
 * as many updates as the run has events: final `version` + 1, `runHistory`, monitoring's
 * timeline); each update's run is the run as of its own event (status, step statuses folded from
 * the events so far, `version`, `occurredAt`); content's document filled from the update that
 * completed the ingest step on, with the chunk count of content's chunking rule; monitoring's
 * timeline as of the event; and a cursor resumes right after its event.
 *
 * `fetchPolicy: 'no-cache'`: Apollo's cache normalizes `WorkflowRun:<id>`, so through it every
 * update would show the latest state; the test looks at each update as the gateway sent it.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ApolloClient, gql, InMemoryCache } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePipelineWorkflow, PIPELINE_STEPS } from '../client/pipeline.ts';
import { requireCorpus } from '../config/corpus.ts';
import { chunkText } from '../subgraphs/content/text/chunkText.ts';
import { decodeText } from '../subgraphs/content/text/decodeText.ts';
import { testToken } from './support/auth.ts';
import { createGatewayClient, type GatewayClient } from './support/client.ts';
import { freeServicePorts, freshServiceDatabases, spawnStart, waitForHealth, type FlowgraphProcess } from './support/process.ts';

/** FLOWGRAPH_CORPUS_DIR or ../shared/corpus, absolute; a missing corpus fails this file with one message. */
const CORPUS_DIR = requireCorpus();
const FILE = 'jekyll-and-hyde.txt';
const TITLE = 'jekyll-and-hyde';
/** The whole run, on a loaded 2-core machine (it takes ≈ 20 s on an idle one). */
const RUN_TIMEOUT_MS = 240_000;

const RUN_UPDATED = gql`
  subscription RunProgress($runId: ID!, $after: String) {
    runUpdated(runId: $runId, after: $after) {
      cursor
      eventType
      occurredAt
      stepName
      run {
        id
        status
        version
        asOfVersion
        updatedAt
        currentStep
        steps {
          name
          kind
          status
          attempt
          document { id title status corpusFile chunkCount }
        }
        timeline(first: 10000) { event { eventId source type streamId streamPosition occurredAt } }
      }
    }
  }
`;

interface TimelineEvent {
  eventId: string;
  source: string;
  type: string;
  streamId: string;
  streamPosition: number;
  occurredAt: string;
}

interface RunUpdate {
  cursor: string;
  eventType: string;
  occurredAt: string;
  stepName: string | null;
  run: {
    id: string;
    status: string;
    version: number;
    asOfVersion: number;
    updatedAt: string;
    currentStep: string | null;
    steps: {
      name: string;
      kind: string;
      status: string;
      attempt: number;
      document: { id: string; title: string; status: string; corpusFile: string | null; chunkCount: number } | null;
    }[];
    timeline: { event: TimelineEvent }[];
  };
}

interface Received {
  update: RunUpdate;
  extensions: Record<string, unknown> | undefined;
}

/** The status a step event leaves its step in (RunStarted, RunCompleted... change no step). */
const STEP_STATUS_AFTER: Record<string, string> = {
  StepStarted: 'RUNNING',
  StepCompleted: 'COMPLETED',
  StepFailed: 'FAILED',
  StepTimedOut: 'TIMED_OUT',
  StepRetried: 'RETRY_SCHEDULED',
};

describe('runUpdated through the gateway with Apollo Client, during the corpus pipeline', () => {
  let databases: { env: Record<string, string>; drop(): Promise<void> };
  let dataDir: string;
  let started: FlowgraphProcess;
  let client: GatewayClient;
  let wsClient: Client;
  let apollo: ApolloClient;
  let runId: string;
  const received: Received[] = [];
  let history: { type: string; streamPosition: number; recordedAt: string }[];
  let finalRun: { status: string; version: number; timeline: { event: TimelineEvent }[] };
  let expectedChunks: number;

  /** Subscribes with Apollo Client and collects updates until `stop(update)` says so. */
  function collect(variables: Record<string, unknown>, into: Received[], stop: (update: RunUpdate) => boolean, onUpdate?: (update: RunUpdate) => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        subscription.unsubscribe();
        reject(new Error(`no end after ${RUN_TIMEOUT_MS} ms; got ${into.map((r) => r.update.eventType).join(', ')}\n${started.output().slice(-3000)}`));
      }, RUN_TIMEOUT_MS);
      const subscription = apollo.subscribe<{ runUpdated: RunUpdate }>({ query: RUN_UPDATED, variables, fetchPolicy: 'no-cache' }).subscribe({
        next(result) {
          if (result.error || !result.data) {
            clearTimeout(timer);
            subscription.unsubscribe();
            reject(new Error(`subscription result without data: ${JSON.stringify(result.error ?? result)}`));
            return;
          }
          const update = result.data.runUpdated;
          into.push({ update, extensions: result.extensions });
          onUpdate?.(update);
          if (stop(update)) {
            clearTimeout(timer);
            subscription.unsubscribe();
            resolve();
          }
        },
        error(error: unknown) {
          clearTimeout(timer);
          reject(error instanceof Error ? error : new Error(JSON.stringify(error)));
        },
        complete() {
          clearTimeout(timer);
          reject(new Error(`the subscription completed before the run ended; got ${into.map((r) => r.update.eventType).join(', ')}`));
        },
      });
    });
  }

  /** completeStep of the EXTERNAL step, retried when the gateway could not reach workflows. */
  async function approve(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const result = await client.query(`mutation($r: ID!) { completeStep(runId: $r, stepName: "approve", output: { approvedBy: "subscriptions e2e" }) { id } }`, { r: runId });
      if (!result.errors?.length) return;
      // After an unavailable attempt the step may have been completed after all: the subscription tells.
      if (attempt > 1) return;
      if (result.errors[0]?.extensions?.code !== 'SUBGRAPH_UNAVAILABLE' || attempt >= 5) throw new Error(`completeStep failed: ${JSON.stringify(result.errors)}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  }

  beforeAll(async () => {
    databases = await freshServiceDatabases('e2e_subscriptions');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-subscriptions-'));
    const ports = await freeServicePorts();
    started = spawnStart({ dataDir, databaseEnv: databases.env, portsEnv: ports.env, corpusDir: CORPUS_DIR });
    await waitForHealth(ports.gatewayBase, started, 120_000);
    client = createGatewayClient(`${ports.gatewayBase}/graphql`);
    wsClient = createClient({
      url: `${ports.gatewayBase.replace(/^http/, 'ws')}/graphql`,
      webSocketImpl: WebSocket,
      retryAttempts: 0,
      lazy: true,
      // A client token of the test run in connection_init, as a browser app sends its user's.
      connectionParams: async () => ({ authorization: `Bearer ${await testToken()}` }),
    });
    apollo = new ApolloClient({ link: new GraphQLWsLink(wsClient), cache: new InMemoryCache() });
    const { text } = decodeText(new Uint8Array(await readFile(path.join(CORPUS_DIR, FILE))));
    expectedChunks = chunkText(text).length;

    const workflowId = await definePipelineWorkflow(client, 'subscriptions e2e');
    const { startRun } = await client.mustQuery<{ startRun: { id: string } }>(
      `mutation($w: ID!, $input: JSON) { startRun(workflowId: $w, input: $input) { id } }`,
      { w: workflowId, input: { corpusFile: FILE, title: TITLE } },
    );
    runId = startRun.id;
    // The EXTERNAL step is approved when its StepStarted arrives; a failed approval fails the wait.
    let approvalFailed: (error: unknown) => void = () => {};
    const approval = new Promise<never>((_, reject) => (approvalFailed = reject));
    await Promise.race([
      collect({ runId }, received, (update) => update.run.status !== 'RUNNING', (update) => {
        if (update.eventType === 'StepStarted' && update.stepName === 'approve') approve().catch(approvalFailed);
      }),
      approval,
    ]);
    // The current timeline, once monitoring has observed the whole run (it observes each
    // service's events a little after they happen).
    const deadline = Date.now() + 60_000;
    for (;;) {
      ({ run: finalRun, runHistory: history } = await client.mustQuery<{ run: typeof finalRun; runHistory: typeof history }>(
        `query($id: ID!) { run(id: $id) { status version timeline(first: 10000) { event { eventId source type streamId streamPosition occurredAt } } } runHistory(runId: $id) { type streamPosition recordedAt } }`,
        { id: runId },
      ));
      // Monitoring consumes each service at its own position: the run's end in workflows does not
      // mean it has observed every chunk of content and knowledge's extraction yet.
      const types = finalRun.timeline.map((t) => `${t.event.source}.${t.event.type}`);
      const whole =
        types.includes('workflows.RunCompleted') &&
        types.includes('knowledge.DocumentEntitiesExtracted') &&
        types.filter((t) => t === 'content.DocumentChunked').length >= expectedChunks;
      if (whole || Date.now() > deadline) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 130_000 + RUN_TIMEOUT_MS);

  afterAll(async () => {
    apollo?.stop();
    await wsClient?.dispose();
    await started?.kill();
    await databases?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const updates = () => received.map((r) => r.update);

  it('receives every event of the run once, in order: as many updates as the run has events', () => {
    expect(finalRun.status, started.output().slice(-2000)).toBe('COMPLETED');
    expect(updates().map((u) => [u.eventType, u.stepName])).toEqual([
      ['RunStarted', null],
      ['StepStarted', 'ingest'],
      ['StepCompleted', 'ingest'],
      ['StepStarted', 'extract'],
      ['StepCompleted', 'extract'],
      ['StepStarted', 'approve'],
      ['StepCompleted', 'approve'],
      ['RunCompleted', null],
    ]);
    expect(updates()).toHaveLength(finalRun.version + 1);
    expect(updates().map((u) => u.run.asOfVersion)).toEqual(history.map((h) => h.streamPosition));
    expect(updates().map((u) => u.run.asOfVersion)).toEqual(updates().map((_, i) => i));
    expect(updates().map((u) => u.eventType)).toEqual(history.map((h) => h.type));
    // Monitoring observed the same events of the run's stream (every one of them is published).
    const runEntries = finalRun.timeline.filter((t) => t.event.source === 'workflows' && t.event.streamId === `run-${runId}`);
    expect(runEntries.map((t) => [t.event.streamPosition, t.event.type])).toEqual(history.map((h) => [h.streamPosition, h.type]));
  });

  it('each update carries its cursor, in the payload and in extensions.cursor', () => {
    for (const { update, extensions } of received) {
      expect(update.cursor).toMatch(/^[A-Za-z0-9_-]{20,200}$/);
      expect(extensions?.cursor).toBe(update.cursor);
    }
    expect(new Set(updates().map((u) => u.cursor)).size).toBe(received.length);
  });

  it("each update's run is the run as of its own event", () => {
    const names = PIPELINE_STEPS.map((s) => s.name);
    const statuses = new Map<string, string>(names.map((name) => [name, 'PENDING']));
    updates().forEach((u, i) => {
      const at = `update ${i} (${u.eventType} ${u.stepName ?? ''})`;
      expect(u.run.id, at).toBe(runId);
      expect(u.run.version, at).toBe(i);
      expect(u.occurredAt, at).toBe(history[i]!.recordedAt);
      expect(u.run.updatedAt, at).toBe(u.occurredAt);
      expect(u.run.status, at).toBe(i === received.length - 1 ? 'COMPLETED' : 'RUNNING');
      if (u.stepName !== null && STEP_STATUS_AFTER[u.eventType]) statuses.set(u.stepName, STEP_STATUS_AFTER[u.eventType]!);
      expect(u.run.steps.map((s) => [s.name, s.status]), at).toEqual(names.map((name) => [name, statuses.get(name)]));
      expect(u.run.steps.map((s) => s.attempt), at).toEqual(names.map((name) => (statuses.get(name) === 'PENDING' ? 0 : 1)));
      const running = u.run.steps.find((s) => s.status === 'RUNNING');
      if (running) expect(u.run.currentStep, at).toBe(running.name);
      if (u.run.status !== 'RUNNING') expect(u.run.currentStep, at).toBeNull();
      if (i > 0) expect(Date.parse(u.occurredAt), at).toBeGreaterThanOrEqual(Date.parse(updates()[i - 1]!.occurredAt));
    });
  });

  it("content's document is filled from the update that completed the ingest step on", () => {
    const ingestDone = updates().findIndex((u) => u.eventType === 'StepCompleted' && u.stepName === 'ingest');
    const extractStarted = updates().findIndex((u) => u.eventType === 'StepStarted' && u.stepName === 'extract');
    expect(ingestDone).toBe(2);
    const documentId = updates()[ingestDone]!.run.steps[0]!.document?.id;
    expect(documentId).toBeTruthy();
    updates().forEach((u, i) => {
      const [ingest, extract, approval] = u.run.steps;
      const at = `update ${i} (${u.eventType} ${u.stepName ?? ''})`;
      const document = { __typename: 'Document', id: documentId, title: TITLE, status: 'PROCESSED', corpusFile: FILE, chunkCount: expectedChunks };
      expect(ingest!.document, at).toEqual(i >= ingestDone ? document : null);
      expect(extract!.document, at).toEqual(i >= extractStarted ? document : null);
      expect(approval!.document, at).toBeNull();
    });
    expect(expectedChunks).toBeGreaterThan(50);
  });

  it("monitoring's timeline is the one as of each update's event", () => {
    const finalIds = finalRun.timeline.map((t) => t.event.eventId);
    updates().forEach((u, i) => {
      const at = `update ${i} (${u.eventType} ${u.stepName ?? ''})`;
      const entries = u.run.timeline.map((t) => t.event);
      // Nothing that occurred after the event; in the order of the current timeline.
      for (const entry of entries) expect(Date.parse(entry.occurredAt), `${at}: ${entry.type}`).toBeLessThanOrEqual(Date.parse(u.occurredAt));
      const positions = entries.map((e) => finalIds.indexOf(e.eventId));
      expect(positions.every((p, k) => p >= 0 && (k === 0 || p > positions[k - 1]!)), at).toBe(true);
      // The run's own events so far, every one of them, and none later (not even one of the same
      // millisecond: the run's stream orders its own events).
      const own = entries.filter((e) => e.source === 'workflows' && e.streamId === `run-${runId}`);
      expect(own.map((e) => [e.streamPosition, e.type]), at).toEqual(history.slice(0, i + 1).map((h) => [h.streamPosition, h.type]));
      // The event itself is the timeline's last entry of its run (other services' events of the same millisecond may follow it).
      expect(own.at(-1), at).toMatchObject({ source: 'workflows', type: u.eventType, streamPosition: i });
    });
    // The run's whole timeline: content's ingestion (a DocumentChunked per chunk) and knowledge's extraction in it.
    const types = finalRun.timeline.map((t) => `${t.event.source}.${t.event.type}`);
    expect(types.filter((t) => t === 'content.DocumentChunked')).toHaveLength(expectedChunks);
    expect(types).toEqual(expect.arrayContaining(['content.DocumentIngested', 'content.DocumentProcessed', 'knowledge.DocumentEntitiesExtracted']));
  });

  it('a cursor resumes right after its event: the same updates, none missed, none twice', async () => {
    const from = 4;
    const resumed: Received[] = [];
    await collect({ runId, after: updates()[from]!.cursor }, resumed, (update) => update.eventType === 'RunCompleted');
    expect(resumed.map((r) => [r.update.run.asOfVersion, r.update.eventType, r.update.cursor])).toEqual(
      updates()
        .slice(from + 1)
        .map((u) => [u.run.asOfVersion, u.eventType, u.cursor]),
    );
    expect(resumed.map((r) => r.update.run.steps)).toEqual(updates().slice(from + 1).map((u) => u.run.steps));
  });
});
