/**
 * The monitoring subgraph over HTTP against a fresh PostgreSQL database, fed through the
 * in-process transport with hand-made integration events of the three services (one saga run
 * sharing a correlation id and a causation chain, published out of order across services):
 * trace in causal order with durations, run timeline (also as `WorkflowRun.timeline`), event
 * feed pagination, counters, redelivery without a second effect, typed errors.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateServiceDatabase } from '../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../db/testing.ts';
import { createInProcessTransport } from '../../broker/in-process.ts';
import { createEventStore, rebuildProjection, type IntegrationEvent, type IntegrationTransport } from '../../eventstore/index.ts';
import { mustGraphQL, postGraphQL, testLogger } from '../../federation/testing/graphqlClient.ts';
import { INTEGRATION_EVENT_OBSERVED, type IntegrationEventObservedData } from './observe/events.ts';
import { MAX_SUMMARY_BYTES } from './observe/summarizePayload.ts';
import { observedEventsProjection } from './projections/observedEventsProjection.ts';
import { startMonitoringService, type MonitoringService } from './service.ts';
import { integrationEvent, sagaRun, type SagaRun } from './testing/sagaEvents.ts';

/** A trace entry as the GraphQL API returns it (the fields these tests select). */
interface TraceEntryResult {
  depth: number;
  causeEventId: string | null;
  durationSinceCauseMs: number | null;
  sinceTraceStartMs: number;
  event: { eventId: string; source: string; type: string; summary: unknown; lagMs: number; [field: string]: unknown };
}

let db: TestDatabase;
let transport: IntegrationTransport;
let service: MonitoringService;
const gql = <T = any>(query: string, variables?: Record<string, unknown>) => mustGraphQL<T>(service.url, query, variables);

const base = new Date('2025-03-01T10:00:00.000Z');
let run: SagaRun;
let other: SagaRun;
let uncorrelated: IntegrationEvent;
/** Every event, in the order published (the feed's order). */
let published: IntegrationEvent[];

const EVENT_FIELDS = 'eventId source type correlationId causationId actor runId occurredAt observedAt lagMs summary';
const countRows = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);

/** Publishes one source's events at a time (as three relays would), in the order given. */
async function publishBySource(events: IntegrationEvent[]) {
  for (const source of ['content', 'knowledge', 'workflows']) await transport.publish(events.filter((e) => e.source === source));
}

beforeAll(async () => {
  db = await createTestDatabase('monitoring_service');
  await migrateServiceDatabase(db.pool, { service: 'monitoring' });
  transport = createInProcessTransport();
  service = await startMonitoringService({ pool: db.pool, port: 0, logger: testLogger, transport });
  run = sagaRun(base);
  other = sagaRun(new Date(base.getTime() + 3_600_000));
  uncorrelated = integrationEvent({ source: 'knowledge', type: 'EntityDiscovered', data: { entityId: 'e-9', name: 'London', kind: 'PLACE' }, at: 500 }, base);
  // Effects before causes: content first, then knowledge, then workflows.
  await publishBySource(run.inCausalOrder);
  await publishBySource(other.inCausalOrder);
  await transport.publish([uncorrelated]);
  published = [...['content', 'knowledge', 'workflows'].flatMap((s) => run.inCausalOrder.filter((e) => e.source === s)),
    ...['content', 'knowledge', 'workflows'].flatMap((s) => other.inCausalOrder.filter((e) => e.source === s)), uncorrelated];
});

afterAll(async () => {
  await service?.close();
  await transport?.close();
  await db?.drop();
});

