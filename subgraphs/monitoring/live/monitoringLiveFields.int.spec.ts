/**
 * Monitoring's part of the subscriptions, against a fresh database with the in-process transport
 * and hand-made integration events: `eventFeed(filter)` projected directly on the observations
 * appended to monitoring's log (the same view as the query feed; filters by source, type and
 * correlation id; bad filters refused); `ObservedEvent.run`; `WorkflowRun.timeline` as of a run
 * event through `_entities` over HTTP (cut at that event, ties included; waits for a late
 * observation; answers what it has, with a warning, past `asOfWaitMs`).
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../../../broker/in-process.ts';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import { createEventStore, type EventStore, type IntegrationEvent, type IntegrationTransport, type RecordedEvent } from '../../../eventstore/index.ts';
import type { LiveField } from '../../../federation/live/liveField.ts';
import { eventually, mustGraphQL, postGraphQL, testLogger } from '../../../federation/testing/graphqlClient.ts';
import { PrismaClient } from '../../../prisma/monitoring/generated/client.ts';
import { createResolvers } from '../graphql/resolvers.ts';
import { INTEGRATION_EVENT_OBSERVED } from '../observe/events.ts';
import { createReadModel, type ReadModel } from '../readModel.ts';
import { startMonitoringService, type MonitoringService } from '../service.ts';
import { sagaRun, type SagaRun } from '../testing/sagaEvents.ts';
import { createMonitoringLiveFields, type ObservedEventUpdateValue } from './monitoringLiveFields.ts';
import { countStoredEvents } from '../../../eventstore/testing/fixture.ts';

// graphql-js as @apollo/subgraph builds the schema with (CommonJS), as federation/live/liveServer.ts executes it.
const { execute, parse } = createRequire(import.meta.url)('graphql') as typeof import('graphql');

const AS_OF_WAIT_MS = 800;
const warnings: { msg: string; obj: Record<string, unknown> }[] = [];
const logger = { ...testLogger, warn: (obj: object, msg: string) => void warnings.push({ msg, obj: obj as Record<string, unknown> }) };

let db: TestDatabase;
let transport: IntegrationTransport;
let service: MonitoringService;
let store: EventStore;
let prisma: PrismaClient;
let readModel: ReadModel;
let field: LiveField<any>;
let saga: SagaRun;
let other: SagaRun;

const base = new Date('2025-05-01T08:00:00.000Z');
const at = (ms: number) => new Date(base.getTime() + ms);

/** One event of a run as workflows' relay publishes it: stream `run-<runId>`, its own stream position. */
function runEvent(runId: string, streamPosition: number, type: string, ms: number, causationId: string): IntegrationEvent {
  return {
    eventId: randomUUID(),
    source: 'workflows',
    type,
    schemaVersion: 1,
    streamId: `run-${runId}`,
    streamPosition,
    data: { runId, stepName: 'ingest' },
    metadata: { correlationId: `corr-${runId}`, causationId, actor: 'operator' },
    occurredAt: at(ms).toISOString(),
    position: { transactionId: String(1000 + streamPosition), globalPosition: String(1000 + streamPosition) },
  };
}

/** A content event caused by `cause`, without a runId (on the timeline through its cause). */
function contentEvent(type: string, ms: number, cause: IntegrationEvent, data: Record<string, unknown> = {}): IntegrationEvent {
  return {
    ...runEvent('x', 0, type, ms, cause.eventId),
    source: 'content',
    streamId: 'document-d1',
    data,
    metadata: { correlationId: cause.metadata.correlationId, causationId: cause.eventId, actor: 'system:content' },
  };
}

/**
 * Every observation of the two runs, once the log's safe bound has passed them: the bound
 * follows the oldest transaction still open on the whole PostgreSQL server (other test files'
 * databases included), so an observation committed a moment ago may not be readable yet.
 */
async function observedLog(): Promise<RecordedEvent[]> {
  const expected = saga.inCausalOrder.length + other.inCausalOrder.length;
  let events: RecordedEvent[] = [];
  await eventually(async () => {
    events = (await store.readAll({ count: 10_000, types: [INTEGRATION_EVENT_OBSERVED] })).events;
    return events.length >= expected ? true : undefined;
  });
  return events;
}

