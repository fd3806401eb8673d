/**
 * The live monitoring page `/monitor/` in headless Chromium (issue 8, "Done means"), against real
 * services: every subgraph in its own process (own database, NATS JetStream in a namespace of
 * this file, one cursor secret) and the gateway as a process of its own, so it can be stopped and
 * started again on the same port while the page stays open.
 *
 * 1. Sign in with an operator token; a pipeline run (INGEST → EXTRACT → EXTERNAL approve) started
 *    through the API shows up and its steps change state on the page without a reload; its events
 *    arrive in the feed. The gateway is stopped mid-run (the badge says `reconnecting`); while it
 *    is down the EXTERNAL step is failed on the workflows subgraph directly; the gateway starts
 *    again and the badge goes `catching up` → `live`, the run shows FAILED and the feed holds
 *    exactly the run's events (the `eventFeed` query's, once each, in order). The step is retried
 *    from the page (`retry-step`) and the run is RUNNING again. The documents view draws an
 *    entity's neighbours. Screenshots of every view.
 * 2. Responsiveness: 1,000 runs in the list and 50 events/s for 10 s on the runs view, then 10 s
 *    on the feed; frame gaps (a `requestAnimationFrame` loop) and event-to-paint delays (from the
 *    feed receiving an event to the frame after its item was added) are measured in the page and
 *    printed with Chromium's own main-thread accounting (script, style, layout and task ms per
 *    second of load, from the DevTools `Performance` domain); only a generous bound is asserted.
 *    This file runs last and alone (vitest.config.ts, project `alone`): with PostgreSQL-heavy
 *    suites beside it on 2 cores, frame gaps measured the machine, not the page.
 *
 * No request may leave the gateway's origin and the page may raise no error.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePipelineWorkflow } from '../client/pipeline.ts';
import { streamNameOf } from '../broker/nats.ts';
import { requireCorpus } from '../config/corpus.ts';
import { SERVICES } from '../config/services.ts';
import { mustGraphQL } from '../federation/testing/graphqlClient.ts';
import { testAuthEnv, testToken } from './support/auth.ts';
import { launchBrowser, screenshot, SCREENSHOT_DIR, watchPage } from './support/browser.ts';
import { recordSockets, socketLog } from './support/socketRecorder.ts';
import { createGatewayClient, type GatewayClient } from './support/client.ts';
import { freeServicePorts, freshServiceDatabases, spawnFlowgraph, startServiceAlone, waitForHealth, type FlowgraphProcess } from './support/process.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const CORPUS_DIR = requireCorpus();
const CURSOR_SECRET = randomBytes(32).toString('base64');
const TITLE = 'Dr. Jekyll and Mr. Hyde: Story of the Door';
/** The opening of the book's first chapter (three chunks: quick to ingest and extract). */
const TEXT = excerpt(readFileSync(path.join(CORPUS_DIR, 'jekyll-and-hyde.txt'), 'utf8'), 'STORY OF THE DOOR', 5_000);

function excerpt(text: string, start: string, length: number): string {
  const from = text.indexOf(start);
  if (from < 0) throw new Error(`"${start}" is not in the corpus file`);
  const end = text.indexOf('\r\n\r\n', from + length);
  return text.slice(from, end < 0 ? undefined : end);
}

/** p50, p95 and max of `values` (ms), rounded to 0.1. */
function percentiles(values: readonly number[]): { n: number; p50: number; p95: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
  const round = (v: number) => Math.round(v * 10) / 10;
  return { n: sorted.length, p50: round(at(0.5)), p95: round(at(0.95)), max: round(sorted.at(-1) ?? NaN) };
}

interface FeedNode {
  eventId: string;
  source: string;
  type: string;
}