describe('trace', () => {
  it('returns the chain across the three services in causal order, with the duration since each cause', async () => {
    const { trace } = await gql(
      `query($c: ID!) { trace(correlationId: $c) { correlationId eventCount startedAt endedAt durationMs sources truncated
         events { depth causeEventId durationSinceCauseMs sinceTraceStartMs event { eventId source type } } } }`,
      { c: run.correlationId },
    );
    expect(trace).toMatchObject({
      correlationId: run.correlationId,
      eventCount: 13,
      startedAt: '2025-03-01T10:00:00.000Z',
      endedAt: '2025-03-01T10:00:00.081Z',
      durationMs: 81,
      sources: ['content', 'knowledge', 'workflows'],
      truncated: false,
    });
    const events = trace.events as TraceEntryResult[];
    expect(events.map((e) => e.event.eventId)).toEqual(run.inCausalOrder.map((e) => e.eventId));
    expect(events.map((e) => `${e.event.source}.${e.event.type}`)).toEqual([
      'workflows.RunStarted',
      'workflows.StepStarted',
      'content.DocumentIngested',
      'content.DocumentChunked',
      'content.DocumentChunked',
      'content.DocumentChunked',
      'content.DocumentProcessed',
      'workflows.StepCompleted',
      'workflows.StepStarted',
      'knowledge.EntityDiscovered',
      'knowledge.DocumentEntitiesExtracted',
      'workflows.StepCompleted',
      'workflows.RunCompleted',
    ]);
    // Every cause comes first; durations are occurredAt − cause's occurredAt.
    expect(events.map((e) => e.durationSinceCauseMs)).toEqual([null, 5, 15, 20, 21, 22, 25, 10, 11, 19, 29, 10, 11]);
    expect(events.map((e) => e.depth)).toEqual([0, 1, 2, 2, 2, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(events.map((e) => e.sinceTraceStartMs)).toEqual([0, 5, 20, 25, 26, 27, 30, 40, 41, 60, 70, 80, 81]);
    expect(events[0]!.causeEventId).toBeNull();
    expect(events[2]!.causeEventId).toBe(run.byName['StepStarted:ingest']!.eventId);
  });

  it('keeps metadata and a bounded summary without chunk text', async () => {
    const { trace } = await gql(`query($c: ID!) { trace(correlationId: $c) { events { event { ${EVENT_FIELDS} } } } }`, { c: run.correlationId });
    const chunk = (trace.events as TraceEntryResult[]).map((e) => e.event).find((e) => e.type === 'DocumentChunked')!;
    const source = run.byName['DocumentChunked:0']!;
    expect(chunk).toMatchObject({
      eventId: source.eventId,
      correlationId: run.correlationId,
      causationId: run.byName['StepStarted:ingest']!.eventId,
      actor: 'system:content',
      runId: null,
      occurredAt: '2025-03-01T10:00:00.025Z',
    });
    expect(chunk.summary).toEqual({ documentId: (source.data as { documentId: string }).documentId, chunkIndex: 0, chunkCount: 3, text: { omitted: 'text', length: run.chunkTexts[0]!.length }, startOffset: 0, endOffset: run.chunkTexts[0]!.length });
    expect(chunk.lagMs).toBeGreaterThan(0);
    // The text is nowhere in monitoring's database: neither the read model nor its event log.
    const needle = run.chunkTexts[0]!.slice(0, 60);
    expect(await countRows(`SELECT count(*)::int AS n FROM observed_events WHERE summary::text LIKE '%Chunk 0 of the book%'`)).toBe(0);
    const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM eventstore.events WHERE data::text LIKE '%' || $1 || '%'`, [needle]);
    expect(rows[0].n).toBe(0);
    expect(await countRows(`SELECT count(*)::int AS n FROM observed_events WHERE octet_length(summary::text) > ${MAX_SUMMARY_BYTES}`)).toBe(0);
  });

  it('stores each observation in the stream of its correlation id, caused by the observed event, as system:monitoring', async () => {
    const store = createEventStore({ pool: db.pool });
    try {
      const stream = await store.readStream(`trace-${run.correlationId}`);
      expect(stream).toHaveLength(13);
      expect(stream.every((e) => e.type === 'IntegrationEventObserved')).toBe(true);
      expect(new Set(stream.map((e) => e.metadata.causationId))).toEqual(new Set(run.inCausalOrder.map((e) => e.eventId)));
      expect(stream.every((e) => e.metadata.correlationId === run.correlationId && e.metadata.actor === 'system:monitoring')).toBe(true);
      expect(await store.readStream('observed-knowledge')).toHaveLength(1);
    } finally {
      await store.close();
    }
  });

  it('is null for a correlation id nobody used, and first out of range is BAD_USER_INPUT', async () => {
    expect((await gql(`{ trace(correlationId: "nobody") { eventCount } }`)).trace).toBeNull();
    const result = await postGraphQL(service.url, `{ trace(correlationId: "x", first: 0) { eventCount } }`);
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
  });

  it('first limits the entries and says so', async () => {
    const { trace } = await gql(`query($c: ID!) { trace(correlationId: $c, first: 4) { eventCount truncated events { event { type } } } }`, { c: run.correlationId });
    expect(trace.eventCount).toBe(13);
    expect(trace.truncated).toBe(true);
    expect(trace.events.map((e: any) => e.event.type)).toEqual(['RunStarted', 'StepStarted', 'DocumentIngested', 'DocumentChunked']);
  });
});

describe('run timeline', () => {
  const TIMELINE = 'sinceRunStartMs sincePreviousMs durationSinceCauseMs event { eventId source type runId }';

  it('holds the run events and everything they caused (chunks, entities), by time, with timings', async () => {
    const { runTimeline } = await gql(`query($r: ID!) { runTimeline(runId: $r) { ${TIMELINE} } }`, { r: run.runId });
    expect(runTimeline.map((e: any) => e.event.eventId)).toEqual(run.inCausalOrder.map((e) => e.eventId));
    expect(runTimeline.map((e: any) => e.sinceRunStartMs)).toEqual([0, 5, 20, 25, 26, 27, 30, 40, 41, 60, 70, 80, 81]);
    expect(runTimeline.map((e: any) => e.sincePreviousMs)).toEqual([null, 5, 15, 5, 1, 1, 3, 10, 1, 19, 10, 10, 1]);
    expect(runTimeline[3].durationSinceCauseMs).toBe(20);
    expect(runTimeline[3].event.runId).toBeNull();
    // The other run's events are not in it.
    const otherIds = new Set(other.inCausalOrder.map((e) => e.eventId));
    expect(runTimeline.some((e: any) => otherIds.has(e.event.eventId))).toBe(false);
  });

  it('is the field timeline of the WorkflowRun entity (federation reference)', async () => {
    const data = await gql(
      `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on WorkflowRun { id timeline(first: 3) { ${TIMELINE} } } } }`,
      { reps: [{ __typename: 'WorkflowRun', id: run.runId }, { __typename: 'WorkflowRun', id: 'unknown-run' }] },
    );
    expect(data._entities[0].id).toBe(run.runId);
    expect(data._entities[0].timeline.map((e: any) => e.event.type)).toEqual(['RunStarted', 'StepStarted', 'DocumentIngested']);
    expect(data._entities[1]).toEqual({ id: 'unknown-run', timeline: [] });
  });
});

describe('event feed', () => {
  const FEED = `query($after: String, $first: Int, $filter: EventFilter) {
    eventFeed(after: $after, first: $first, filter: $filter) { edges { cursor node { eventId source type correlationId } } pageInfo { hasNextPage endCursor } } }`;

  async function readAllPages(first: number, filter?: Record<string, unknown>) {
    const ids: string[] = [];
    let after: string | null = null;
    for (let pages = 0; pages < 100; pages++) {
      const { eventFeed }: any = await gql(FEED, { after, first, filter });
      ids.push(...eventFeed.edges.map((e: any) => e.node.eventId));
      if (eventFeed.edges.length > 0) expect(eventFeed.pageInfo.endCursor).toBe(eventFeed.edges.at(-1).cursor);
      if (!eventFeed.pageInfo.hasNextPage) return { ids, lastCursor: eventFeed.pageInfo.endCursor as string };
      after = eventFeed.pageInfo.endCursor;
    }
    throw new Error('too many pages');
  }

  it('pages through every event once, in observation order, with opaque cursors', async () => {
    const { ids, lastCursor } = await readAllPages(5);
    expect(ids).toEqual(published.map((e) => e.eventId));
    expect(new Set(ids).size).toBe(27);
    // Past the end: an empty page that keeps the cursor, for polling.
    const { eventFeed } = await gql(FEED, { after: lastCursor, first: 5 });
    expect(eventFeed).toEqual({ edges: [], pageInfo: { hasNextPage: false, endCursor: lastCursor } });
    expect(lastCursor).not.toMatch(/^\d/);
  });

  it('filters by source, type and correlation id', async () => {
    expect((await readAllPages(2, { source: 'content' })).ids).toEqual(published.filter((e) => e.source === 'content').map((e) => e.eventId));
    expect((await readAllPages(2, { source: 'content', type: 'DocumentChunked' })).ids).toHaveLength(6);
    expect((await readAllPages(4, { correlationId: other.correlationId })).ids).toEqual(
      published.filter((e) => e.metadata.correlationId === other.correlationId).map((e) => e.eventId),
    );
    expect((await readAllPages(4, { type: 'NoSuchType' })).ids).toEqual([]);
  });

  it('a cursor the server did not make is INVALID_CURSOR, first out of range BAD_USER_INPUT', async () => {
    for (const after of ['garbage', Buffer.from('fg1:1:x').toString('base64url'), Buffer.from('fg1:99999999999999999999:1').toString('base64url')]) {
      const result = await postGraphQL(service.url, FEED, { after, first: 5 });
      expect(result.data).toEqual({ eventFeed: null });
      expect(result.errors?.[0]?.extensions).toEqual({ code: 'INVALID_CURSOR', field: 'after' });
      expect(result.errors?.[0]?.message).toMatch(/Invalid cursor/);
    }
    const tooMany = await postGraphQL(service.url, FEED, { first: 501 });
    expect(tooMany.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'first' });
  });
});

describe('counters', () => {
  it('counts per (source, type), per service and in total', async () => {
    const { eventCounters } = await gql(`{ eventCounters { total services { source count types { type count } } types { source type count firstOccurredAt lastOccurredAt } } }`);
    expect(eventCounters.total).toBe(27);
    expect(eventCounters.services.map((s: any) => [s.source, s.count])).toEqual([
      ['content', 10],
      ['knowledge', 5],
      ['workflows', 12],
    ]);
    const byKey = Object.fromEntries(eventCounters.types.map((t: any) => [`${t.source}.${t.type}`, t.count]));
    expect(byKey).toEqual({
      'content.DocumentChunked': 6,
      'content.DocumentIngested': 2,
      'content.DocumentProcessed': 2,
      'knowledge.DocumentEntitiesExtracted': 2,
      'knowledge.EntityDiscovered': 3,
      'workflows.RunCompleted': 2,
      'workflows.RunStarted': 2,
      'workflows.StepCompleted': 4,
      'workflows.StepStarted': 4,
    });
    const chunked = eventCounters.types.find((t: any) => t.type === 'DocumentChunked');
    expect(chunked.firstOccurredAt).toBe('2025-03-01T10:00:00.025Z');
    expect(chunked.lastOccurredAt).toBe('2025-03-01T11:00:00.027Z');
    const one = await gql(`{ eventCounters(source: "knowledge") { total services { source } } }`);
    expect(one.eventCounters).toEqual({ total: 5, services: [{ source: 'knowledge' }] });
  });

  it('a rebuild replays the whole log in batches (one statement each) to the same rows and counters', async () => {
    const readModels = async () => ({
      observed: (await db.pool.query(`SELECT source, event_id, type, occurred_at, observed_at, summary, log_transaction_id, log_position
                                        FROM observed_events ORDER BY source, event_id`)).rows,
      counters: (await db.pool.query('SELECT * FROM event_counters ORDER BY source, type')).rows,
    });
    const before = await readModels();
    expect(before.observed).toHaveLength(27);
    const store = createEventStore({ pool: db.pool });
    // Batches of 4: several events of one (source, type) fall in one batch, and one type spans batches.
    const { events } = await rebuildProjection(store, observedEventsProjection, { mode: 'inline', batchSize: 4, progress: false });
    expect(events).toBe(27);
    expect(await readModels()).toEqual(before);
    // Replaying the same events again on top (no reset) changes nothing: rows exist, counters count inserts only.
    const page = await db.pool.connect();
    try {
      await page.query('BEGIN');
      const all = (await store.readAll({ count: 1000, types: observedEventsProjection.handles })).events;
      await observedEventsProjection.apply(all, page);
      await page.query('COMMIT');
    } finally {
      page.release();
    }
    expect(await readModels()).toEqual(before);
  });
});

describe('redelivery and bad input', () => {
  it('a redelivered event has no second effect', async () => {
    const snapshot = async () => ({
      observed: await countRows('SELECT count(*)::int AS n FROM observed_events'),
      events: await countRows('SELECT count(*)::int AS n FROM eventstore.events'),
      inbox: await countRows('SELECT count(*)::int AS n FROM eventstore.inbox'),
      counters: (await db.pool.query('SELECT source, type, count::int FROM event_counters ORDER BY 1, 2')).rows,
    });
    const before = await snapshot();
    expect(before.observed).toBe(27);
    await publishBySource(run.inCausalOrder);
    await transport.publish([uncorrelated, uncorrelated]);
    expect(await snapshot()).toEqual(before);
  });

  it('a malformed event is dropped and stores nothing', async () => {
    const before = await countRows('SELECT count(*)::int AS n FROM eventstore.inbox');
    const broken = { ...integrationEvent({ source: 'content', type: 'DocumentIngested', data: {}, at: 0 }, base), occurredAt: 'not a date' };
    await transport.publish([broken]);
    expect(await countRows('SELECT count(*)::int AS n FROM eventstore.inbox')).toBe(before);
    expect(await countRows(`SELECT count(*)::int AS n FROM observed_events WHERE event_id = '${broken.eventId}'`)).toBe(0);
  });
});

describe('event feed under concurrent commits', () => {
  it('never pages past an observation that is still being committed, so a later commit cannot make the cursor skip it', async () => {
    const FEED = `query($after: String) { eventFeed(after: $after, first: 500) { edges { node { eventId } } pageInfo { endCursor } } }`;
    const tail = (await gql(FEED)).eventFeed.pageInfo.endCursor as string;
    const writer = createEventStore({ pool: db.pool, inlineProjections: [observedEventsProjection] });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let signalAppended!: () => void;
    const appended = new Promise<void>((resolve) => (signalAppended = resolve));
    const slow: IntegrationEventObservedData = {
      // Another type than the fast one's: the two would otherwise queue on the same counter row.
      source: 'content', eventId: 'slow-event', type: 'DocumentFailed', schemaVersion: 1, streamId: 'doc-slow', streamPosition: 0,
      correlationId: 'concurrent-slow', causationId: null, actor: 'system:content', runId: null, occurredAt: base.toISOString(), summary: {},
    };
    try {
      const pending = writer.transaction(async (tx) => {
        await tx.appendToStream('trace-concurrent-slow', [{ type: INTEGRATION_EVENT_OBSERVED, data: slow }]);
        signalAppended();
        await gate;
      });
      await appended;
      // A later transaction commits first (another trace stream: observations of one correlation id queue on its stream's lock).
      const fast = integrationEvent({ source: 'content', type: 'DocumentIngested', data: { documentId: 'fast' }, correlationId: 'concurrent-fast', at: 1 }, base);
      await transport.publish([fast]);
      expect(await countRows(`SELECT count(*)::int AS n FROM observed_events WHERE event_id = '${fast.eventId}'`)).toBe(1);
      const whileOpen = (await gql(FEED, { after: tail })).eventFeed;
      expect(whileOpen.edges).toEqual([]);
      expect(whileOpen.pageInfo.endCursor).toBe(tail);
      release();
      await pending;
      const afterCommit = (await gql(FEED, { after: tail })).eventFeed;
      expect(afterCommit.edges.map((e: any) => e.node.eventId)).toEqual(['slow-event', fast.eventId]);
    } finally {
      release();
      await writer.close();
    }
  });
});

describe('a run started by another run’s event', () => {
  it('is not in that run’s timeline, and what it caused is in its own', async () => {
    const TIMELINE = 'event { eventId runId }';
    const followId = `run-follow-${run.runId}`;
    // A follow-up run whose start was caused by the first run's completion, and an event without a run caused by that start.
    const followStarted = integrationEvent(
      { source: 'workflows', type: 'RunStarted', data: { runId: followId }, correlationId: run.correlationId, causationId: run.byName.RunCompleted!.eventId, at: 90, streamId: `run-${followId}` },
      base,
    );
    const followEffect = integrationEvent({ source: 'content', type: 'DocumentIngested', data: { documentId: 'd-follow' }, correlationId: run.correlationId, causationId: followStarted.eventId, at: 95 }, base);
    await transport.publish([followEffect]);
    await transport.publish([followStarted]);
    const data = await gql(
      `query($reps: [_Any!]!) { _entities(representations: $reps) { ... on WorkflowRun { id timeline(first: 50) { ${TIMELINE} } } } }`,
      { reps: [{ __typename: 'WorkflowRun', id: run.runId }, { __typename: 'WorkflowRun', id: followId }] },
    );
    expect(data._entities[0].timeline.map((e: any) => e.event.eventId)).toEqual(run.inCausalOrder.map((e) => e.eventId));
    expect(data._entities[1].timeline).toEqual([
      { event: { eventId: followStarted.eventId, runId: followId } },
      { event: { eventId: followEffect.eventId, runId: null } },
    ]);
  });
});