async function project(args: Record<string, unknown>, events: readonly RecordedEvent[]) {
  const projector = field.createProjector(field.normalize(args));
  const updates: ObservedEventUpdateValue[] = [];
  for (const event of events) {
    const update = (await projector.project(event)) as ObservedEventUpdateValue | null;
    if (update !== null) updates.push(update);
  }
  return updates;
}

beforeAll(async () => {
  db = await createTestDatabase('monitoring_live');
  await migrateServiceDatabase(db.pool, { service: 'monitoring' });
  transport = createInProcessTransport();
  service = await startMonitoringService({ pool: db.pool, port: 0, logger, transport, asOfWaitMs: AS_OF_WAIT_MS });
  store = createEventStore({ pool: db.pool });
  prisma = new PrismaClient({ adapter: new PrismaPg(db.pool) });
  readModel = createReadModel(db.pool, prisma);
  field = createMonitoringLiveFields()[0]!;
  saga = sagaRun(base);
  other = sagaRun(at(3_600_000));
  for (const run of [saga, other]) for (const source of ['workflows', 'content', 'knowledge']) await transport.publish(run.inCausalOrder.filter((e) => e.source === source));
});
afterAll(async () => {
  await service?.close();
  await prisma?.$disconnect();
  await store?.close();
  await transport?.close();
  await db?.drop();
});

describe('eventFeed', () => {
  it('without a filter sends every observation in log order, as the query feed serves it', async () => {
    const log = await observedLog();
    expect(log).toHaveLength(saga.inCausalOrder.length + other.inCausalOrder.length);
    const updates = await project({}, log);
    const page = await readModel.eventFeed({}, 500);
    expect(updates.map((u) => u.event)).toEqual(page.edges.map((e) => e.node));
  });

  it('filters by source, type and correlation id (each given member must match)', async () => {
    const log = await observedLog();
    const ids = async (filter: Record<string, unknown>) => (await project({ filter }, log)).map((u) => u.event.eventId);
    const all = saga.inCausalOrder.concat(other.inCausalOrder);
    const expected = (keep: (e: IntegrationEvent) => boolean) => new Set(all.filter(keep).map((e) => e.eventId));
    expect(new Set(await ids({ source: 'content' }))).toEqual(expected((e) => e.source === 'content'));
    expect(new Set(await ids({ type: 'StepStarted' }))).toEqual(expected((e) => e.type === 'StepStarted'));
    expect(new Set(await ids({ correlationId: other.correlationId }))).toEqual(expected((e) => e.metadata.correlationId === other.correlationId));
    expect(new Set(await ids({ source: 'workflows', correlationId: saga.correlationId, type: null }))).toEqual(
      expected((e) => e.source === 'workflows' && e.metadata.correlationId === saga.correlationId),
    );
    expect(await ids({ source: 'nobody' })).toEqual([]);
  });

  it('normalises the filter and refuses bad members with BAD_USER_INPUT (reason INVALID_FILTER), storing nothing', async () => {
    expect(field.start).toBe('head');
    expect(field.normalize({})).toEqual({ filter: {} });
    expect(field.normalize({ filter: null })).toEqual({ filter: {} });
    expect(JSON.stringify(field.normalize({ filter: { type: 't', source: 's', correlationId: null } }))).toBe('{"filter":{"source":"s","type":"t"}}');
    const before = await countStoredEvents(db.pool);
    for (const filter of [{ source: '' }, { type: 'x'.repeat(501) }, { correlationId: 'a\u0000b' }, { source: 5 }, 'content']) {
      expect(() => field.normalize({ filter })).toThrowError(expect.objectContaining({ code: 'BAD_USER_INPUT', details: expect.objectContaining({ reason: 'INVALID_FILTER' }) }));
    }
    expect(await countStoredEvents(db.pool)).toBe(before);
  });

  it('updates resolve through the subgraph schema; ObservedEvent.run names the run as an entity', async () => {
    const schema = buildSubgraphSchema({ typeDefs: parse(readFileSync(new URL('../schema.graphql', import.meta.url), 'utf8')), resolvers: createResolvers(readModel) });
    const log = await observedLog();
    const [update] = await project({ filter: { type: 'RunStarted', correlationId: saga.correlationId } }, log);
    const [chunk] = await project({ filter: { type: 'DocumentChunked', correlationId: saga.correlationId } }, log);
    const run = async (value: ObservedEventUpdateValue) =>
      execute({
        schema,
        document: parse(`subscription { eventFeed { cursor eventType occurredAt event { eventId type source runId lagMs observedAt run { __typename id } } } }`),
        rootValue: { eventFeed: { ...value, cursor: 'c', eventType: INTEGRATION_EVENT_OBSERVED, occurredAt: value.event.observedAt } },
        contextValue: {},
      });
    const started = await run(update!);
    expect(started.errors).toBeUndefined();
    expect(started.data!.eventFeed).toEqual({
      cursor: 'c',
      eventType: INTEGRATION_EVENT_OBSERVED,
      occurredAt: update!.event.observedAt.toISOString(),
      event: {
        eventId: saga.byName.RunStarted!.eventId,
        type: 'RunStarted',
        source: 'workflows',
        runId: saga.runId,
        lagMs: update!.event.observedAt.getTime() - base.getTime(),
        observedAt: update!.event.observedAt.toISOString(),
        run: { __typename: 'WorkflowRun', id: saga.runId },
      },
    });
    expect(((await run(chunk!)).data!.eventFeed as { event: { run: unknown } }).event.run).toBeNull();
  });

  it('ObservedEvent.run over HTTP', async () => {
    const data = await mustGraphQL(service.url, `query($c: String) { eventFeed(first: 100, filter: { correlationId: $c }) { edges { node { type runId run { id } } } } }`, {
      c: saga.correlationId,
    });
    const nodes = data.eventFeed.edges.map((e: { node: unknown }) => e.node);
    expect(nodes.find((n: { type: string }) => n.type === 'RunStarted')).toEqual({ type: 'RunStarted', runId: saga.runId, run: { id: saga.runId } });
    expect(nodes.find((n: { type: string }) => n.type === 'DocumentChunked')).toEqual({ type: 'DocumentChunked', runId: null, run: null });
  });
});

