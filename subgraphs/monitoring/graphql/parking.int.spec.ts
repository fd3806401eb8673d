/**
 * Parked events through a subgraph's GraphQL API (federation/parking.ts), on the real monitoring
 * service: an event its consumer cannot store (a trigger of the test refuses its inbox row, a
 * real non-transient database error) is parked after `parkAfterAttempts`, visible with its error,
 * attempts and time; `retryParkedEvent` and `skipParkedEvent` release its stream; bad ids get
 * BAD_USER_INPUT / NOT_FOUND and change nothing.
 */
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport, type InProcessTransport } from '../../../broker/in-process.ts';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import type { IntegrationEvent } from '../../../eventstore/index.ts';
import { PARKED_EVENT_SKIPPED } from '../../../eventstore/parking.ts';
import { delay, eventually, installInboxPoison, type InboxPoison } from '../../../eventstore/testing/fixture.ts';
import { mustGraphQL, postGraphQL, testLogger } from '../../../federation/testing/graphqlClient.ts';
import { composeSupergraph, readSubgraphSources } from '../../../gateway/composeSupergraph.ts';
import { startGateway, type RunningGateway } from '../../../gateway/server.ts';
import { createGatewayClient } from '../../../test/support/client.ts';
import { startMonitoringService, type MonitoringService } from '../service.ts';

const ATTEMPTS = 2;
let db: TestDatabase;
let transport: InProcessTransport;
let service: MonitoringService;
let gateway: RunningGateway | undefined;
/** Parking is an admin's business (federation/parking.ts): every request here is signed as an admin. */
const ADMIN = { identity: { subject: 'admin', role: 'admin' } } as const;
const gql = <T = any>(query: string, variables?: Record<string, unknown>) => mustGraphQL<T>(service.url, query, variables, ADMIN);

let position = 0;
function event(streamId: string): IntegrationEvent {
  position += 1;
  return {
    eventId: randomUUID(),
    source: 'workflows',
    type: 'RunStarted',
    schemaVersion: 1,
    streamId,
    streamPosition: position,
    data: { runId: streamId },
    metadata: { correlationId: `corr-${streamId}`, actor: 'operator' },
    occurredAt: new Date().toISOString(),
    position: { transactionId: String(position), globalPosition: String(position) },
  };
}

/** Publishes as the relay would: again until every consumer committed (it fails while a handler fails). */
async function publish(events: IntegrationEvent[]): Promise<void> {
  for (;;) {
    try {
      return await transport.publish(events);
    } catch {
      await delay(10);
    }
  }
}
const observed = async (e: IntegrationEvent) => (await db.pool.query('SELECT 1 FROM eventstore.inbox WHERE source = $1 AND event_id = $2', [e.source, e.eventId])).rowCount === 1;
let inbox: InboxPoison;
const poison = (e: IntegrationEvent) => inbox.poison(e.eventId);
const heal = (e: IntegrationEvent) => inbox.heal(e.eventId);

const PARKED_FIELDS = 'id consumer source eventId eventType streamId streamPosition status attempts error firstFailedAt parkedAt lastFailedAt resolvedAt resolvedBy waiting';
const listParked = async () =>
  (await gql<{ monitoringParking: { parkedCount: number; parkedEvents: any[] } }>(`{ monitoringParking { parkedCount parkedEvents { ${PARKED_FIELDS} } } }`)).monitoringParking;

beforeAll(async () => {
  db = await createTestDatabase('monitoring_parking');
  await migrateServiceDatabase(db.pool, { service: 'monitoring' });
  // The poison: a real, non-transient database error for the listed events' inbox rows.
  inbox = await installInboxPoison(db.pool);
  transport = createInProcessTransport();
  service = await startMonitoringService({ pool: db.pool, port: 0, logger: testLogger, transport, sources: ['workflows'], parkAfterAttempts: ATTEMPTS });
});
afterAll(async () => {
  await gateway?.close();
  await service?.close();
  await transport?.close();
  await db?.drop();
});

