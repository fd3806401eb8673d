/**
 * The workflows side of the saga against a fresh PostgreSQL database and the in-process
 * transport: the service's relay publishes its public events to a test consumer (standing in
 * for content and knowledge), and the test answers with hand-made content and knowledge
 * integration events, as those services would (source, runId/stepName, the run's correlation
 * id, causationId = the StepStarted answered).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../../../broker/in-process.ts';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import { createEventStore, type IntegrationEvent, type IntegrationTransport } from '../../../eventstore/index.ts';
import { runsProjection } from '../projections/runsProjection.ts';
import { workflowsProjection } from '../projections/workflowsProjection.ts';
import { StepStartedV1 } from '../publicEvents.ts';
import { startWorkflowsService, type WorkflowsService } from '../service.ts';
import { eventually, mustGraphQL, postGraphQL, testLogger } from '../../../federation/testing/graphqlClient.ts';
import { SAGA_ACTOR } from './sagaConsumers.ts';

const RUN_FIELDS = `id status currentStep output error steps { name kind status attempt output error }`;

let db: TestDatabase;
let transport: IntegrationTransport;
let service: WorkflowsService;
/** Every integration event workflows published, in publish order. */
const published: IntegrationEvent[] = [];

const gql = <T = any>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>) => mustGraphQL<T>(service.url, query, variables, { headers: headers ?? {} });

beforeAll(async () => {
  db = await createTestDatabase('workflows_saga');
  await migrateServiceDatabase(db.pool, { service: 'workflows' });
  transport = createInProcessTransport();
  await transport.consume({
    consumer: 'test-from-workflows',
    source: 'workflows',
    handler: async (event) => {
      published.push(event);
    },
  });
  service = await startWorkflowsService({
    pool: db.pool,
    port: 0,
    logger: testLogger,
    transport,
    relaySubscription: { pollIntervalMs: 50, retryDelayMs: 50, standbyRetryMs: 100 },
  });
  await gql(`mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`, {
    input: {
      id: 'doc-pipeline',
      name: 'Ingest, extract, review',
      steps: [
        { name: 'ingest', kind: 'INGEST', timeoutMs: 600_000, retryPolicy: { maxAttempts: 2, backoffMs: 0 } },
        { name: 'extract', kind: 'EXTRACT', timeoutMs: 600_000 },
        { name: 'review', kind: 'EXTERNAL', timeoutMs: 600_000 },
      ],
    },
  });
});

afterAll(async () => {
  await service?.close();
  await transport?.close();
  await db?.drop();
});

/** Starts a run of doc-pipeline with the correlation id `correlationId`. */
async function startRun(correlationId: string): Promise<string> {
  const data = await gql(`mutation { startRun(workflowId: "doc-pipeline", input: { text: "Holmes met Watson.", title: "A note" }) { id } }`, {}, {
    'x-correlation-id': correlationId,
  });
  return data.startRun.id;
}

/** Waits for workflows to publish an event of `type` for `runId` matching `where`. */
function published_(type: string, runId: string, where: (data: any) => boolean = () => true): Promise<IntegrationEvent<any>> {
  return eventually(async () => published.find((e) => e.type === type && (e.data as { runId?: string }).runId === runId && where(e.data)));
}
const stepStarted = (runId: string, stepName: string, attempt = 1) => published_('StepStarted', runId, (d) => d.stepName === stepName && d.attempt === attempt);

/** A content or knowledge integration event answering `cause` (a StepStarted), as those services build it. */
function answer(source: 'content' | 'knowledge', type: string, data: Record<string, unknown>, cause: IntegrationEvent): IntegrationEvent {
  return {
    eventId: randomUUID(),
    source,
    type,
    schemaVersion: 1,
    streamId: `document-${String(data.documentId ?? 'none')}`,
    streamPosition: 0,
    data,
    metadata: { correlationId: cause.metadata.correlationId, causationId: cause.eventId, actor: `system:${source}` },
    occurredAt: new Date().toISOString(),
    position: { transactionId: '1', globalPosition: '1' },
  };
}

const run = async (runId: string) => (await gql(`query($r: ID!) { run(id: $r) { ${RUN_FIELDS} } }`, { r: runId })).run;
const history = async (runId: string) =>
  (await gql(`query($r: ID!) { runHistory(runId: $r) { eventId type data metadata } }`, { r: runId })).runHistory as { eventId: string; type: string; data: any; metadata: any }[];
