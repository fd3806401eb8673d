/**
 * The offline explorer (issue 8): GraphiQL at `/graphiql/` on the real `npm start` (all
 * subgraphs and the gateway, fresh databases and ports), in headless Chromium. Signed in with an
 * operator token pasted in the sign-in bar, a query typed into the Monaco editor shows the
 * workflow the test defined through the API, and a `runUpdated` subscription shows the run's
 * events as the test drives the run through the API; signed out, a query shows the gateway's
 * UNAUTHENTICATED answer and the bar invites signing in. Nothing is requested outside the
 * gateway's origin, nothing breaks the page's Content-Security-Policy, no page error.
 * Screenshots in test-artifacts/screenshots/graphiql-*.png.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireCorpus } from '../config/corpus.ts';
import { testToken } from './support/auth.ts';
import { launchBrowser, screenshot, watchPage } from './support/browser.ts';
import { createGatewayClient, type GatewayClient } from './support/client.ts';
import { freeServicePorts, freshServiceDatabases, spawnStart, waitForHealth, type FlowgraphProcess } from './support/process.ts';

const CORPUS_DIR = requireCorpus();

/** Monaco renders spaces as U+00A0 and each line as its own element. */
const normalise = (text: string) => text.replace(/\u00a0/g, ' ').replace(/\s+/g, ' ').trim();