describe('WorkflowRun.timeline as of a run event (_entities over HTTP)', () => {
  const runId = `run-${randomUUID()}`;
  let w0: IntegrationEvent, w1: IntegrationEvent, c0: IntegrationEvent, c1: IntegrationEvent, c2: IntegrationEvent, w2: IntegrationEvent, w4: IntegrationEvent;

  beforeAll(async () => {
    w0 = runEvent(runId, 0, 'RunStarted', 0, 'request-1');
    w1 = runEvent(runId, 1, 'StepStarted', 10, w0.eventId);
    c0 = contentEvent('DocumentIngested', 20, w1, { runId });
    c1 = contentEvent('DocumentChunked', 30, w1);
    c2 = contentEvent('DocumentProcessed', 40, w1, { runId });
    w2 = runEvent(runId, 2, 'StepCompleted', 40, c2.eventId); // the same time as c2: a tie
    // Position 3 is a private StepRetried (never published); position 4 a StepStarted, published late.
    w4 = runEvent(runId, 4, 'StepStarted', 60, w2.eventId);
    await transport.publish([w0, w1, w2]);
    await transport.publish([c0, c1, c2]);
    await eventually(async () => ((await readModel.runTimeline(runId)).length === 6 ? true : undefined));
  });

  // Log order breaks the tie at 40 ms: w2 was observed before c2.
  const upTo40 = () => [w0, w1, c0, c1, w2, c2].map((e) => e.eventId);
  const timeline = async (representation: Record<string, unknown>) => {
    const started = Date.now();
    const result = await postGraphQL(service.url, `query($r: [_Any!]!) { _entities(representations: $r) { ... on WorkflowRun { timeline { event { eventId type } sinceRunStartMs } } } }`, {
      r: [{ __typename: 'WorkflowRun', id: runId, ...representation }],
    });
    expect(result.errors).toBeUndefined();
    return { ms: Date.now() - started, ids: (result.data!._entities[0].timeline as { event: { eventId: string } }[]).map((t) => t.event.eventId) };
  };

  it('without asOfVersion (queries) is the current timeline', async () => {
    expect((await timeline({ asOfVersion: null, asOfPublishedVersion: null, updatedAt: at(40).toISOString() })).ids).toEqual(upTo40());
    expect((await timeline({})).ids).toHaveLength(6);
  });

  it('is cut at the event it is as of: entries that occurred at or before it, ties of the same time included', async () => {
    const asOfStart = await timeline({ asOfVersion: 1, asOfPublishedVersion: 1, updatedAt: at(10).toISOString() });
    expect(asOfStart.ids).toEqual([w0.eventId, w1.eventId]);
    const asOfCompleted = await timeline({ asOfVersion: 2, asOfPublishedVersion: 2, updatedAt: at(40).toISOString() });
    expect(asOfCompleted.ids).toEqual(upTo40());
    expect(asOfCompleted.ms).toBeLessThan(AS_OF_WAIT_MS);
  });

  it("leaves out the run's own later events of the same millisecond (its stream orders them), not other services' ties", async () => {
    // As if StepStarted (position 1) had happened at 40 ms, with StepCompleted (position 2) in the same millisecond.
    const tied = await timeline({ asOfVersion: 1, asOfPublishedVersion: 1, updatedAt: at(40).toISOString() });
    expect(tied.ids).toEqual([w0, w1, c0, c1, c2].map((e) => e.eventId));
  });

  it('as of an unpublished event waits only for the last published one before it', async () => {
    const asOfRetried = await timeline({ asOfVersion: 3, asOfPublishedVersion: 2, updatedAt: at(50).toISOString() });
    expect(asOfRetried.ids).toEqual(upTo40());
    expect(asOfRetried.ms).toBeLessThan(AS_OF_WAIT_MS);
  });

  it('waits for an event monitoring has not observed yet', async () => {
    const pending = timeline({ asOfVersion: 4, asOfPublishedVersion: 4, updatedAt: at(60).toISOString() });
    await new Promise((resolve) => setTimeout(resolve, 300));
    await transport.publish([w4]);
    const asOfLate = await pending;
    expect(asOfLate.ids.at(-1)).toBe(w4.eventId);
    expect(asOfLate.ids).toHaveLength(7);
    expect(asOfLate.ms).toBeGreaterThanOrEqual(290);
    expect(asOfLate.ms).toBeLessThan(AS_OF_WAIT_MS + 500);
  });

  it('answers what it has observed, with a warning, when the event does not arrive in time', async () => {
    warnings.length = 0;
    const never = await timeline({ asOfVersion: 9, asOfPublishedVersion: 9, updatedAt: at(45).toISOString() });
    expect(never.ms).toBeGreaterThanOrEqual(AS_OF_WAIT_MS - 20);
    expect(never.ids).toEqual(upTo40());
    expect(warnings).toEqual([expect.objectContaining({ obj: expect.objectContaining({ runId, asOfVersion: 9, asOfPublishedVersion: 9 }) })]);
  });

  it('refuses representations whose as-of fields are not positions or times', async () => {
    const bad = await postGraphQL(service.url, `query($r: [_Any!]!) { _entities(representations: $r) { ... on WorkflowRun { timeline { sinceRunStartMs } } } }`, {
      r: [{ __typename: 'WorkflowRun', id: runId, asOfVersion: -1, updatedAt: at(0).toISOString() }],
    });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const badTime = await postGraphQL(service.url, `query($r: [_Any!]!) { _entities(representations: $r) { ... on WorkflowRun { timeline { sinceRunStartMs } } } }`, {
      r: [{ __typename: 'WorkflowRun', id: runId, asOfVersion: 1, updatedAt: 'yesterday' }],
    });
    expect(badTime.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});