const storedCount = async (runId: string) =>
  Number((await db.pool.query(`SELECT count(*)::int AS n FROM eventstore.events WHERE stream_id = $1`, [`run-${runId}`])).rows[0].n);
const inboxHas = async (event: IntegrationEvent) =>
  (await db.pool.query(`SELECT 1 FROM eventstore.inbox WHERE source = $1 AND event_id = $2`, [event.source, event.eventId])).rowCount === 1;

describe('the saga, workflows side', () => {
  it('runs INGEST → EXTRACT → EXTERNAL: content and knowledge events drive the steps, completeStep ends the run', async () => {
    const correlationId = `saga-${randomUUID()}`;
    const runId = await startRun(correlationId);

    // Workflows asks content to ingest: StepStarted(INGEST) with the run input, no document yet.
    const ingest = await stepStarted(runId, 'ingest');
    expect(StepStartedV1.parse(ingest.data)).toEqual(ingest.data);
    expect(ingest).toMatchObject({ source: 'workflows', schemaVersion: 1, metadata: { correlationId } });
    expect(ingest.data).toMatchObject({ runId, workflowId: 'doc-pipeline', kind: 'INGEST', attempt: 1, runInput: { text: 'Holmes met Watson.', title: 'A note' } });
    expect(ingest.data).not.toHaveProperty('documentId');

    // content answers: the INGEST step completes with the document; EXTRACT starts on it.
    const processed = answer('content', 'DocumentProcessed', { documentId: 'doc-1', chunkCount: 2, runId, stepName: 'ingest' }, ingest);
    await transport.publish([processed]);
    const afterIngest = await run(runId);
    expect(afterIngest).toMatchObject({ status: 'RUNNING', currentStep: 'extract' });
    expect(afterIngest.steps[0]).toMatchObject({ status: 'COMPLETED', output: { documentId: 'doc-1', chunkCount: 2 } });
    const extract = await stepStarted(runId, 'extract');
    expect(extract.data).toMatchObject({ kind: 'EXTRACT', attempt: 1, documentId: 'doc-1', runInput: { title: 'A note' } });
    expect(extract.metadata).toMatchObject({ correlationId, causationId: processed.eventId, actor: SAGA_ACTOR });

    // knowledge answers: EXTRACT completes, the EXTERNAL step starts.
    const extracted = answer('knowledge', 'DocumentEntitiesExtracted', { documentId: 'doc-1', entityCount: 5, relationCount: 3, runId, stepName: 'extract' }, extract);
    await transport.publish([extracted]);
    const review = await stepStarted(runId, 'review');
    expect(review.data).toMatchObject({ kind: 'EXTERNAL', attempt: 1 });
    expect((await run(runId)).steps[1]).toMatchObject({ status: 'COMPLETED', output: { entityCount: 5, relationCount: 3 } });

    // A person completes the EXTERNAL step through the API (a request with its own correlation id).
    const done = await gql(`mutation($r: ID!) { completeStep(runId: $r, stepName: "review", output: { approved: true }) { ${RUN_FIELDS} } }`, { r: runId }, {
      'x-correlation-id': 'some-other-request',
    });
    expect(done.completeStep).toMatchObject({ status: 'COMPLETED', output: { approved: true }, currentStep: null });
    const completed = await published_('RunCompleted', runId);
    expect(completed.data).toMatchObject({ runId, output: { approved: true } });

    // The run's stream: every event carries the run's correlation id and its cause's id.
    const events = await history(runId);
    expect(events.map((e) => e.type)).toEqual([
      'RunStarted', 'StepStarted',
      'StepCompleted', 'StepStarted',
      'StepCompleted', 'StepStarted',
      'StepCompleted', 'RunCompleted',
    ]);
    for (const event of events) {
      expect(event.metadata.correlationId).toBe(correlationId);
      expect(typeof event.metadata.causationId).toBe('string');
    }
    expect(events[2]!.data).toMatchObject({ stepName: 'ingest', source: 'content', output: { documentId: 'doc-1', chunkCount: 2 } });
    expect(events[2]!.metadata).toMatchObject({ causationId: processed.eventId, actor: SAGA_ACTOR });
    expect(events[4]!.data).toMatchObject({ stepName: 'extract', source: 'knowledge' });
    expect(events[4]!.metadata).toMatchObject({ causationId: extracted.eventId, actor: SAGA_ACTOR });
    expect(events[6]!.data).toMatchObject({ stepName: 'review', source: 'api' });
    expect(events[6]!.metadata).toMatchObject({ actor: 'operator', originCorrelationId: 'some-other-request' });

    // What workflows published for this run: its public events only, in order, with the run's correlation id.
    const mine = published.filter((e) => (e.data as { runId?: string }).runId === runId);
    expect(mine.map((e) => e.type)).toEqual(['RunStarted', 'StepStarted', 'StepCompleted', 'StepStarted', 'StepCompleted', 'StepStarted', 'StepCompleted', 'RunCompleted']);
    expect(mine.every((e) => e.metadata.correlationId === correlationId)).toBe(true);
    expect(mine.map((e) => e.eventId)).toEqual(events.map((e) => e.eventId));
    expect(await inboxHas(processed)).toBe(true);
    expect(await inboxHas(extracted)).toBe(true);
  });

  it('a redelivered DocumentProcessed has no second effect; a late one for a completed step appends nothing', async () => {
    const runId = await startRun(`saga-${randomUUID()}`);
    const ingest = await stepStarted(runId, 'ingest');
    const processed = answer('content', 'DocumentProcessed', { documentId: 'doc-2', chunkCount: 1, runId, stepName: 'ingest' }, ingest);
    await transport.publish([processed]);
    const count = await storedCount(runId);
    expect(count).toBe(4); // RunStarted, StepStarted, StepCompleted, StepStarted

    await transport.publish([processed]); // same event id: the inbox absorbs it
    await transport.publish([{ ...processed, eventId: randomUUID() }]); // another report of the same (finished) attempt
    expect(await storedCount(runId)).toBe(count);
    expect((await run(runId)).steps.map((s: any) => [s.name, s.status, s.attempt])).toEqual([
      ['ingest', 'COMPLETED', 1],
      ['extract', 'RUNNING', 1],
      ['review', 'PENDING', 0],
    ]);
    const inbox = await db.pool.query(`SELECT count(*)::int AS n FROM eventstore.inbox WHERE event_id = $1`, [processed.eventId]);
    expect(inbox.rows[0].n).toBe(1);
  });

  it('DocumentFailed: the INGEST step is retried per its policy (content asked again), a stale report is ignored, then the run fails', async () => {
    const correlationId = `saga-${randomUUID()}`;
    const runId = await startRun(correlationId);
    const first = await stepStarted(runId, 'ingest', 1);
    await transport.publish([answer('content', 'DocumentFailed', { runId, stepName: 'ingest', reason: 'The text is empty', code: 'EMPTY_INPUT' }, first)]);

    // maxAttempts 2, backoffMs 0: attempt 2 starts at once, published for content to ingest again.
    const second = await stepStarted(runId, 'ingest', 2);
    expect(second.data).toMatchObject({ kind: 'INGEST', runInput: { text: 'Holmes met Watson.' } });
    expect((await run(runId)).steps[0]).toMatchObject({ status: 'RUNNING', attempt: 2 });

    // A late success of attempt 1 (its cause is attempt 1's StepStarted): stale, nothing appended.
    const before = await storedCount(runId);
    const stale = answer('content', 'DocumentProcessed', { documentId: 'doc-old', chunkCount: 1, runId, stepName: 'ingest' }, first);
    await transport.publish([stale]);
    expect(await storedCount(runId)).toBe(before);
    expect(await inboxHas(stale)).toBe(true);

    await transport.publish([answer('content', 'DocumentFailed', { runId, stepName: 'ingest', reason: 'Still empty', code: 'EMPTY_INPUT' }, second)]);
    const failed = await published_('RunFailed', runId);
    expect(failed.data).toMatchObject({ runId, stepName: 'ingest', error: { message: 'Still empty [EMPTY_INPUT]' } });
    expect(await run(runId)).toMatchObject({ status: 'FAILED', error: { stepName: 'ingest', message: 'Still empty [EMPTY_INPUT]' } });
    const events = await history(runId);
    expect(events.map((e) => e.type)).toEqual(['RunStarted', 'StepStarted', 'StepFailed', 'StepRetried', 'StepStarted', 'StepFailed', 'RunFailed']);
    expect(events[2]!.data).toMatchObject({ source: 'content', error: { message: 'The text is empty [EMPTY_INPUT]' } });
    expect(events.every((e) => e.metadata.correlationId === correlationId && typeof e.metadata.causationId === 'string')).toBe(true);
    // StepFailed is public; StepRetried is not.
    const types = published.filter((e) => (e.data as { runId?: string }).runId === runId).map((e) => e.type);
    expect(types).toEqual(['RunStarted', 'StepStarted', 'StepFailed', 'StepStarted', 'StepFailed', 'RunFailed']);
  });

  it('ExtractionFailed fails the EXTRACT step (maxAttempts 1: the run fails)', async () => {
    const runId = await startRun(`saga-${randomUUID()}`);
    const ingest = await stepStarted(runId, 'ingest');
    await transport.publish([answer('content', 'DocumentProcessed', { documentId: 'doc-3', chunkCount: 1, runId, stepName: 'ingest' }, ingest)]);
    const extract = await stepStarted(runId, 'extract');
    await transport.publish([answer('knowledge', 'ExtractionFailed', { documentId: 'doc-3', runId, stepName: 'extract', reason: 'no chunks' }, extract)]);
    expect(await run(runId)).toMatchObject({ status: 'FAILED', error: { stepName: 'extract', message: 'no chunks' } });
  });

  it('cancelling a run publishes RunCancelled; a late DocumentProcessed is then ignored (inbox recorded, nothing appended)', async () => {
    const runId = await startRun(`saga-${randomUUID()}`);
    const ingest = await stepStarted(runId, 'ingest');
    await gql(`mutation($r: ID!) { cancelRun(runId: $r, reason: "wrong file") { status } }`, { r: runId });
    const cancelled = await published_('RunCancelled', runId);
    expect(cancelled.data).toMatchObject({ runId, reason: 'wrong file' });

    const count = await storedCount(runId);
    const late = answer('content', 'DocumentProcessed', { documentId: 'doc-4', chunkCount: 1, runId, stepName: 'ingest' }, ingest);
    await transport.publish([late]);
    expect(await storedCount(runId)).toBe(count);
    expect(await inboxHas(late)).toBe(true);
    expect((await run(runId)).steps[0]).toMatchObject({ status: 'CANCELLED', output: null });
  });

  it('completeStep or failStep on an INGEST step through the API: ILLEGAL_TRANSITION, nothing appended', async () => {
    const runId = await startRun(`saga-${randomUUID()}`);
    await stepStarted(runId, 'ingest');
    const count = await storedCount(runId);
    const completed = await postGraphQL(service.url, `mutation($r: ID!) { completeStep(runId: $r, stepName: "ingest", output: { documentId: "x" }) { id } }`, { r: runId });
    expect(completed.data).toEqual({ completeStep: null });
    expect(completed.errors?.[0]?.extensions).toMatchObject({ code: 'ILLEGAL_TRANSITION', stepKind: 'INGEST', allowedSources: ['content'] });
    expect(completed.errors?.[0]?.message).toContain('not through the API');
    const failed = await postGraphQL(service.url, `mutation($r: ID!) { failStep(runId: $r, stepName: "ingest", error: "give up") { id } }`, { r: runId });
    expect(failed.errors?.[0]?.extensions?.code).toBe('ILLEGAL_TRANSITION');
    expect(await storedCount(runId)).toBe(count);
    expect((await run(runId)).steps[0]).toMatchObject({ status: 'RUNNING', attempt: 1 });
  });

  it('ignores reports that are not about a waiting step: no run reference, unknown run, wrong step kind', async () => {
    const runId = await startRun(`saga-${randomUUID()}`);
    const ingest = await stepStarted(runId, 'ingest');
    const count = await storedCount(runId);
    const reports = [
      answer('content', 'DocumentProcessed', { documentId: 'doc-api', chunkCount: 1 }, ingest), // ingested through content's own API
      answer('content', 'DocumentProcessed', { documentId: 'doc-5', chunkCount: 1, runId: 'no-such-run', stepName: 'ingest' }, ingest),
      answer('content', 'DocumentProcessed', { documentId: 'doc-5', chunkCount: 1, runId: 'not a run id!', stepName: 'ingest' }, ingest),
      answer('knowledge', 'DocumentEntitiesExtracted', { documentId: 'doc-5', entityCount: 1, relationCount: 0, runId, stepName: 'ingest' }, ingest),
      answer('content', 'DocumentProcessed', { documentId: 'doc-5', chunkCount: 1, runId, stepName: 'no-such-step' }, ingest),
    ];
    await transport.publish(reports);
    expect(await storedCount(runId)).toBe(count);
    for (const report of reports) expect(await inboxHas(report)).toBe(true);
    expect((await run(runId)).steps[0]).toMatchObject({ status: 'RUNNING', attempt: 1 });
  });

  it('parks a report its schema rejects at the first attempt (not dropped unseen); the run is untouched', async () => {
    const runId = await startRun(`saga-${randomUUID()}`);
    const ingest = await stepStarted(runId, 'ingest');
    const count = await storedCount(runId);
    // A document of its own: its stream waits behind the parked report (other tests' must not).
    const malformed = answer('content', 'DocumentProcessed', { documentId: `doc-${randomUUID()}`, chunkCount: 'many', runId, stepName: 'ingest' }, ingest);
    await transport.publish([malformed]);
    expect(await storedCount(runId)).toBe(count);
    expect(await inboxHas(malformed)).toBe(false);
    const { workflowsParking } = await mustGraphQL(service.url, '{ workflowsParking { parkedEvents(consumer: "workflows-from-content") { eventId attempts status error } } }');
    expect(workflowsParking.parkedEvents.find((p: { eventId: string }) => p.eventId === malformed.eventId)).toMatchObject({ attempts: 1, status: 'PARKED' });
    expect(workflowsParking.parkedEvents.find((p: { eventId: string }) => p.eventId === malformed.eventId).error).toMatch(/DocumentProcessed rejected by the consumer's schema: chunkCount/);
    expect((await run(runId)).steps[0]).toMatchObject({ status: 'RUNNING', attempt: 1 });
  });

  it('a run changed while a report is decided: the handler throws, nothing commits (no inbox row), the redelivery decides on the new state', async () => {
    const runId = await startRun(`saga-${randomUUID()}`);
    const ingest = await stepStarted(runId, 'ingest');
    const count = await storedCount(runId);
    // A concurrent writer (here: a cancellation appended by another store) holds its transaction open.
    const writer = createEventStore({ pool: db.pool, inlineProjections: [workflowsProjection, runsProjection] });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let appended!: () => void;
    const appendedOnce = new Promise<void>((resolve) => (appended = resolve));
    const cancelling = writer.transaction(async (tx) => {
      await tx.appendToStream(`run-${runId}`, [{ type: 'RunCancelled', data: { runId, reason: 'concurrent', cancelledAt: new Date().toISOString() } }], {
        expectedVersion: count - 1,
        metadata: { correlationId: ingest.metadata.correlationId, causationId: randomUUID(), actor: 'test' },
      });
      appended();
      await held;
    });
    await appendedOnce;
    const report = answer('content', 'DocumentProcessed', { documentId: 'doc-7', chunkCount: 1, runId, stepName: 'ingest' }, ingest);
    // Settled at once into a value, so that the rejection is never unhandled while we wait.
    const first = transport.publish([report]).then(() => null, (error: unknown) => error);
    await new Promise((r) => setTimeout(r, 200));
    release();
    await cancelling;
    expect(await first).toMatchObject({ code: 'WRONG_EXPECTED_VERSION' });
    expect(await inboxHas(report)).toBe(false);
    expect(await storedCount(runId)).toBe(count + 1);
    // The transport redelivers: the run is now cancelled, the report is ignored.
    await transport.publish([report]);
    expect(await inboxHas(report)).toBe(true);
    expect(await storedCount(runId)).toBe(count + 1);
    expect(await run(runId)).toMatchObject({ status: 'CANCELLED' });
    await writer.close();
  });

  it('stops its consumers and relay on close (idempotent): the transport no longer reaches it', async () => {
    const other = createInProcessTransport();
    const second = await startWorkflowsService({ pool: db.pool, port: 0, logger: testLogger, transport: other });
    await Promise.all([second.close(), second.close()]);
    await second.close();
    // No consumer is left on the transport: a report published now reaches nobody.
    const runId = await startRun(`saga-${randomUUID()}`);
    const ingest = await stepStarted(runId, 'ingest');
    const report = answer('content', 'DocumentProcessed', { documentId: 'doc-6', chunkCount: 1, runId, stepName: 'ingest' }, ingest);
    await other.publish([report]);
    expect(await inboxHas(report)).toBe(false);
    await other.close();
  });
});