describe('GraphiQL at /graphiql/ on the gateway', () => {
  let databases: { env: Record<string, string>; drop(): Promise<void> } | undefined;
  let dataDir: string | undefined;
  let proc: FlowgraphProcess | undefined;
  let browser: Browser | undefined;
  let base: string;
  let api: GatewayClient;
  const contexts: BrowserContext[] = [];

  beforeAll(async () => {
    databases = await freshServiceDatabases('e2e_graphiql');
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-graphiql-'));
    const ports = await freeServicePorts();
    base = ports.gatewayBase;
    proc = spawnStart({ dataDir, databaseEnv: databases.env, portsEnv: ports.env, corpusDir: CORPUS_DIR });
    await waitForHealth(base, proc, 150_000);
    api = createGatewayClient(`${base}/graphql`);
    browser = await launchBrowser();
  }, 180_000);

  afterAll(async () => {
    for (const context of contexts) await context.close().catch(() => undefined);
    await browser?.close();
    await proc?.stop();
    await databases?.drop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  /**
   * A fresh browser context (empty sessionStorage and localStorage) on `pagePath` (without the
   * slash the gateway redirects to `/graphiql/`), with GraphiQL's editors up. `problems` collects page errors,
   * requests outside the origin and Content-Security-Policy violations.
   */
  async function openExplorer(pagePath: '/graphiql' | '/graphiql/'): Promise<{ page: Page; problems: string[] }> {
    const context = await browser!.newContext({ viewport: { width: 1400, height: 900 } });
    contexts.push(context);
    const page = await context.newPage();
    const { problems } = watchPage(page, base);
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content Security Policy|Refused to/i.test(message.text())) problems.push(`CSP: ${message.text()}`);
    });
    const response = await page.goto(`${base}${pagePath}`);
    expect(page.url()).toBe(`${base}/graphiql/`);
    // Violations of it are reported to the console, and fail the test through `problems`.
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.locator('.graphiql-query-editor .monaco-editor').waitFor({ timeout: 30_000 });
    await page.locator('.graphiql-response .monaco-editor').waitFor({ timeout: 30_000 });
    return { page, problems };
  }

  /** Replaces the query editor's text as a user does (focus, select all, delete, type), and checks what it holds. */
  async function typeQuery(page: Page, query: string): Promise<void> {
    await page.locator('.graphiql-query-editor .view-lines').click();
    await page.keyboard.press('Control+A');
    await page.keyboard.press('Delete');
    // One input event for the whole text (as a paste): Monaco's bracket auto-closing and the
    // completion popup act on keystrokes one by one and would change what is typed.
    await page.keyboard.insertText(query);
    await expect.poll(async () => normalise(await page.locator('.graphiql-query-editor .view-lines').innerText())).toBe(normalise(query));
  }

  /** Runs the editor's operation with Ctrl-Enter (GraphiQL's run key). */
  async function runQuery(page: Page): Promise<void> {
    await page.keyboard.press('Escape'); // a completion popup, if any
    await page.keyboard.press('Control+Enter');
  }

  const responseText = async (page: Page) => normalise(await page.locator('.graphiql-response .view-lines').innerText());

  it('signed in as an operator: a typed query shows the workflow the test defined; a runUpdated subscription shows the run moving as the test drives it', async () => {
    const workflowId = `graphiql-${Date.now()}`;
    await api.mustQuery(/* GraphQL */ `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`, {
      input: { id: workflowId, name: 'Explored in GraphiQL', steps: [{ name: 'first', kind: 'EXTERNAL', timeoutMs: 600_000 }, { name: 'second', kind: 'EXTERNAL', timeoutMs: 600_000 }] },
    });

    const { page, problems } = await openExplorer('/graphiql');
    // Signed out: the default query, and the bar inviting to sign in (the schema's introspection got 401).
    await expect.poll(() => page.locator('.signin-notice').innerText(), { timeout: 20_000 }).toContain('Not signed in');
    await expect.poll(async () => normalise(await page.locator('.graphiql-query-editor .view-lines').innerText())).toContain('workflows { id name }');
    expect(await page.locator('.signin-hint').innerText()).toContain('npm run token -- --role operator');

    const token = await testToken({ subject: 'ada', role: 'operator' });
    await page.getByLabel('Token').fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('signed-in').innerText()).toBe('signed in as ada (operator)');
    expect(await page.locator('.signin-notice').count()).toBe(0);
    // The token is in sessionStorage only: not in the URL, localStorage or the headers editor.
    expect(page.url()).toBe(`${base}/graphiql/`);
    const storage = await page.evaluate(() => ({ session: Object.keys(sessionStorage), local: JSON.stringify({ ...localStorage }) }));
    expect(storage.session).toContain('flowgraph.token');
    expect(storage.local).not.toContain('eyJ');

    await typeQuery(page, `{ workflow(id: "${workflowId}") { id name steps { name kind } } }`);
    await runQuery(page);
    await expect.poll(() => responseText(page), { timeout: 20_000 }).toContain('"name": "Explored in GraphiQL"');
    expect(await responseText(page)).toContain(`"id": "${workflowId}"`);
    expect(await responseText(page)).toContain('"name": "second"');
    await screenshot(page, 'graphiql-query');

    // A subscription over the gateway's websocket: the run's history, then its events live.
    const frames: string[] = [];
    const sent: string[] = [];
    const sockets: string[] = [];
    page.on('websocket', (socket) => {
      sockets.push(socket.url());
      socket.on('framereceived', (frame) => frames.push(String(frame.payload)));
      socket.on('framesent', (frame) => sent.push(String(frame.payload)));
    });
    const { startRun } = await api.mustQuery<{ startRun: { id: string } }>(`mutation { startRun(workflowId: "${workflowId}") { id } }`);
    await typeQuery(page, `subscription { runUpdated(runId: "${startRun.id}") { eventType stepName run { status } } }`);
    await runQuery(page);
    await expect.poll(() => responseText(page), { timeout: 20_000 }).toContain('"stepName": "first"');
    expect(await responseText(page)).toContain('"eventType": "StepStarted"');

    await api.mustQuery(`mutation { completeStep(runId: "${startRun.id}", stepName: "first", output: { ok: 1 }) { id } }`);
    await expect.poll(() => responseText(page), { timeout: 20_000 }).toContain('"stepName": "second"');
    expect(await responseText(page)).toContain('"eventType": "StepStarted"');

    await api.mustQuery(`mutation { completeStep(runId: "${startRun.id}", stepName: "second", output: { ok: 2 }) { id } }`);
    await expect.poll(() => responseText(page), { timeout: 20_000 }).toContain('"eventType": "RunCompleted"');
    expect(await responseText(page)).toContain('"status": "COMPLETED"');
    await screenshot(page, 'graphiql-subscription');

    // Every event of the run reached the page over the socket, in order.
    const types = frames
      .map((frame) => JSON.parse(frame) as { type: string; payload?: { data?: { runUpdated?: { eventType: string } } } })
      .filter((message) => message.type === 'next')
      .map((message) => message.payload?.data?.runUpdated?.eventType);
    expect(types).toEqual(['RunStarted', 'StepStarted', 'StepCompleted', 'StepStarted', 'StepCompleted', 'RunCompleted']);
    // One socket, to the gateway's /graphql, the token in connection_init (never in the URL).
    expect(sockets).toEqual([`${base.replace(/^http/, 'ws')}/graphql`]);
    expect(JSON.parse(sent[0]!)).toEqual({ type: 'connection_init', payload: { authorization: `Bearer ${token}` } });
    expect(problems).toEqual([]);
  }, 120_000);

  it('signed out: a query shows the gateway\'s UNAUTHENTICATED answer and the bar invites signing in; a subscription too', async () => {
    const { page, problems } = await openExplorer('/graphiql/');
    await typeQuery(page, '{ workflows { id name } }');
    const answer = page.waitForResponse((response) => response.url() === `${base}/graphql` && (response.request().postData() ?? '').includes('workflows'));
    await runQuery(page);
    expect((await answer).status()).toBe(401);
    expect((await answer).request().headers().authorization).toBeUndefined();
    await expect.poll(() => responseText(page), { timeout: 20_000 }).toContain('"message": "Not authenticated: a bearer token is required');
    expect(await responseText(page)).toContain('"code": "UNAUTHENTICATED"');
    expect(await page.locator('.signin-notice').innerText()).toBe('Not signed in: the gateway answered 401. Sign in above with a token.');
    await screenshot(page, 'graphiql-signed-out');

    await typeQuery(page, 'subscription { eventFeed { cursor } }');
    await runQuery(page);
    await expect.poll(() => responseText(page), { timeout: 20_000 }).toContain('closed the subscription socket (4403');
    expect(await page.locator('.signin-notice').innerText()).toContain('The gateway closed the subscription socket (4403');

    // Signing in then works without a reload.
    await page.getByLabel('Token').fill(await testToken({ subject: 'grace', role: 'viewer' }));
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.getByTestId('signed-in').innerText()).toBe('signed in as grace (viewer)');
    expect(await page.locator('.signin-notice').count()).toBe(0);
    await typeQuery(page, '{ workflows { id } }');
    await runQuery(page);
    await expect.poll(() => responseText(page), { timeout: 20_000 }).toContain('"workflows": [');
    expect(await responseText(page)).not.toContain('UNAUTHENTICATED');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Token').waitFor();
    expect(await page.evaluate(() => sessionStorage.getItem('flowgraph.token'))).toBeNull();
    expect(problems).toEqual([]);
  }, 120_000);
});