describe('parked events through the GraphQL API', () => {
  let parkedId: string;
  const p = event(`run-${randomUUID()}`);
  const q = event(p.streamId);
  const r = event(`run-${randomUUID()}`);

  it('shows an event parked after parkAfterAttempts with its error, attempts and time; its stream waits, others flow on', async () => {
    await poison(p);
    await publish([p, q, r]);
    const parking = await listParked();
    expect(parking.parkedCount).toBe(1);
    const [parked] = parking.parkedEvents;
    expect(parked).toMatchObject({
      consumer: 'monitoring-from-workflows',
      source: 'workflows',
      eventId: p.eventId,
      eventType: 'RunStarted',
      streamId: p.streamId,
      status: 'PARKED',
      attempts: ATTEMPTS,
      waiting: 1,
      resolvedAt: null,
    });
    expect(parked.error).toMatch(/poison event/);
    expect(Date.parse(parked.parkedAt)).not.toBeNaN();
    parkedId = parked.id;
    expect(await observed(r)).toBe(true);
    expect(await observed(q)).toBe(false);
  });

  it('refuses bad ids with BAD_USER_INPUT or NOT_FOUND and changes nothing', async () => {
    const snapshot = async () => (await db.pool.query('SELECT * FROM eventstore.parked_events ORDER BY id')).rows;
    const events = async () => (await db.pool.query('SELECT count(*)::int AS n FROM eventstore.events')).rows[0].n;
    const before = { rows: await snapshot(), events: await events() };
    for (const mutation of ['retryParkedEvent', 'skipParkedEvent']) {
      const invalid = await postGraphQL(service.url, `mutation { monitoringParking { ${mutation}(id: "abc") { id } } }`, {}, ADMIN);
      expect(invalid.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_ID' });
      const missing = await postGraphQL(service.url, `mutation { monitoringParking { ${mutation}(id: "424242") { id } } }`, {}, ADMIN);
      expect(missing.errors?.[0]?.extensions).toMatchObject({ code: 'NOT_FOUND' });
    }
    const query = await postGraphQL(service.url, '{ monitoringParking { parkedEvent(id: "1e3") { id } } }', {}, ADMIN);
    expect(query.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await snapshot()).toEqual(before.rows);
    expect(await events()).toBe(before.events);
  });

  it('retryParkedEvent that fails again keeps the event parked with one more attempt', async () => {
    const { monitoringParking } = await gql(`mutation($id: ID!) { monitoringParking { retryParkedEvent(id: $id) { status attempts error } } }`, { id: parkedId });
    expect(monitoringParking.retryParkedEvent).toMatchObject({ status: 'PARKED', attempts: ATTEMPTS + 1 });
    expect(await observed(q)).toBe(false);
  });

  it('retryParkedEvent re-runs the handler now; on success the waiting events of its stream flow on', async () => {
    await heal(p);
    const { monitoringParking } = await gql(`mutation($id: ID!) { monitoringParking { retryParkedEvent(id: $id) { status resolvedBy resolvedAt } } }`, { id: parkedId });
    expect(monitoringParking.retryParkedEvent).toMatchObject({ status: 'RETRIED', resolvedBy: 'admin' });
    expect(await observed(p)).toBe(true);
    await eventually(() => observed(q), 20_000, 'the waiting event');
    expect((await listParked()).parkedCount).toBe(0);
    const again = await postGraphQL(service.url, `mutation($id: ID!) { monitoringParking { retryParkedEvent(id: $id) { id } } }`, { id: parkedId }, ADMIN);
    expect(again.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'NOT_PARKED' });
  });

  it('skipParkedEvent records ParkedEventSkipped in the log, never applies the event, and lets its stream go on', async () => {
    const p2 = event(`run-${randomUUID()}`);
    const q2 = event(p2.streamId);
    await poison(p2);
    await publish([p2, q2]);
    const [parked] = (await listParked()).parkedEvents;
    expect(parked).toMatchObject({ eventId: p2.eventId, waiting: 1 });
    // The test's poison sits in the inbox insert, which skip writes too; healed, the handler
    // would now succeed: skip must still not run it.
    await heal(p2);
    const { monitoringParking } = await gql(`mutation($id: ID!) { monitoringParking { skipParkedEvent(id: $id) { status resolvedBy } } }`, { id: parked.id });
    expect(monitoringParking.skipParkedEvent).toEqual({ status: 'SKIPPED', resolvedBy: 'admin' });
    await eventually(() => observed(q2), 20_000, 'the waiting event');
    const skipped = await db.pool.query(`SELECT data, metadata FROM eventstore.events WHERE type = $1`, [PARKED_EVENT_SKIPPED]);
    expect(skipped.rows).toHaveLength(1);
    expect(skipped.rows[0].data).toMatchObject({ eventId: p2.eventId, consumer: 'monitoring-from-workflows', attempts: ATTEMPTS });
    expect(skipped.rows[0].metadata).toMatchObject({ actor: 'admin', actorRole: 'admin' });
    const observations = await db.pool.query(`SELECT 1 FROM eventstore.events WHERE type = 'IntegrationEventObserved' AND data->>'eventId' = $1`, [p2.eventId]);
    expect(observations.rowCount).toBe(0);
    const resolved = await gql(`{ monitoringParking { parkedCount parkedEvents(includeResolved: true) { eventId status } } }`);
    expect(resolved.monitoringParking.parkedCount).toBe(0);
    expect(resolved.monitoringParking.parkedEvents).toEqual([
      { eventId: p.eventId, status: 'RETRIED' },
      { eventId: p2.eventId, status: 'SKIPPED' },
    ]);
  });
});

describe('parked events through the gateway', () => {
  it('the supergraph composed from every subgraph serves each service-named parking field and its mutations', async () => {
    const supergraphSdl = composeSupergraph(readSubgraphSources());
    gateway = await startGateway({ supergraphSdl, subgraphUrlOverrides: { monitoring: service.url }, port: 0, host: '127.0.0.1', logger: pino({ level: 'silent' }) });
    const operator = await createGatewayClient(gateway.url).query('mutation { monitoringParking { skipParkedEvent(id: "424242") { id } } }');
    expect(operator.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const client = createGatewayClient(gateway.url, { identity: { subject: 'admin', role: 'admin' } });
    const listed = await client.query('{ monitoringParking { parkedCount parkedEvents(includeResolved: true) { status eventType waiting } } }');
    expect(listed.errors).toBeUndefined();
    expect(listed.data?.monitoringParking.parkedEvents).toEqual([
      { status: 'RETRIED', eventType: 'RunStarted', waiting: 0 },
      { status: 'SKIPPED', eventType: 'RunStarted', waiting: 0 },
    ]);
    const missing = await client.query('mutation { monitoringParking { skipParkedEvent(id: "424242") { id } } }');
    expect(missing.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});
