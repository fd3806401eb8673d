/**
 * Resuming subscriptions through the gateway (issue 6, "Done means"), with every service in its
 * own process (as docker-compose runs them: own database, NATS JetStream between them, one
 * cursor secret) and two gateway processes, A and B, in front:
 *
 * 1. a client's socket is dropped mid-run and it resubscribes with `after: <last cursor>`;
 * 2. the owning subgraph (workflows) is stopped and started again mid-run while a client stays
 *    subscribed through the gateway, which re-subscribes upstream by itself;
 * 3. two clients share one upstream subscription at the gateway, one joining late with an old
 *    cursor (catch-up on its own upstream, then the shared one);
 * 4. gateway A is stopped mid-run (its client hears 1001) and the client resumes on gateway B.
 *
 * Every scenario checks the union of what the client received against the run's whole history:
 * each event once, in order (`asOfVersion` 0, 1, 2, … up to the run's final `version`), with the
 * fields of the other subgraphs filled (content's `steps { document { title } }`, monitoring's
 * `timeline` as of the event).
 *
 * The run (INGEST → EXTRACT → EXTERNAL approve) is driven step by step: the EXTERNAL step waits
 * for `completeStep`, so "what happens while the client is away" is decided by the test, not by
 * timing; the test also listens on NATS (the namespace's subjects) to know when an integration
 * event is out, e.g. knowledge's result waiting there for a stopped workflows. Gateway B reaches
 * workflows through a tap (`support/wsTap.ts`) that records the gateway's upstream `subscribe` /
 * `complete` messages, so sharing is checked on the wire.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { FormattedExecutionResult as ExecutionResult } from 'graphql-ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePipelineWorkflow } from '../client/pipeline.ts';
import { streamNameOf } from '../broker/nats.ts';
import type { IntegrationEvent } from '../eventstore/integration.ts';
import { requireCorpus } from '../config/corpus.ts';
import { SERVICES } from '../config/services.ts';
import { testAuthEnv } from './support/auth.ts';
import { createGatewayClient, type GatewayClient } from './support/client.ts';
import { freePort, freeServicePorts, freshServiceDatabases, spawnFlowgraph, startServiceAlone, waitForHealth, type FlowgraphProcess } from './support/process.ts';
import { recordSubscription, type RecordedSubscription } from './support/recordedSubscription.ts';
import { startWsTap, type WsTap } from './support/wsTap.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
/** FLOWGRAPH_CORPUS_DIR or ../shared/corpus, absolute; a missing corpus fails this file with one message. */
const CORPUS_DIR = requireCorpus();
/** The cursor key every service process shares (start:service requires one; a restart keeps it). */
const CURSOR_SECRET = randomBytes(32).toString('base64');
/**
 * The run's input: the opening of the first chapter of a book of the corpus (three chunks, so
 * quick to ingest and extract; the run's course is driven by the test, not by the book's size).
 */
const TITLE = 'Dr. Jekyll and Mr. Hyde: Story of the Door';
const TEXT = excerpt(readFileSync(path.join(CORPUS_DIR, 'jekyll-and-hyde.txt'), 'utf8'), 'STORY OF THE DOOR', 5_000);
/** A pipeline run's events, in order (no retry happens in these runs). */
const PIPELINE_EVENTS = ['RunStarted', 'StepStarted', 'StepCompleted', 'StepStarted', 'StepCompleted', 'StepStarted', 'StepCompleted', 'RunCompleted'];
/** Stream positions of some of them. */
const EXTRACT_STARTED = 3;
const APPROVE_STARTED = 5;
const LAST = PIPELINE_EVENTS.length - 1;

