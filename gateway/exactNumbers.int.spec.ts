/**
 * Exact JSON numbers through the API (eventstore/jsonNumbers.ts has the rule): the real
 * workflows subgraph on a fresh database behind the real gateway. A number no double holds
 * exactly is refused with BAD_USER_INPUT naming it, as a literal or a variable, over HTTP
 * through the gateway and straight to the subgraph, and over graphql-ws; nothing is stored.
 * Exact numbers come back unchanged from startRun, the run query and the event store.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { REPO_ROOT } from '../config/gatewayConfig.ts';
import { migrateServiceDatabase } from '../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { createEventStore, type EventStore } from '../eventstore/index.ts';
import { countStoredEvents } from '../eventstore/testing/fixture.ts';
import { identityHeaders, signTestIdentity, testLogger } from '../federation/testing/graphqlClient.ts';
import { testToken } from '../test/support/auth.ts';
import { startWorkflowsService, type WorkflowsService } from '../subgraphs/workflows/service.ts';
import { startGateway, type RunningGateway } from './server.ts';

const INEXACT = ['9007199254740993', '9223372036854775807', '0.1000000000000000055'] as const;

let db: TestDatabase;
let workflows: WorkflowsService;
let gateway: RunningGateway;
let workflowId: string;
/** The workflows service's event store, read as another process would. */
let store: EventStore;

/**
 * The credentials of a request to `url`: a client token (operator) for the gateway, a signed
 * gateway identity (operator) for the subgraph, as HTTP headers.
 */
async function credentials(url: string): Promise<Record<string, string>> {
  return url === workflows.url ? identityHeaders() : { authorization: `Bearer ${await testToken()}` };
}

/** POSTs `body` as written (so that its numbers reach the server unrounded), with the credentials of `url`. */
async function postRaw(url: string, body: string): Promise<{ status: number; json: any }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(await credentials(url)) }, body });
  return { status: response.status, json: await response.json() };
}

const startRunWithVariable = (input: string) =>
  `{"query":"mutation($i: JSON) { startRun(workflowId: \\"${workflowId}\\", input: $i) { id input } }","variables":{"i":${input}}}`;
const startRunWithLiteral = (literal: string) => JSON.stringify({ query: `mutation { startRun(workflowId: "${workflowId}", input: ${literal}) { id input } }` });

/**
 * Sends `subscribe` (raw text) over graphql-ws to `url` after a `connection_init` with
 * `connectionParams`; resolves with the first message about operation "1".
 */
async function wsOperation(url: string, connectionParams: Record<string, string>, subscribe: string): Promise<any> {
  const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  try {
    return await new Promise((resolve, reject) => {
      socket.on('error', reject);
      socket.on('close', (code, reason) => reject(new Error(`closed ${code} ${reason.toString()}`)));
      socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: connectionParams })));
      socket.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { type: string; id?: string };
        if (message.type === 'connection_ack') socket.send(subscribe);
        else if (message.id === '1') resolve(message);
      });
    });
  } finally {
    socket.removeAllListeners('close');
    socket.close();
  }
}

beforeAll(async () => {
  db = await createTestDatabase('exact_numbers_api');
  await migrateServiceDatabase(db.pool, { service: 'workflows' });
  workflows = await startWorkflowsService({ pool: db.pool, port: 0, logger: testLogger });
  store = createEventStore({ pool: db.pool });
  const supergraphSdl = readFileSync(path.join(REPO_ROOT, 'supergraph.graphql'), 'utf8');
  gateway = await startGateway({ supergraphSdl, subgraphUrlOverrides: { workflows: workflows.url }, port: 0, logger: pino({ level: 'silent' }) });
  const defined = await postRaw(
    gateway.url,
    JSON.stringify({ query: 'mutation { defineWorkflow(input: { name: "numbers", steps: [{ name: "review", kind: EXTERNAL, timeoutMs: 60000 }] }) { id } }' }),
  );
  workflowId = defined.json.data.defineWorkflow.id;
});

afterAll(async () => {
  await gateway?.close();
  await store?.close();
  await workflows?.close();
  await db?.drop();
});

