/**
 * Text arguments of the workflows API (issue 11): `failStep`'s error and `cancelRun`'s reason are
 * cut to 2000 code points, never inside a surrogate pair (an emoji straddling the limit is kept
 * whole or dropped whole, so the cut text is stored, not refused); text that is not valid Unicode
 * (an unpaired surrogate) is BAD_USER_INPUT naming the argument, whether the subgraph checks it or
 * the event store's validation refuses it (`reason` INVALID_EVENT_DATA), and nothing is stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateServiceDatabase } from '../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../db/testing.ts';
import { countStoredEvents } from '../../eventstore/testing/fixture.ts';
import { mustGraphQL, postGraphQL, testLogger } from '../../federation/testing/graphqlClient.ts';
import { recordSubscription, subgraphSubscriptionCredentials } from '../../test/support/recordedSubscription.ts';
import { MAX_REASON_LENGTH } from './commandHandlers.ts';
import { MAX_ERROR_MESSAGE_LENGTH } from './run/decide.ts';
import { startWorkflowsService, type WorkflowsService } from './service.ts';

let db: TestDatabase;
let service: WorkflowsService;
let workflowId: string;
const gql = <T = any>(query: string, variables?: Record<string, unknown>) => mustGraphQL<T>(service.url, query, variables);
const EMOJI = '😀'; // U+1F600: two UTF-16 code units

beforeAll(async () => {
  db = await createTestDatabase('workflows_text');
  await migrateServiceDatabase(db.pool, { service: 'workflows' });
  service = await startWorkflowsService({ pool: db.pool, port: 0, logger: testLogger });
  workflowId = (
    await gql(`mutation { defineWorkflow(input: { name: "manual", steps: [{ name: "review", kind: EXTERNAL, timeoutMs: 600000 }] }) { id } }`)
  ).defineWorkflow.id;
});

afterAll(async () => {
  await service?.close();
  await db?.drop();
});

const startRun = async (): Promise<string> => (await gql(`mutation($w: ID!) { startRun(workflowId: $w) { id } }`, { w: workflowId })).startRun.id;
const fail = (runId: string, error: string) =>
  postGraphQL(service.url, `mutation($r: ID!, $e: String!) { failStep(runId: $r, stepName: "review", error: $e) { steps { error } } }`, { r: runId, e: error });
const cancel = (runId: string, reason: string) =>
  postGraphQL(service.url, `mutation($r: ID!, $reason: String) { cancelRun(runId: $r, reason: $reason) { status cancelReason } }`, { r: runId, reason });

describe('failStep and cancelRun cut their text on code points', () => {
  it('failStep: an emoji straddling the 2000th UTF-16 unit is kept whole (2000 code points), not split into a refused lone surrogate', async () => {
    expect(MAX_ERROR_MESSAGE_LENGTH).toBe(2000);
    const runId = await startRun();
    const kept = 'x'.repeat(1999) + EMOJI;
    const result = await fail(runId, `${kept}tail`);
    expect(result.errors).toBeUndefined();
    expect(result.data.failStep.steps[0].error.message).toBe(kept);
  });

  it('failStep: 2001 emoji are cut to 2000 whole emoji, a longer ASCII text to 2000 characters', async () => {
    const runId = await startRun();
    const emoji = await fail(runId, EMOJI.repeat(2001));
    expect(emoji.errors).toBeUndefined();
    expect(emoji.data.failStep.steps[0].error.message).toBe(EMOJI.repeat(2000));
    const ascii = await fail(await startRun(), `${'a'.repeat(2000)}${EMOJI}`);
    expect(ascii.data.failStep.steps[0].error.message).toBe('a'.repeat(2000));
  });

  it('cancelRun: a reason with an emoji straddling the limit is cut before the second emoji, stored and returned', async () => {
    expect(MAX_REASON_LENGTH).toBe(2000);
    const runId = await startRun();
    const result = await cancel(runId, 'r'.repeat(1999) + EMOJI + EMOJI);
    expect(result.errors).toBeUndefined();
    expect(result.data.cancelRun).toEqual({ status: 'CANCELLED', cancelReason: 'r'.repeat(1999) + EMOJI });
  });
});

describe('text that is not valid Unicode is BAD_USER_INPUT and stores nothing', () => {
  it.each([
    ['failStep error', (runId: string) => fail(runId, 'disk \uD83D full'), { field: 'error' }, 'failStep'],
    ['cancelRun reason', (runId: string) => cancel(runId, 'wrong \uDE00 document'), { field: 'reason' }, 'cancelRun'],
    [
      'startRun input (refused by the event store)',
      () => postGraphQL(service.url, `mutation($w: ID!, $i: JSON) { startRun(workflowId: $w, input: $i) { id } }`, { w: workflowId, i: { note: 'a\uD800' } }),
      { reason: 'INVALID_EVENT_DATA' },
      'startRun',
    ],
    [
      'startRun idempotencyKey (refused by the event store)',
      () => postGraphQL(service.url, `mutation($w: ID!, $k: String) { startRun(workflowId: $w, idempotencyKey: $k) { id } }`, { w: workflowId, k: 'key-\uDBFF' }),
      { reason: 'INVALID_EVENT_DATA' },
      'startRun',
    ],
    [
      'defineWorkflow name (refused by the event store)',
      // A variable: graphql-js already refuses a lone surrogate escape in a string literal (GRAPHQL_PARSE_FAILED).
      () =>
        postGraphQL(service.url, `mutation($n: String!) { defineWorkflow(input: { name: $n, steps: [{ name: "s", kind: EXTERNAL, timeoutMs: 1000 }] }) { id } }`, { n: 'bad \uD800 name' }),
      { reason: 'INVALID_EVENT_DATA' },
      'defineWorkflow',
    ],
  ] as const)('%s with an unpaired surrogate', async (_label, send, extensions, fieldName) => {
    const runId = await startRun();
    const before = await countStoredEvents(db.pool);
    const result = await send(runId);
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', ...extensions });
    expect(result.errors?.[0]?.path).toEqual([fieldName]);
    expect(result.data).toEqual({ [fieldName]: null });
    expect(await countStoredEvents(db.pool)).toBe(before);
  });

  it('runUpdated with a run id holding an unpaired surrogate ends at once with BAD_USER_INPUT (reason INVALID_ID), not a subscription of the U+FFFD stream', async () => {
    // Straight to the subgraph, as the gateway connects: its identity in connection_init, the caller's in the subscribe.
    const subscription = recordSubscription(
      service.url.replace(/^http/, 'ws'),
      `subscription($r: ID!) { runUpdated(runId: $r) { eventType } }`,
      { r: 'run\uD800' },
      await subgraphSubscriptionCredentials(),
    );
    try {
      const end = await subscription.ended(10_000);
      expect(end).toMatchObject({ kind: 'error', errors: [{ extensions: { code: 'BAD_USER_INPUT', reason: 'INVALID_ID', field: 'runId' } }] });
      expect(subscription.results).toEqual([]);
    } finally {
      await subscription.dispose();
    }
  });

  it('runHistory of a run id with an unpaired surrogate is NOT_FOUND, not the history of the U+FFFD id', async () => {
    const result = await postGraphQL(service.url, `query($r: ID!) { runHistory(runId: $r) { type } }`, { r: 'run\uD800' });
    expect(result.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
