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
import type { MetricsOptions } from '../observability/metrics.ts';
import { parseMetricsConfig } from '../config/metricsConfig.ts';
import { createServiceMetrics, type ServiceMetrics } from '../observability/serviceMetrics.ts';

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
  /** The event store on `pool`, reporting to `metrics`. */
  store: EventStore;
  /** The service's Prometheus metrics (serve them with `serveSubgraph({ metrics })`); no-op ones when `metrics.enabled` is false. */
  metrics: ServiceMetrics;
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
 * Opens a service's pool (given or created from `databaseUrl`), its metrics registry
 * (`poolOptions.metrics`, the service options' own; `enabled` defaults to `FLOWGRAPH_METRICS`),
 * event store and Prisma client. Nothing connects yet: connections open on first use. Migrations
 * are not applied.
 * @throws Error when neither `pool` nor `databaseUrl` is given (from `servicePool`); ConfigError
 *   when `metrics.enabled` is not given and FLOWGRAPH_METRICS is invalid
 */
export function openServiceStorage<TPrisma extends { $disconnect(): Promise<void> }>(
  poolOptions: ServicePoolOptions & { metrics?: MetricsOptions },
  options: ServiceStorageOptions<TPrisma>,
): ServiceStorage<TPrisma> {
  const { name, logger } = options;
  const { pool, close: closePool } = servicePool(poolOptions, logger, name);
  const enabled = poolOptions.metrics?.enabled ?? parseMetricsConfig(process.env).enabled;
  const metrics = createServiceMetrics({ ...poolOptions.metrics, enabled, service: name, pool });
  const store = createEventStore({ pool, inlineProjections: options.inlineProjections ?? [], logger, metrics: metrics.store });
  const prisma = options.createPrisma(new PrismaPg(pool));
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await prisma.$disconnect().catch((error: unknown) => logger.warn({ err: error }, `${name}: prisma disconnect failed`));
      await store.close();
      await closePool();
    })());
  return { pool, store, prisma, metrics, close };
}