describe('numbers a double cannot hold are refused, never rounded', () => {
  it('as a variable through the gateway: HTTP 400 BAD_USER_INPUT naming the value and its path, nothing stored', async () => {
    const before = await countStoredEvents(db.pool);
    for (const text of INEXACT) {
      const { status, json } = await postRaw(gateway.url, startRunWithVariable(`{"a":[1,{"big":${text}}]}`));
      expect(status, JSON.stringify(json)).toBe(400);
      expect(json.data).toBeUndefined();
      expect(json.errors).toHaveLength(1);
      expect(json.errors[0].extensions).toEqual({ code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: text, jsonPath: 'variables.i.a[1].big' });
      expect(json.errors[0].message).toContain(text);
    }
    expect(await countStoredEvents(db.pool)).toBe(before);
  });

  it('in the variables of a GET request, at the gateway and at the subgraph: HTTP 400 BAD_USER_INPUT', async () => {
    for (const url of [gateway.url, workflows.url]) {
      const search = new URLSearchParams({ query: 'query($id: ID!, $x: JSON) { run(id: $id) { id } }', variables: '{"id":"r","x":{"big":9007199254740993}}' });
      const response = await fetch(`${url}?${search}`, { headers: { 'apollo-require-preflight': 'true', ...(await credentials(url)) } });
      expect(response.status).toBe(400);
      expect(((await response.json()) as any).errors[0].extensions).toEqual({ code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: '9007199254740993', jsonPath: 'variables.x.big' });
    }
  });

  it('as a literal through the gateway (whose query planner would print it rounded): HTTP 400 BAD_USER_INPUT, nothing stored', async () => {
    const before = await countStoredEvents(db.pool);
    for (const text of INEXACT) {
      const { status, json } = await postRaw(gateway.url, startRunWithLiteral(`{ big: ${text} }`));
      expect(status, JSON.stringify(json)).toBe(400);
      expect(json.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: text, jsonPath: 'big' });
    }
    expect(await countStoredEvents(db.pool)).toBe(before);
  });

  it('straight to the subgraph: a variable is HTTP 400 BAD_USER_INPUT, a literal HTTP 400 BAD_USER_INPUT from the JSON scalar, both naming the value and its path; nothing stored', async () => {
    const before = await countStoredEvents(db.pool);
    for (const text of INEXACT) {
      const variable = await postRaw(workflows.url, startRunWithVariable(`{"big":${text}}`));
      expect(variable.status).toBe(400);
      expect(variable.json.errors[0].extensions).toEqual({ code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: text, jsonPath: 'variables.i.big' });
      const literal = await postRaw(workflows.url, startRunWithLiteral(`{ list: [{ big: ${text} }] }`));
      // Refused by the JSON scalar's parseLiteral during validation: the scalar's code, not Apollo's label.
      expect(literal.status).toBe(400);
      expect(literal.json.data ?? undefined).toBeUndefined();
      expect(literal.json.errors[0].extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: text });
      expect(literal.json.errors[0].message).toContain(`The number ${text} at list[0].big cannot be kept exactly`);
    }
    expect(await countStoredEvents(db.pool)).toBe(before);
  });

  it('in a graphql-ws subscribe message, at the gateway and at the subgraph: an error message BAD_USER_INPUT, nothing stored', async () => {
    const before = await countStoredEvents(db.pool);
    const mutation = JSON.stringify(`mutation($i: JSON) { startRun(workflowId: "${workflowId}", input: $i) { id } }`);
    const atGateway = await wsOperation(
      gateway.url,
      { authorization: `Bearer ${await testToken()}` },
      `{"id":"1","type":"subscribe","payload":{"query":${mutation},"variables":{"i":{"big":9007199254740993}}}}`,
    );
    expect(atGateway).toMatchObject({ type: 'error', payload: [{ extensions: { code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: '9007199254740993', jsonPath: 'payload.variables.i.big' } }] });
    const subscription = JSON.stringify('subscription($r: ID!, $x: JSON) { runUpdated(runId: $r) { cursor } }');
    // Straight to the subgraph as the gateway talks to it: its identity in connection_init, the caller's in the subscribe.
    const caller = JSON.stringify({ flowgraph: { identity: await signTestIdentity() } });
    const atSubgraph = await wsOperation(
      workflows.url,
      { identity: await signTestIdentity({ subject: 'gateway', role: 'admin' }) },
      `{"id":"1","type":"subscribe","payload":{"query":${subscription},"variables":{"r":"run-1","x":[0.1000000000000000055]},"extensions":${caller}}}`,
    );
    expect(atSubgraph).toMatchObject({ type: 'error', payload: [{ extensions: { code: 'BAD_USER_INPUT', value: '0.1000000000000000055', jsonPath: 'payload.variables.x[0]' } }] });
    expect(await countStoredEvents(db.pool)).toBe(before);
  });
});

describe('exact numbers round-trip unchanged', () => {
  const EXACT_TEXT = '{"pow53": 9007199254740992, "huge": 1e300, "tenth": 0.1, "decimal": 123.456, "negative": -5, "list": [1.0, 1e2, 100]}';
  const EXACT = { pow53: 9007199254740992, huge: 1e300, tenth: 0.1, decimal: 123.456, negative: -5, list: [1, 100, 100] };

  it('through startRun (variable and literal), the run query and the event store', async () => {
    const literal = EXACT_TEXT.replace(/"(\w+)":/g, '$1:');
    for (const body of [startRunWithVariable(EXACT_TEXT), startRunWithLiteral(literal)]) {
      const started = await postRaw(gateway.url, body);
      expect(started.status, JSON.stringify(started.json)).toBe(200);
      expect(started.json.data.startRun.input).toEqual(EXACT);
      const runId = started.json.data.startRun.id as string;
      const read = await postRaw(gateway.url, JSON.stringify({ query: `{ run(id: "${runId}") { input } }` }));
      expect(read.json.data.run.input).toEqual(EXACT);
      const [event] = await store.readStream(`run-${runId}`, { count: 1 });
      expect(event!.data).toMatchObject({ input: EXACT });
    }
  });
});
