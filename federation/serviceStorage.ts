/**
 * The storage side every subgraph service owns: its pg pool (`servicePool.ts`), its event
 * store (with the inline read-model projections) and its Prisma client on that pool, closed
 * together in reverse order of opening.
 *
 * ```ts
 * const storage = openServiceStorage(options, {
 *   name: 'content', logger, inlineProjections: [documentsProjection],
 *   createPrisma: (adapter) => new PrismaClient({ adapter }),
 * });
 * // storage.pool, storage.store, storage.prisma
 * await storage.close();
 * ```
 */
import { PrismaPg } from '@prisma/adapter-pg';
import type pg from 'pg';
import { createEventStore, type EventStore, type EventStoreOptions, type Logger } from '../eventstore/index.ts';
import { servicePool, type ServicePoolOptions } from './servicePool.ts';

/** What `openServiceStorage` opens, besides the pool. */
export interface ServiceStorageOptions<TPrisma extends { $disconnect(): Promise<void> }> {
  /** The service's name in log messages, e.g. `content`. */
  name: string;
  /** pino-compatible logger (pool idle errors, Prisma disconnect failures, the event store's own logs). */
  logger: Logger;
  /** Projections run inside every append transaction of the store. @default none */
  inlineProjections?: EventStoreOptions['inlineProjections'];
  /** Makes the service's generated Prisma client on the given adapter (over the service's pool). */
  createPrisma: (adapter: PrismaPg) => TPrisma;
}

/** A service's open storage. */
export interface ServiceStorage<TPrisma> {
  /** The pool (borrowed or owned, see `servicePool`). */
  pool: pg.Pool;
  /** The event store on `pool`. */
  store: EventStore;
  /** The Prisma client on `pool`. */
  prisma: TPrisma;
  /**
   * Disconnects Prisma (a failure is logged as a warning `<name>: prisma disconnect failed`, not
   * thrown), closes the event store, then ends the pool if it is owned. Idempotent.
   * @throws the event store's or the pool's close error
   */
  close(): Promise<void>;
}

/**
 * Opens a service's pool (given or created from `databaseUrl`), event store and Prisma client.
 * Nothing connects yet: connections open on first use. Migrations are not applied.
 * @throws Error when neither `pool` nor `databaseUrl` is given (from `servicePool`)
 */
export function openServiceStorage<TPrisma extends { $disconnect(): Promise<void> }>(
  poolOptions: ServicePoolOptions,
  options: ServiceStorageOptions<TPrisma>,
): ServiceStorage<TPrisma> {
  const { name, logger } = options;
  const { pool, close: closePool } = servicePool(poolOptions, logger, name);
  const store = createEventStore({ pool, inlineProjections: options.inlineProjections ?? [], logger });
  const prisma = options.createPrisma(new PrismaPg(pool));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await prisma.$disconnect().catch((error: unknown) => logger.warn({ err: error }, `${name}: prisma disconnect failed`));
      await store.close();
      await closePool();
    })());
  return { pool, store, prisma, close };
}
