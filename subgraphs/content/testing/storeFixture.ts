/**
 * The content write and read sides on a fresh database, without HTTP or transport: an event
 * store with the service's inline projection, the command handlers (reading the corpus) and the
 * read model. For tests of what is derived from document streams (snapshots, subscription fields).
 *
 * ```ts
 * const fx = await openContentStoreFixture('content_snapshot');
 * const id = await fx.commands.ingestDocument({ title: 'T', text: 'Hello.' }, { actor: 'tester' });
 * await fx.close();
 * ```
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { requireCorpus } from '../../../config/corpus.ts';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import { createEventStore, type EventStore } from '../../../eventstore/index.ts';
import { PrismaClient } from '../../../prisma/content/generated/client.ts';
import { createCommandHandlers, type CommandHandlers } from '../commandHandlers.ts';
import { projections } from '../projections/index.ts';
import { createReadModel, type ReadModel } from '../readModel.ts';

/** What `openContentStoreFixture` opened. */
export interface ContentStoreFixture {
  db: TestDatabase;
  store: EventStore;
  commands: CommandHandlers;
  readModel: ReadModel;
  /** Closes Prisma and the store, then drops the database. Idempotent. */
  close(): Promise<void>;
}

/** Opens the fixture on a new database `fgtest_<label>_…` with content's migrations. */
export async function openContentStoreFixture(label: string): Promise<ContentStoreFixture> {
  const corpusDir = requireCorpus();
  const db = await createTestDatabase(label);
  await migrateServiceDatabase(db.pool, { service: 'content' });
  const store = createEventStore({ pool: db.pool, inlineProjections: projections });
  const prisma = new PrismaClient({ adapter: new PrismaPg(db.pool) });
  let closing: Promise<void> | undefined;
  return {
    db,
    store,
    commands: createCommandHandlers(store, { corpusDir }),
    readModel: createReadModel(prisma, db.pool),
    close: () =>
      (closing ??= (async () => {
        await prisma.$disconnect();
        await store.close();
        await db.drop();
      })()),
  };
}