describe('the /monitor page in headless Chromium', () => {
  const namespace = `e2emon${randomBytes(3).toString('hex')}`;
  let databases: { env: Record<string, string>; drop(): Promise<void> };
  let ports: Awaited<ReturnType<typeof freeServicePorts>>;
  const services = new Map<string, FlowgraphProcess>();
  let gateway: FlowgraphProcess | null = null;
  let api: GatewayClient;
  let browser: Browser;
  let base: string;
  let nc: NatsConnection;

  const serviceUrl = (name: string) => {
    const definition = SERVICES.find((s) => s.name === name)!;
    return `http://127.0.0.1:${ports.env[`${definition.envPrefix}_PORT`]}/graphql`;
  };

  const startGateway = async () => {
    const proc = spawnFlowgraph('start-service.ts', ['gateway'], {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      GATEWAY_PORT: ports.env.GATEWAY_PORT!,
      ...testAuthEnv(),
      ...Object.fromEntries(SERVICES.map((s) => [`${s.envPrefix}_URL`, serviceUrl(s.name)])),
    });
    gateway = proc;
    await waitForHealth(base, proc, 120_000);
  };

  beforeAll(async () => {
    nc = await connect({ servers: NATS_URL });
    databases = await freshServiceDatabases('e2e_monitor');
    ports = await freeServicePorts();
    base = ports.gatewayBase;
    await Promise.all(
      SERVICES.map(async (service) => {
        services.set(
          service.name,
          await startServiceAlone(service.name, {
            databases: databases.env,
            ports: ports.env,
            natsUrl: NATS_URL,
            natsNamespace: namespace,
            cursorSecret: CURSOR_SECRET,
            corpusDir: CORPUS_DIR,
          }),
        );
      }),
    );
    await startGateway();
    api = createGatewayClient(`${base}/graphql`);
    browser = await launchBrowser();
  }, 300_000);

  afterAll(async () => {
    await browser?.close().catch(() => {});
    await gateway?.kill();
    for (const proc of services.values()) await proc.kill();
    await databases?.drop();
    if (nc) {
      const jsm = await jetstreamManager(nc);
      for (const service of SERVICES) await jsm.streams.delete(streamNameOf(service.name, namespace)).catch(() => {});
      await nc.close();
    }
  });

  /** A fresh page at /monitor/, signed in as `role` through the sign-in form, its problems watched. */
  const openSignedIn = async (role: 'viewer' | 'operator' = 'operator'): Promise<{ page: Page; problems: string[] }> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    await recordSockets(page);
    const { problems } = watchPage(page, base);
    page.on('console', (message) => {
      // Chromium's own line for each refused reconnect while the gateway is down is expected.
      if (message.type() === 'error' && !/^WebSocket connection to 'ws:\/\/[^']+\/graphql' failed/.test(message.text())) problems.push(`console error: ${message.text()}`);
    });
    await page.goto(`${base}/monitor/`);
    await page.locator('[data-testid=sign-in]').waitFor();
    expect(await page.locator('[data-testid=connection-state]').getAttribute('data-state')).toBe('signed-out');
    await screenshot(page, 'monitor-sign-in');
    await page.fill('[data-testid=token-input]', await testToken({ subject: 'monitor-e2e', role }));
    await page.click('[data-testid=sign-in-submit]');
    await page.locator('[data-testid=connection-state][data-state=live]').waitFor({ timeout: 30_000 });
    await expect(page.locator('[data-testid=identity]').textContent()).resolves.toContain(role);
    // The token is in session storage, never in the URL.
    expect(page.url()).not.toContain('eyJ');
    return { page, problems };
  };

  const startRun = async (workflowId: string, input: Record<string, unknown>, correlationId = randomUUID()) => {
    const started = await api.query<{ startRun: { id: string } }>(
      /* GraphQL */ `mutation($workflowId: ID!, $input: JSON, $key: String) { startRun(workflowId: $workflowId, input: $input, idempotencyKey: $key) { id } }`,
      { workflowId, input, key: correlationId },
      { headers: { 'x-correlation-id': correlationId } },
    );
    if (started.errors?.length || !started.data) throw new Error(`startRun failed: ${JSON.stringify(started.errors)}`);
    return { runId: started.data.startRun.id, correlationId };
  };

  /** Every event of `correlationId` through the API (`eventFeed` query, paged), oldest first. */
  const feedOf = async (correlationId: string): Promise<FeedNode[]> => {
    const nodes: FeedNode[] = [];
    let after: string | null = null;
    for (;;) {
      const page: { eventFeed: { edges: { node: FeedNode }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } = await api.mustQuery(
        /* GraphQL */ `query($after: String, $filter: EventFilter) { eventFeed(first: 500, after: $after, filter: $filter) { edges { node { eventId source type } } pageInfo { hasNextPage endCursor } } }`,
        { after, filter: { correlationId } },
      );
      nodes.push(...page.eventFeed.edges.map((e) => e.node));
      if (!page.eventFeed.pageInfo.hasNextPage) return nodes;
      after = page.eventFeed.pageInfo.endCursor;
    }
  };

  /** The page's feed items of `correlationId`, oldest first (the page shows newest first). */
  const pageFeedOf = (page: Page, correlationId: string): Promise<FeedNode[]> =>
    page.$$eval(
      `[data-testid=feed-item][data-correlation-id="${correlationId}"]`,
      (items) => items.map((li) => ({ eventId: li.getAttribute('data-event-id')!, source: li.getAttribute('data-source')!, type: li.getAttribute('data-type')! })).reverse(),
    );

  /**
   * Waits until the page's feed items of `correlationId` are the API's `eventFeed` of it: the same
   * events, once each, in order (both read again on every poll, as events may still arrive).
   */
  const expectSameFeed = async (page: Page, correlationId: string) => {
    let last: { onPage: FeedNode[]; api: FeedNode[] } = { onPage: [], api: [] };
    await expect
      .poll(async () => {
        last = { api: await feedOf(correlationId), onPage: await pageFeedOf(page, correlationId) };
        return JSON.stringify(last.onPage) === JSON.stringify(last.api);
      }, { timeout: 30_000 })
      .toBe(true)
      .catch(async () => {
        const why = await explainMissing(page, last.api, last.onPage);
        expect(last.onPage, why).toEqual(last.api);
      });
    return last.api;
  };

  /**
   * Why the page lacks events the API has, for a failure message: for each missing event, whether
   * the page's socket received it (then the page lost it) or not (the gateway never sent it), the
   * page's MonitorFeed subscribes and its socket closes. The processes' outputs are saved beside
   * the screenshots (`monitor-e2e-<name>.log`).
   */
  const explainMissing = async (page: Page, api: FeedNode[], onPage: FeedNode[]): Promise<string> => {
    const shown = new Set(onPage.map((e) => `${e.source}:${e.eventId}`));
    const log = await socketLog(page);
    const missing = api.filter((e) => !shown.has(`${e.source}:${e.eventId}`));
    const lines = missing.map((e) => {
      const got = log.find((entry) => entry.kind === 'in' && entry.eventId === e.eventId);
      return `${e.source} ${e.type} ${e.eventId}: ${got ? `received on socket ${got.socket} at ${new Date(got.at).toISOString()} (op ${got.id}): the page lost it` : 'never received by the page'}`;
    });
    const feedOps = log.filter((entry) => entry.kind === 'out' && entry.operation?.startsWith('MonitorFeed'));
    const ended = log.filter((entry) => entry.kind === 'close' || (entry.kind === 'in' && (entry.detail === 'error' || entry.detail === 'complete') && feedOps.some((op) => op.id === entry.id && op.socket === entry.socket)));
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    const outputs: [string, FlowgraphProcess | null][] = [['gateway', gateway], ...services.entries()];
    for (const [name, child] of outputs) if (child) writeFileSync(path.join(SCREENSHOT_DIR, `monitor-e2e-${name}.log`), child.output());
    writeFileSync(path.join(SCREENSHOT_DIR, 'monitor-e2e-socket.json'), JSON.stringify(log, null, 1));
    const at = (t: number) => new Date(t).toISOString();
    return [
      `${missing.length} of the API's ${api.length} events are not on the page:`,
      ...lines,
      `MonitorFeed subscribes: ${feedOps.map((op) => `${at(op.at)} socket ${op.socket} op ${op.id} ${op.operation}`).join('; ') || 'none'}`,
      `feed ends and socket closes: ${ended.map((entry) => `${at(entry.at)} socket ${entry.socket} ${entry.kind} ${entry.detail}${entry.id ? ` op ${entry.id}` : ''}`).join('; ') || 'none'}`,
      ...(log.dropped > 0 ? [`(the socket log dropped its ${log.dropped} oldest entries: "never received" may be one of them)`] : []),
      `(socket log and process outputs in ${SCREENSHOT_DIR})`,
    ].join('\n');
  };

  /**
   * A subscription without a cursor starts at monitoring's log head once the gateway's upstream
   * is set up, a moment after the page subscribed: events before that are not the page's. So the
   * test starts throwaway runs until one shows in the page's feed, and only then starts its own.
   */
  const waitForFeedSubscribed = async (page: Page) => {
    const { defineWorkflow } = await api.mustQuery<{ defineWorkflow: { id: string } }>(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { name: 'monitor warm-up', steps: [{ name: 'wait', kind: 'EXTERNAL', timeoutMs: 3_600_000 }] } },
    );
    await page.click('[data-testid=nav-events]');
    for (let attempt = 0; ; attempt++) {
      const { runId } = await startRun(defineWorkflow.id, {});
      const seen = await page
        .locator(`[data-testid=feed-item][data-run-id="${runId}"]`)
        .first()
        .waitFor({ state: 'attached', timeout: 3_000 })
        .then(() => true, () => false);
      if (seen) return page.click('[data-testid=nav-runs]');
      if (attempt >= 10) throw new Error('the page\'s event feed shows no event of 10 runs started');
    }
  };

  const runRow = (page: Page, runId: string) => page.locator(`[data-testid=run-row][data-run-id="${runId}"]`);

  it('shows a run live, reconnects after a gateway restart and catches up with nothing missing, retries a failed step', async () => {
    const workflowId = await definePipelineWorkflow(api, 'monitor e2e pipeline');
    const { page, problems } = await openSignedIn('operator');
    // Anything the page does from here on happens without a reload.
    await page.evaluate(() => ((window as unknown as { __sameDocument: boolean }).__sameDocument = true));
    // The badge's states, recorded in the page as they change.
    await page.evaluate(() => {
      const w = window as unknown as { __badge: string[] };
      w.__badge = [];
      const badge = document.querySelector('[data-testid=connection-state]')!;
      new MutationObserver(() => w.__badge.push(badge.getAttribute('data-state')!)).observe(badge, { attributes: true, attributeFilter: ['data-state'] });
    });

    // 1. A run started through the API appears, its steps change state live.
    await waitForFeedSubscribed(page);
    const { runId, correlationId } = await startRun(workflowId, { text: TEXT, title: TITLE });
    const row = runRow(page, runId);
    await row.waitFor({ timeout: 30_000 });
    await row.locator('[data-step=ingest][data-status=COMPLETED]').waitFor({ timeout: 60_000 });
    await row.locator('[data-step=extract][data-status=COMPLETED]').waitFor({ timeout: 60_000 });
    await row.locator('[data-step=approve][data-status=RUNNING]').waitFor({ timeout: 60_000 });
    expect(await row.getAttribute('data-status')).toBe('RUNNING');
    await screenshot(page, 'monitor-runs');

    // 2. Its events arrive in the feed.
    await page.click('[data-testid=nav-events]');
    await page.locator(`[data-testid=feed-item][data-run-id="${runId}"][data-type=StepStarted]`).first().waitFor({ timeout: 30_000 });
    await expectSameFeed(page, correlationId);
    expect(await page.locator('[data-testid=service-counter][data-source=workflows]').getAttribute('data-count')).not.toBe('0');
    await screenshot(page, 'monitor-events');

    // 3. The run's detail, then the gateway goes away mid-run.
    await page.click('[data-testid=nav-runs]');
    await runRow(page, runId).locator('a').first().click();
    await page.evaluate(() => ((window as unknown as { __badge: string[] }).__badge = []));
    await page.locator('[data-testid=run-detail][data-status=RUNNING] [data-testid=step-row][data-step=approve][data-status=RUNNING]').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid=trace-entry]').first().waitFor({ timeout: 30_000 });
    await page.locator('[data-testid=timeline-chart]').waitFor();
    await screenshot(page, 'monitor-run-detail');
    expect(await gateway!.stop()).toEqual({ code: 0, signal: null });
    await page.locator('[data-testid=connection-state][data-state=reconnecting]').waitFor({ timeout: 30_000 });

    // While the page is away the run goes on: its EXTERNAL step fails (on the workflows subgraph
    // itself, the gateway being down), which fails the run (one attempt, no retry).
    await mustGraphQL(serviceUrl('workflows'), /* GraphQL */ `mutation($runId: ID!) { failStep(runId: $runId, stepName: "approve", error: "rejected while the page was away") { id } }`, { runId });
    const runFailed = async () =>
      (await mustGraphQL<{ run: { status: string } }>(serviceUrl('workflows'), /* GraphQL */ `query($id: ID!) { run(id: $id) { status } }`, { id: runId })).run.status;
    await expect.poll(runFailed, { timeout: 30_000 }).toBe('FAILED');
    // Monitoring observes the failure while the gateway is down.
    await expect
      .poll(async () => {
        const r = await mustGraphQL<{ eventFeed: { edges: { node: { type: string } }[] } }>(
          serviceUrl('monitoring'),
          /* GraphQL */ `query($c: String) { eventFeed(first: 500, filter: { correlationId: $c }) { edges { node { type } } } }`,
          { c: correlationId },
        );
        return r.eventFeed.edges.some((e) => e.node.type === 'RunFailed');
      }, { timeout: 30_000 })
      .toBe(true);
    await screenshot(page, 'monitor-reconnecting');

    await startGateway();
    await page.locator('[data-testid=connection-state][data-state=live]').waitFor({ timeout: 60_000 });
    const badgeStates = await page.evaluate(() => (window as unknown as { __badge: string[] }).__badge);
    expect(badgeStates).toContain('reconnecting');
    expect(badgeStates.indexOf('catching up')).toBeGreaterThan(badgeStates.indexOf('reconnecting'));
    expect(badgeStates.at(-1)).toBe('live');

    // The run caught up: FAILED, its step failed with the error, a Retry button.
    await page.locator('[data-testid=run-detail][data-status=FAILED]').waitFor({ timeout: 30_000 });
    const approveRow = page.locator('[data-testid=step-row][data-step=approve]');
    await approveRow.and(page.locator('[data-status=FAILED]')).waitFor({ timeout: 30_000 });
    await expect(approveRow.textContent()).resolves.toContain('rejected while the page was away');
    await screenshot(page, 'monitor-run-failed');

    // The feed caught up: the run's events exactly as the API has them, once each, in order.
    await page.click('[data-testid=nav-events]');
    expect((await expectSameFeed(page, correlationId)).map((e) => e.type)).toContain('RunFailed');
    // And the runs list, from its snapshot after the reconnect.
    await page.click('[data-testid=nav-runs]');
    await runRow(page, runId).and(page.locator('[data-status=FAILED]')).waitFor({ timeout: 30_000 });

    // 4. Retry from the page: the run is RUNNING again, its step too.
    await page.click(`[data-testid=run-row][data-run-id="${runId}"] a`);
    await page.locator('[data-testid=retry-step][data-step=approve]').click();
    await page.locator('[data-testid=run-detail][data-status=RUNNING]').waitFor({ timeout: 30_000 });
    await page.locator('[data-testid=step-row][data-step=approve][data-status=RUNNING]').waitFor({ timeout: 30_000 });
    await expect(page.locator('[data-testid=action-error]').count()).resolves.toBe(0);
    await screenshot(page, 'monitor-run-retried');
    const runNow = await api.mustQuery<{ run: { status: string; steps: { name: string; status: string; attempt: number }[] } }>(
      /* GraphQL */ `query($id: ID!) { run(id: $id) { status steps { name status attempt } } }`,
      { id: runId },
    );
    expect(runNow.run.status).toBe('RUNNING');
    expect(runNow.run.steps.find((s) => s.name === 'approve')).toMatchObject({ status: 'RUNNING' });
    await api.mustQuery(/* GraphQL */ `mutation($runId: ID!) { completeStep(runId: $runId, stepName: "approve", output: { approvedBy: "monitor e2e" }) { id } }`, { runId });
    await page.locator('[data-testid=run-detail][data-status=COMPLETED]').waitFor({ timeout: 30_000 });
    await page.click('[data-testid=nav-runs]');
    await runRow(page, runId).and(page.locator('[data-status=COMPLETED]')).waitFor({ timeout: 30_000 });
    // The feed, finally: every event of the run once, in order, after the retry too.
    await page.click('[data-testid=nav-events]');
    // Monitoring observes the run's end a moment after workflows (its own NATS consumer): first
    // the API's feed (a failure here is monitoring's lag, not the page's), then the page's.
    await expect.poll(async () => (await feedOf(correlationId)).at(-1)?.type, { timeout: 60_000, message: "monitoring's eventFeed (API) never ended with RunCompleted" }).toBe('RunCompleted');
    await expect
      .poll(async () => (await pageFeedOf(page, correlationId)).at(-1)?.type, { timeout: 30_000 })
      .toBe('RunCompleted')
      .catch(async (error: unknown) => {
        const api = await feedOf(correlationId);
        throw new Error(`the page's feed never showed the RunCompleted the API has\n${await explainMissing(page, api, await pageFeedOf(page, correlationId))}`, { cause: error });
      });
    await expectSameFeed(page, correlationId);

    // 5. The document and an entity's neighbours.
    await page.click('[data-testid=nav-documents]');
    const docRow = page.locator('[data-testid=document-row]').filter({ hasText: TITLE }).first();
    await docRow.waitFor({ timeout: 30_000 });
    await screenshot(page, 'monitor-documents');
    await docRow.locator('a').first().click();
    await page.locator('[data-testid=document-status]').filter({ hasText: 'PROCESSED' }).waitFor({ timeout: 30_000 });
    await page.locator('[data-testid=entity]').first().waitFor({ timeout: 30_000 });
    // The most mentioned entity (first in the list) has neighbours in a 3-chunk text.
    await page.locator('[data-testid=entity]').first().click();
    const graph = page.locator('[data-testid=neighbor-graph]');
    await graph.waitFor({ timeout: 30_000 });
    const center = await graph.getAttribute('data-center');
    const neighbor = page.locator('[data-testid=neighbor-node]').first();
    await neighbor.waitFor({ timeout: 10_000 });
    await screenshot(page, 'monitor-document');
    const neighborId = await neighbor.getAttribute('data-entity-id');
    await neighbor.click();
    await page.locator(`[data-testid=neighbor-graph][data-center="${neighborId}"]`).waitFor({ timeout: 30_000 });
    expect(neighborId).not.toBe(center);
    await screenshot(page, 'monitor-neighbors');

    expect(await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument)).toBe(true);
    expect(problems).toEqual([]);
    await page.context().close();
  }, 300_000);

  it('stays responsive with 1,000 runs and 50 events/s', async () => {
    // A one-step workflow: startRun = RunStarted + StepStarted, completeStep = StepCompleted + RunCompleted.
    const { defineWorkflow } = await api.mustQuery<{ defineWorkflow: { id: string } }>(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { name: 'monitor load', steps: [{ name: 'wait', kind: 'EXTERNAL', timeoutMs: 3_600_000 }] } },
    );
    const runIds: string[] = [];
    const createStarted = Date.now();
    const queue = Array.from({ length: 1000 }, (_, i) => i);
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
          const { startRun } = await api.mustQuery<{ startRun: { id: string } }>(/* GraphQL */ `mutation($w: ID!) { startRun(workflowId: $w, input: {}) { id } }`, { w: defineWorkflow.id });
          runIds.push(startRun.id);
        }
      }),
    );
    console.log(`[monitor] 1000 runs started in ${Date.now() - createStarted} ms`);

    const { page, problems } = await openSignedIn('operator');
    await page.selectOption('[data-testid=filter-workflow]', defineWorkflow.id);
    await expect.poll(() => page.locator('[data-testid=run-row]').count(), { timeout: 60_000 }).toBe(1000);
    await screenshot(page, 'monitor-runs-1000');

    // Chromium's own accounting of the page's main thread (ms of script, style, layout and of all
    // tasks), read before and after each phase: where the page's time goes, per second of load.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Performance.enable');
    const mainThread = async () => {
      const { metrics } = await cdp.send('Performance.getMetrics');
      const at = (name: string) => (metrics.find((m) => m.name === name)?.value ?? 0) * 1000;
      return { script: at('ScriptDuration'), style: at('RecalcStyleDuration'), layout: at('LayoutDuration'), tasks: at('TaskDuration') };
    };
    const perSecond = (before: Awaited<ReturnType<typeof mainThread>>, after: typeof before, seconds: number) =>
      Object.fromEntries(Object.entries(after).map(([k, v]) => [k, Math.round((v - before[k as keyof typeof before]) / seconds)])) as typeof before;

    // In the page: frame gaps, and (on the feed) event-to-paint delays.
    await page.evaluate(() => {
      const w = window as unknown as { __gaps: number[]; __paint: number[]; __measuring: boolean };
      w.__gaps = [];
      w.__paint = [];
      w.__measuring = true;
      let last = performance.now();
      const loop = (now: number) => {
        if (!w.__measuring) return;
        w.__gaps.push(now - last);
        last = now;
        requestAnimationFrame(loop);
      };
      requestAnimationFrame(loop);
      new MutationObserver((mutations) => {
        for (const m of mutations)
          for (const node of m.addedNodes) {
            if (!(node instanceof HTMLElement)) continue;
            // An item, or a new block of the feed holding its first items.
            const items = node.hasAttribute('data-received-at') ? [node] : [...node.querySelectorAll<HTMLElement>('[data-received-at]')];
            for (const item of items) {
              const received = Number(item.getAttribute('data-received-at'));
              if (!Number.isFinite(received)) continue;
              // The frame after the item was added to the DOM has painted it.
              requestAnimationFrame(() => setTimeout(() => w.__paint.push(performance.now() - received), 0));
            }
          }
      }).observe(document.getElementById('app')!, { childList: true, subtree: true });
    });

    /** Completes 25 runs a second (50 events/s) for `ms`. */
    let next = 0;
    const load = async (ms: number) => {
      const until = Date.now() + ms;
      const inFlight = new Set<Promise<unknown>>();
      let sent = 0;
      const t0 = Date.now();
      while (Date.now() < until && next < runIds.length) {
        const runId = runIds[next++]!;
        const p = api.mustQuery(/* GraphQL */ `mutation($r: ID!) { completeStep(runId: $r, stepName: "wait") { id } }`, { r: runId }).finally(() => inFlight.delete(p));
        inFlight.add(p);
        sent++;
        const due = t0 + sent * 40;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, due - Date.now())));
      }
      await Promise.all(inFlight);
      return sent;
    };

    const beforeRuns = await mainThread();
    const completedOnRuns = await load(10_000);
    const runsMainThread = perSecond(beforeRuns, await mainThread(), 10);
    const runsGaps = await page.evaluate(() => {
      const w = window as unknown as { __gaps: number[] };
      const gaps = w.__gaps;
      w.__gaps = [];
      return gaps.slice(1);
    });
    // The rows followed: the last completed run shows COMPLETED.
    await runRow(page, runIds[completedOnRuns - 1]!).and(page.locator('[data-status=COMPLETED]')).waitFor({ timeout: 30_000 });

    await page.click('[data-testid=nav-events]');
    await page.locator('[data-testid=feed-item]').first().waitFor({ timeout: 30_000 });
    await page.evaluate(() => ((window as unknown as { __paint: number[] }).__paint = []));
    await page.evaluate(() => ((window as unknown as { __gaps: number[] }).__gaps = []));
    const beforeFeed = await mainThread();
    const completedOnFeed = await load(10_000);
    const feedMainThread = perSecond(beforeFeed, await mainThread(), 10);
    await page.waitForTimeout(500);
    const { feedGaps, paint } = await page.evaluate(() => {
      const w = window as unknown as { __gaps: number[]; __paint: number[]; __measuring: boolean };
      w.__measuring = false;
      return { feedGaps: w.__gaps.slice(1), paint: w.__paint };
    });
    await screenshot(page, 'monitor-events-load');

    const figures = {
      runsView: { completions: completedOnRuns, eventsPerSecond: (2 * completedOnRuns) / 10, frameGapMs: percentiles(runsGaps), mainThreadMsPerSecond: runsMainThread },
      feedView: {
        completions: completedOnFeed,
        eventsPerSecond: (2 * completedOnFeed) / 10,
        frameGapMs: percentiles(feedGaps),
        eventToPaintMs: percentiles(paint),
        mainThreadMsPerSecond: feedMainThread,
      },
    };
    console.log(`[monitor] responsiveness with 1000 runs: ${JSON.stringify(figures)}`);
    expect(runsGaps.length).toBeGreaterThan(50);
    expect(paint.length).toBeGreaterThan(100);
    expect(figures.runsView.frameGapMs.p95).toBeLessThan(200);
    expect(figures.feedView.frameGapMs.p95).toBeLessThan(200);
    expect(figures.feedView.eventToPaintMs.p95).toBeLessThan(1000);
    expect(problems).toEqual([]);
    await page.context().close();
  }, 300_000);

  it('resumes a feed the gateway ended: monitoring restarted with a new cursor secret refuses the page\'s cursor, the page starts over', async () => {
    const { page, problems } = await openSignedIn('viewer');
    // The feed has received an event: the page holds a cursor signed with monitoring's secret.
    await waitForFeedSubscribed(page);
    const restartedAt = Date.now();

    // Monitoring comes back with another secret (the old one dropped, not rotated): the gateway's
    // upstream re-subscribes with the last cursor, monitoring refuses it, and the gateway ends the
    // page's subscription with INVALID_CURSOR, its socket staying open.
    expect(await services.get('monitoring')!.stop()).toEqual({ code: 0, signal: null });
    services.set(
      'monitoring',
      await startServiceAlone('monitoring', {
        databases: databases.env,
        ports: ports.env,
        natsUrl: NATS_URL,
        natsNamespace: namespace,
        cursorSecret: randomBytes(32).toString('base64'),
        corpusDir: CORPUS_DIR,
      }),
    );
    await expect
      .poll(async () => (await socketLog(page)).some((entry) => entry.kind === 'in' && entry.detail === 'error' && entry.code === 'INVALID_CURSOR'), { timeout: 30_000 })
      .toBe(true);

    // The page subscribed again, without a cursor, on the same socket, and shows what happens now.
    await expect
      .poll(async () => {
        const log = await socketLog(page);
        const feedOps = log.filter((entry) => entry.kind === 'out' && entry.operation?.startsWith('MonitorFeed'));
        return { resubscribed: feedOps.some((op) => op.at >= restartedAt && op.operation === 'MonitorFeed'), closes: log.filter((entry) => entry.kind === 'close').length };
      }, { timeout: 10_000 })
      .toEqual({ resubscribed: true, closes: 0 });
    const { defineWorkflow } = await api.mustQuery<{ defineWorkflow: { id: string } }>(
      /* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`,
      { input: { name: 'monitor resume', steps: [{ name: 'wait', kind: 'EXTERNAL', timeoutMs: 3_600_000 }] } },
    );
    await page.click('[data-testid=nav-events]');
    // The new subscription starts at monitoring's head once its upstream is set up: a run or two may pass first.
    await expect
      .poll(
        async () => {
          const { runId } = await startRun(defineWorkflow.id, {});
          return page
            .locator(`[data-testid=feed-item][data-run-id="${runId}"]`)
            .first()
            .waitFor({ state: 'attached', timeout: 3_000 })
            .then(() => true, () => false);
        },
        { timeout: 30_000, interval: 50 },
      )
      .toBe(true);
    expect(await page.locator('[data-testid=connection-state]').getAttribute('data-state')).toBe('live');
    await screenshot(page, 'monitor-feed-resumed');
    expect(problems).toEqual([]);
    await page.context().close();
  }, 180_000);
});
