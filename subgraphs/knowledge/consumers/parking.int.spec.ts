/**
 * knowledge's consumers park an integration event their schema rejects (it used to be recorded as
 * handled and dropped, visible only in a log line), at the first attempt: the event is listed by
 * `knowledgeParking` with the schema's complaint, and a valid chunk of the same batch, of another
 * document, is still stored.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport, type InProcessTransport } from '../../../broker/in-process.ts';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import type { IntegrationEvent } from '../../../eventstore/index.ts';
import { delay } from '../../../eventstore/testing/fixture.ts';
import { mustGraphQL, testLogger } from '../../../federation/testing/graphqlClient.ts';
import { startKnowledgeService, type KnowledgeService } from '../service.ts';

let db: TestDatabase;
let transport: InProcessTransport;
let service: KnowledgeService;

let position = 0;
function event(source: string, type: string, streamId: string, data: unknown): IntegrationEvent {
  position++;
  return {
    eventId: randomUUID(),
    source,
    type,
    schemaVersion: 1,
    streamId,
    streamPosition: position,
    data,
    metadata: { correlationId: `corr-${position}`, causationId: randomUUID(), actor: `system:${source}` },
    occurredAt: new Date().toISOString(),
    position: { transactionId: String(position), globalPosition: String(position) },
  };
}
/** Publishes as the relay would: again until every consumer committed. */
async function publish(events: IntegrationEvent[]): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      return await transport.publish(events);
    } catch (error) {
      if (i > 200) throw error;
      await delay(10);
    }
  }
}
const parked = async () =>
  (await mustGraphQL(service.url, '{ knowledgeParking { parkedCount parkedEvents { consumer eventId eventType attempts error status } } }')).knowledgeParking;

beforeAll(async () => {
  db = await createTestDatabase('knowledge_parking');
  await migrateServiceDatabase(db.pool, { service: 'knowledge' });
  transport = createInProcessTransport();
  service = await startKnowledgeService({ pool: db.pool, port: 0, logger: testLogger, transport, relaySubscription: { pollIntervalMs: 50 } });
});
afterAll(async () => {
  await service?.close();
  await transport?.close();
  await db?.drop();
});

describe('knowledge parks integration events its schema rejects', () => {
  it('parks a malformed DocumentChunked at the first attempt and stores the valid chunk of another document in the same batch', async () => {
    const broken = event('content', 'DocumentChunked', 'document-broken', { documentId: 'broken', chunkIndex: -1 });
    const good = event('content', 'DocumentChunked', 'document-good', { documentId: 'good', chunkIndex: 0, chunkCount: 1, text: 'Ada Lovelace.', startOffset: 0, endOffset: 13 });
    await publish([broken, good]);
    const { parkedCount, parkedEvents } = await parked();
    expect(parkedCount).toBe(1);
    expect(parkedEvents[0]).toMatchObject({ consumer: 'knowledge-from-content', eventId: broken.eventId, eventType: 'DocumentChunked', attempts: 1, status: 'PARKED' });
    expect(parkedEvents[0].error).toMatch(/DocumentChunked rejected by the consumer's schema: .*chunkIndex/);
    expect((await db.pool.query(`SELECT document_id FROM chunks`)).rows).toEqual([{ document_id: 'good' }]);
    expect((await db.pool.query('SELECT 1 FROM eventstore.inbox WHERE event_id = $1', [broken.eventId])).rowCount).toBe(0);
  });

  it('parks a malformed StepStarted of workflows at the first attempt', async () => {
    const broken = event('workflows', 'StepStarted', 'run-broken', { runId: 'broken', kind: 'EXTRACT' });
    await publish([broken]);
    const { parkedEvents } = await parked();
    expect(parkedEvents.find((p: { eventId: string }) => p.eventId === broken.eventId)).toMatchObject({ consumer: 'knowledge-from-workflows', attempts: 1, status: 'PARKED' });
  });
});
