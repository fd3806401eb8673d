/**
 * The workflows write and read sides on a fresh database, without HTTP: an event store with the
 * service's inline projections, the command handlers on a clock the test moves, and the Prisma
 * read model. For tests of what is derived from run streams (snapshots, subscription fields).
 *
 * ```ts
 * const fx = await openRunFixture('workflows_snapshot');
 * const runId = await fx.commands.startRun('wf', {}, null, fx.meta);
 * fx.advance(60_000);
 * await fx.close();
 * ```
 */
import { PrismaPg } from '@prisma/adapter-pg';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import { createEventStore, type EventStore, type RecordedEvent } from '../../../eventstore/index.ts';
import { PrismaClient } from '../../../prisma/workflows/generated/client.ts';
import { createCommandHandlers, type CommandHandlers, type RequestMetadata } from '../commandHandlers.ts';
import { projections } from '../projections/index.ts';
import { createReadModel, type ReadModel } from '../readModel.ts';
import { runStreamId } from '../run/events.ts';
import type { StepDefinition, StepKind } from '../workflow/events.ts';

/** What `openRunFixture` opened. */
export interface RunFixture {
  db: TestDatabase;
  store: EventStore;
  commands: CommandHandlers;
  readModel: ReadModel;
  /** Metadata of every command the test sends. */
  meta: RequestMetadata;
  /** The clock's current time. */
  now(): Date;
  /** Moves the clock forward by `ms`. */
  advance(ms: number): void;
  /** Defines workflow `id` with `steps` as `[name, kind, maxAttempts?, backoffMs?, timeoutMs?]`. */
  define(id: string, steps: [string, StepKind, number?, number?, number?][]): Promise<string>;
  /** The run's whole stream. */
  history(runId: string): Promise<RecordedEvent[]>;
  /** Closes Prisma and the store, then drops the database. Idempotent. */
  close(): Promise<void>;
}

/** Opens the fixture on a new database `fgtest_<label>_…` with workflows' migrations. */
export async function openRunFixture(label: string): Promise<RunFixture> {
  const db = await createTestDatabase(label);
  await migrateServiceDatabase(db.pool, { service: 'workflows' });
  const store = createEventStore({ pool: db.pool, inlineProjections: projections });
  const prisma = new PrismaClient({ adapter: new PrismaPg(db.pool) });
  let now = new Date('2025-01-01T00:00:00.000Z');
  const commands = createCommandHandlers(store, () => now);
  let closing: Promise<void> | undefined;
  return {
    db,
    store,
    commands,
    readModel: createReadModel(prisma),
    meta: { actor: 'tester', correlationId: 'corr-live' },
    now: () => now,
    advance(ms) {
      now = new Date(now.getTime() + ms);
    },
    async define(id, steps) {
      const definitions: StepDefinition[] = steps.map(([name, kind, maxAttempts = 1, backoffMs = 0, timeoutMs = 60_000]) => ({
        name,
        kind,
        retryPolicy: { maxAttempts, backoffMs },
        timeoutMs,
      }));
      return commands.defineWorkflow({ id, name: id, steps: definitions }, { actor: 'tester' });
    },
    history: (runId) => store.readStream(runStreamId(runId)),
    close: () =>
      (closing ??= (async () => {
        await prisma.$disconnect();
        await store.close();
        await db.drop();
      })()),
  };
}
