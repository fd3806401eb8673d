/**
 * A started content service for integration tests: a fresh database (`createTestDatabase`),
 * content's migrations, the in-process transport with the test's own consumers registered
 * first, and the service on a free port with a fast-polling relay, reading the corpus.
 *
 * ```ts
 * const fx = await startContentFixture('content_saga', [{ consumer: 'x', source: 'content', handler }]);
 * // fx.service.url, fx.db.pool, fx.transport
 * await fx.close();
 * ```
 */
import { createInProcessTransport } from '../../../broker/in-process.ts';
import { requireCorpus } from '../../../config/corpus.ts';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import type { IntegrationConsumerOptions, IntegrationTransport } from '../../../eventstore/index.ts';
import { testLogger } from '../../../federation/testing/graphqlClient.ts';
import { startContentService, type ContentService } from '../service.ts';

/** What `startContentFixture` started. */
export interface ContentFixture {
  db: TestDatabase;
  transport: IntegrationTransport;
  service: ContentService;
  /** The corpus directory the service reads (`requireCorpus()`). */
  corpusDir: string;
  /** Closes the service, then the transport, then drops the database. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the fixture.
 * @param label part of the test database's name (lowercase letters, digits, `_`)
 * @param consumers registered on the transport before the service starts, so they see every event
 * @throws the corpus error of `requireCorpus` when the corpus is missing; database or listen errors
 */
export async function startContentFixture(label: string, consumers: readonly IntegrationConsumerOptions[] = []): Promise<ContentFixture> {
  const corpusDir = requireCorpus();
  const db = await createTestDatabase(label);
  const transport = createInProcessTransport();
  let service: ContentService | undefined;
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      await service?.close();
      await transport.close();
      await db.drop();
    })());
  try {
    await migrateServiceDatabase(db.pool, { service: 'content' });
    for (const consumer of consumers) await transport.consume(consumer);
    service = await startContentService({
      pool: db.pool,
      port: 0,
      transport,
      logger: testLogger,
      corpusDir,
      relaySubscription: { pollIntervalMs: 50, standbyRetryMs: 100, retryDelayMs: 50 },
    });
  } catch (error) {
    await close();
    throw error;
  }
  return { db, transport, service, corpusDir, close };
}