/** Fields of workflows, content (`document { title }`) and monitoring (`timeline`). */
const RUN_UPDATED = /* GraphQL */ `
  subscription Resume($runId: ID!, $after: String) {
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
        asOfPublishedVersion
        updatedAt
        steps { name kind status document { id title } }
        timeline(first: 10000) { event { source type streamId streamPosition occurredAt } }
      }
    }
  }
`;

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
    asOfPublishedVersion: number;
    updatedAt: string;
    steps: { name: string; kind: string; status: string; document: { id: string; title: string } | null }[];
    timeline: { event: { source: string; type: string; streamId: string; streamPosition: number; occurredAt: string } }[];
  };
}
type Update = ExecutionResult<{ runUpdated: RunUpdate }, { cursor?: string }>;

const versionsOf = (results: readonly Update[]) => results.map((r) => r.data?.runUpdated.run.asOfVersion);
const hasVersion = (version: number) => (results: readonly Update[]) => results.some((r) => r.data?.runUpdated.run.asOfVersion === version);
const lastCursor = (results: readonly Update[]) => results.at(-1)!.data!.runUpdated.cursor;
/** `text` from the first `start` to the first paragraph end `length` characters later. */
function excerpt(text: string, start: string, length: number): string {
  const from = text.indexOf(start);
  if (from < 0) throw new Error(`"${start}" is not in the corpus file`);
  const end = text.indexOf('\r\n\r\n', from + length);
  return text.slice(from, end < 0 ? undefined : end);
}
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('subscriptions resume through the gateway, every service in its own process', () => {
  const namespace = `e2e${randomBytes(3).toString('hex')}`;
  let databases: { env: Record<string, string>; drop(): Promise<void> };
  let ports: Awaited<ReturnType<typeof freeServicePorts>>;
  const services = new Map<string, FlowgraphProcess>();
  const gateways = new Map<'A' | 'B', { proc: FlowgraphProcess; http: GatewayClient; ws: string }>();
  const subscriptions: RecordedSubscription<unknown>[] = [];
  let tap: WsTap;
  let workflowId: string;
  let nc: NatsConnection;
  /** Integration events published in the namespace (workflows', and knowledge's DocumentEntitiesExtracted). */
  const published: IntegrationEvent<Record<string, unknown>>[] = [];
  const publishedWatchers = new Set<() => void>();

  const serviceUrl = (name: string) => {
    const definition = SERVICES.find((s) => s.name === name)!;
    return `http://127.0.0.1:${ports.env[`${definition.envPrefix}_PORT`]}/graphql`;
  };

  /** Starts (or starts again: same environment, same port) one service; resolves once it serves. */
  const startService = async (name: string) => {
    const proc = await startServiceAlone(name, {
      databases: databases.env,
      ports: ports.env,
      natsUrl: NATS_URL,
      natsNamespace: namespace,
      cursorSecret: CURSOR_SECRET,
      corpusDir: CORPUS_DIR,
    });
    services.set(name, proc);
    return proc;
  };

  const startGateway = async (name: 'A' | 'B', port: string, urls: Record<string, string>) => {
    const proc = spawnFlowgraph('start-service.ts', ['gateway'], {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      GATEWAY_PORT: port,
      ...testAuthEnv(),
      ...Object.fromEntries(SERVICES.map((s) => [`${s.envPrefix}_URL`, urls[s.name] ?? serviceUrl(s.name)])),
    });
    const base = `http://127.0.0.1:${port}`;
    gateways.set(name, { proc, http: createGatewayClient(`${base}/graphql`), ws: `ws://127.0.0.1:${port}/graphql` });
    await waitForHealth(base, proc, 120_000);
  };

  const gateway = (name: 'A' | 'B') => gateways.get(name)!;

  const subscribe = (via: 'A' | 'B', variables: { runId: string; after?: string }) => {
    const subscription = recordSubscription<{ runUpdated: RunUpdate }>(gateway(via).ws, RUN_UPDATED, variables);
    subscriptions.push(subscription as RecordedSubscription<unknown>);
    return subscription;
  };

  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL });
    for (const subject of [`${namespace}.workflows.>`, `${namespace}.knowledge.DocumentEntitiesExtracted`]) {
      nc.subscribe(subject, {
        callback: (error, msg) => {
          if (error) return;
          published.push(msg.json<IntegrationEvent<Record<string, unknown>>>());
          for (const watcher of [...publishedWatchers]) watcher();
        },
      });
    }
    databases = await freshServiceDatabases('e2e_resume');
    ports = await freeServicePorts();
    await Promise.all(SERVICES.map((service) => startService(service.name)));
    tap = await startWsTap({ host: '127.0.0.1', port: Number(ports.env.WORKFLOWS_PORT) });
    await Promise.all([
      startGateway('A', ports.env.GATEWAY_PORT!, {}),
      startGateway('B', String(await freePort()), { workflows: tap.url }),
    ]);
    workflowId = await definePipelineWorkflow(gateway('A').http, 'subscriptions resume');
  }, 300_000);

  afterAll(async () => {
    await Promise.allSettled(subscriptions.map((s) => s.dispose()));
    for (const { proc } of gateways.values()) await proc.kill();
    for (const proc of services.values()) await proc.kill();
    await tap?.close();
    await databases?.drop();
    if (nc) {
      const jsm = await jetstreamManager(nc);
      for (const service of SERVICES) await jsm.streams.delete(streamNameOf(service.name, namespace)).catch(() => {});
      await nc.close();
    }
  });

  // ---- driving a run ----

  const startRun = async (client: GatewayClient): Promise<string> => {
    const correlationId = randomUUID();
    const started = await client.query<{ startRun: { id: string } }>(
      /* GraphQL */ `mutation($workflowId: ID!, $input: JSON, $key: String) { startRun(workflowId: $workflowId, input: $input, idempotencyKey: $key) { id } }`,
      { workflowId, input: { text: TEXT, title: TITLE }, key: correlationId },
      { headers: { 'x-correlation-id': correlationId } },
    );
    if (started.errors?.length || !started.data) throw new Error(`startRun failed: ${JSON.stringify(started.errors)}`);
    return started.data.startRun.id;
  };

  interface RunState {
    status: string;
    version: number;
    steps: { name: string; status: string }[];
  }
  const runState = async (client: GatewayClient, runId: string) =>
    (await client.mustQuery<{ run: RunState }>(/* GraphQL */ `query($id: ID!) { run(id: $id) { status version steps { name status } } }`, { id: runId })).run;

  /** Polls the run (the state it is in is what the test waits for) until `predicate` holds. */
  const waitForRun = async (client: GatewayClient, runId: string, predicate: (run: RunState) => boolean, label: string, timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = await runState(client, runId);
      if (predicate(run)) return run;
      if (Date.now() > deadline) throw new Error(`run ${runId}: ${label} not within ${timeoutMs} ms; it is ${JSON.stringify(run)}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  };
  const approveRunning = (run: RunState) => run.steps.find((s) => s.name === 'approve')?.status === 'RUNNING';

  const approve = (client: GatewayClient, runId: string) =>
    client.mustQuery(/* GraphQL */ `mutation($runId: ID!) { completeStep(runId: $runId, stepName: "approve", output: { approvedBy: "resume e2e" }) { id } }`, { runId });

  /**
   * Resolves once an integration event matching `predicate` has been published on NATS (seen by
   * the test's own subscription to the namespace's workflows and knowledge subjects).
   */
  const waitForPublished = (predicate: (event: IntegrationEvent<Record<string, unknown>>) => boolean, label: string, timeoutMs = 90_000) =>
    new Promise<IntegrationEvent<Record<string, unknown>>>((resolve, reject) => {
      const check = () => {
        const found = published.find(predicate);
        if (!found) return;
        clearTimeout(timer);
        publishedWatchers.delete(check);
        resolve(found);
      };
      const timer = setTimeout(() => {
        publishedWatchers.delete(check);
        reject(new Error(`${label}: not published within ${timeoutMs} ms; published: ${JSON.stringify(published.map((e) => `${e.source}.${e.type}`))}`));
      }, timeoutMs);
      publishedWatchers.add(check);
      check();
    });

  /** Whether monitoring logged that it answered a timeline as of the run's event `version` without having observed it in time. */
  const monitoringAnsweredLate = (runId: string, version: number) =>
    (services.get('monitoring')?.output() ?? '').split('\n').some((line) => line.includes('not observed in time') && line.includes(`"runId":"${runId}"`) && line.includes(`"asOfPublishedVersion":${version},`));

  /**
   * The union of what a client received is the run's whole history: every event once, in order,
   * up to the run's final version (read back with a query), with the other subgraphs' fields.
   */
  const expectWholeHistory = async (client: GatewayClient, runId: string, received: readonly Update[]) => {
    const { run, runHistory } = await client.mustQuery<{ run: RunState; runHistory: { streamPosition: number; type: string; recordedAt: string }[] }>(
      /* GraphQL */ `query($id: ID!) { run(id: $id) { status version steps { name status } } runHistory(runId: $id) { streamPosition type recordedAt } }`,
      { id: runId },
    );
    expect(run.status).toBe('COMPLETED');
    expect(runHistory.map((e) => e.type)).toEqual(PIPELINE_EVENTS);
    expect(received.filter((r) => r.errors?.length)).toEqual([]);
    const updates = received.map((r) => r.data!.runUpdated);
    expect(versionsOf(received)).toEqual(range(0, run.version));
    expect(updates.map((u) => u.eventType)).toEqual(runHistory.map((e) => e.type));
    for (const [i, result] of received.entries()) {
      const update = result.data!.runUpdated;
      const label = `update ${i} (${update.eventType}@${update.run.asOfVersion})`;
      expect(update.run.id, label).toBe(runId);
      expect(update.run.version, label).toBe(update.run.asOfVersion);
      expect(update.cursor, label).toEqual(expect.any(String));
      expect(update.occurredAt, label).toBe(runHistory[update.run.asOfVersion]!.recordedAt);
      expect(result.extensions?.cursor, label).toBe(update.cursor);
      // content: the document of the INGEST step once it completed, of the EXTRACT step once it started.
      for (const step of update.run.steps) {
        const known = (step.kind === 'INGEST' && step.status === 'COMPLETED') || (step.kind === 'EXTRACT' && step.status !== 'PENDING');
        if (known) expect(step.document?.title, `${label}: ${step.name}.document`).toBe(TITLE);
      }
      // monitoring: the timeline as of the event: what occurred at or before it, and of the run's
      // own events those up to this one, no later one even of the same millisecond (monitoring
      // waits for it, a few seconds at most; past that it answers with what it has observed, and
      // says so in its log).
      const timeline = update.run.timeline.map((entry) => entry.event);
      for (const e of timeline) expect(Date.parse(e.occurredAt), `${label}: timeline entry ${e.source}.${e.type}`).toBeLessThanOrEqual(Date.parse(update.occurredAt));
      const runEvents = timeline.filter((e) => e.source === 'workflows' && e.streamId === `run-${runId}`).map((e) => e.streamPosition);
      const atLeast = monitoringAnsweredLate(runId, update.run.asOfPublishedVersion) ? 0 : update.run.asOfPublishedVersion + 1;
      expect([...runEvents].sort((x, y) => x - y), `${label}: the run's events in its timeline`).toEqual(range(0, runEvents.length - 1));
      expect(runEvents.length, `${label}: the run's events in its timeline`).toBeGreaterThanOrEqual(atLeast);
      expect(runEvents.length, `${label}: the run's events in its timeline`).toBeLessThanOrEqual(update.run.asOfVersion + 1);
    }
    const final = updates.at(-1)!;
    expect(final.run.status).toBe('COMPLETED');
  };

  // ---- the scenarios ----

  it('a client whose socket is dropped resumes with its last cursor: nothing missed, nothing twice', async () => {
    const { http } = gateway('A');
    const runId = await startRun(http);
    const first = subscribe('A', { runId });
    await first.waitFor((results) => results.length >= 1, 'a first update');
    first.dropSocket();
    expect(await first.ended()).toMatchObject({ kind: 'closed', code: 1006 });
    const before = [...first.results];
    expect(before.length).toBeLessThan(PIPELINE_EVENTS.length);

    // While the client is away the run goes on: ingestion, extraction, approval, completion.
    await waitForRun(http, runId, approveRunning, 'the approve step running');
    await approve(http, runId);
    await waitForRun(http, runId, (run) => run.status === 'COMPLETED', 'COMPLETED');

    const resumed = subscribe('A', { runId, after: lastCursor(before) });
    await resumed.waitFor(hasVersion(LAST), 'the resumed subscription reaching RunCompleted');
    expect(resumed.end).toBeNull();
    expect(versionsOf(resumed.results)[0]).toBe(versionsOf(before).at(-1)! + 1);
    // At least the approval and the completion happened while it was away.
    expect(resumed.results.length).toBeGreaterThanOrEqual(2);
    await expectWholeHistory(http, runId, [...before, ...resumed.results]);
  }, 120_000);

  it('the owning subgraph restarted mid-run: the gateway re-subscribes by itself and the client never notices', async () => {
    const { http } = gateway('A');
    // Knowledge is down when the run starts, so the extraction's outcome reaches workflows only
    // once the test says so: while workflows itself is down.
    expect(await services.get('knowledge')!.stop()).toEqual({ code: 0, signal: null });
    const runId = await startRun(http);
    const client = subscribe('A', { runId });
    await client.waitFor(hasVersion(EXTRACT_STARTED), 'StepStarted(extract)');
    // The EXTRACT step's StepStarted is on NATS: knowledge will get it.
    await waitForPublished((e) => e.source === 'workflows' && e.type === 'StepStarted' && e.data.runId === runId && e.data.stepName === 'extract', 'StepStarted(extract)');

    expect(await services.get('workflows')!.stop()).toEqual({ code: 0, signal: null });
    const stoppedAt = Date.now();
    // While workflows is down: knowledge starts and extracts; its DocumentEntitiesExtracted waits in NATS.
    await startService('knowledge');
    const extracted = await waitForPublished((e) => e.source === 'knowledge' && e.type === 'DocumentEntitiesExtracted' && e.data.runId === runId, 'DocumentEntitiesExtracted');
    expect(Date.parse(extracted.occurredAt)).toBeGreaterThanOrEqual(stoppedAt);
    expect(client.end).toBeNull();
    const receivedWhileDown = client.results.length;

    const restartedAt = Date.now();
    await startService('workflows');
    // The saga reacts to the extraction after the restart; the gateway's upstream resumes from its cursor.
    await client.waitFor(hasVersion(APPROVE_STARTED), 'StepStarted(approve) after the restart', 90_000);
    await approve(http, runId);
    await client.waitFor(hasVersion(LAST), 'RunCompleted');
    expect(client.end).toBeNull();
    expect(receivedWhileDown).toBe(EXTRACT_STARTED + 1);

    const { runHistory } = await http.mustQuery<{ runHistory: { streamPosition: number; type: string; recordedAt: string }[] }>(
      /* GraphQL */ `query($id: ID!) { runHistory(runId: $id) { streamPosition type recordedAt } }`,
      { id: runId },
    );
    // Events were appended on both sides of the restart: up to StepStarted(extract) before, the rest after.
    expect(Date.parse(runHistory[EXTRACT_STARTED + 1]!.recordedAt)).toBeGreaterThanOrEqual(restartedAt);
    await expectWholeHistory(http, runId, client.results);
  }, 150_000);

  it('two clients share one upstream subscription; one joining late with an old cursor catches up, then is live', async () => {
    const { http } = gateway('B');
    const runId = await startRun(http);
    const upstreamSubscribes = () => tap.messages.filter((m) => m.message.type === 'subscribe' && m.message.payload?.variables?.runId === runId);
    const early = subscribe('B', { runId });
    await early.waitFor(hasVersion(APPROVE_STARTED), 'the early client reaching StepStarted(approve)');
    expect(upstreamSubscribes()).toHaveLength(1);

    // The late client joins with the cursor of the run's first event, while the run waits for approval.
    const joinCursor = early.results[0]!.data!.runUpdated.cursor;
    const late = subscribe('B', { runId, after: joinCursor });
    await late.waitFor(hasVersion(APPROVE_STARTED), 'the late client caught up');
    // It caught up on an upstream of its own, from its cursor, which the gateway then closed:
    // from here on the shared upstream serves both.
    const subscribes = upstreamSubscribes();
    expect(subscribes.map((m) => m.message.payload!.variables!.__flowgraph_after ?? null)).toEqual([null, joinCursor]);
    const [shared, catchUp] = subscribes;
    const completed = (m: typeof shared) => (messages: typeof tap.messages) => messages.some((c) => c.connection === m!.connection && c.message.type === 'complete' && c.message.id === m!.message.id);
    await tap.waitFor(completed(catchUp), 'the catch-up upstream closed');
    expect(completed(shared)(tap.messages)).toBe(false);

    await approve(http, runId);
    await early.waitFor(hasVersion(LAST), 'the early client reaching RunCompleted');
    await late.waitFor(hasVersion(LAST), 'the late client reaching RunCompleted');
    expect(early.end).toBeNull();
    expect(late.end).toBeNull();
    expect(upstreamSubscribes()).toHaveLength(2);
    expect(completed(shared)(tap.messages)).toBe(false);

    await expectWholeHistory(http, runId, early.results);
    expect(versionsOf(late.results)).toEqual(range(1, LAST));
    // The live part is the very same updates (one hydration, one serialization, for both).
    expect(late.results.slice(APPROVE_STARTED)).toEqual(early.results.slice(APPROVE_STARTED + 1));
    expect(late.results.map((r) => r.data!.runUpdated.cursor)).toEqual(early.results.slice(1).map((r) => r.data!.runUpdated.cursor));
    await expectWholeHistory(http, runId, [early.results[0]!, ...late.results]);

    // The last client gone, the shared upstream is closed too.
    await early.dispose();
    await late.dispose();
    await tap.waitFor(completed(shared), 'the shared upstream closed');
  }, 120_000);

  // Last: it stops gateway A for good.
  it('gateway A stopped mid-run: its client hears 1001 and resumes on gateway B with its last cursor', async () => {
    const a = gateway('A');
    const b = gateway('B');
    const runId = await startRun(b.http);
    const onA = subscribe('A', { runId });
    await onA.waitFor(hasVersion(EXTRACT_STARTED), 'StepStarted(extract) through A');
    expect(await a.proc.stop()).toEqual({ code: 0, signal: null });
    expect(await onA.ended()).toMatchObject({ kind: 'closed', code: 1001 });
    const before = [...onA.results];

    // While the client is away: extraction ends, approval, completion.
    await waitForRun(b.http, runId, approveRunning, 'the approve step running');
    await approve(b.http, runId);
    await waitForRun(b.http, runId, (run) => run.status === 'COMPLETED', 'COMPLETED');

    const onB = subscribe('B', { runId, after: lastCursor(before) });
    await onB.waitFor(hasVersion(LAST), 'RunCompleted through B');
    expect(onB.end).toBeNull();
    await expectWholeHistory(b.http, runId, [...before, ...onB.results]);
  }, 120_000);
});
