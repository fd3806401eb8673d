/**
 * The monitoring subgraph as a running service: its event store (with the inline read-model
 * projection), one durable integration consumer per observed service, and the Apollo subgraph
 * over HTTP. Monitoring publishes no events, so no relay runs. Migrations are NOT applied
 * here: the caller runs `db/migrate.ts` first.
 *
 * ```ts
 * const service = await startMonitoringService({ pool, port: 4004, host: '127.0.0.1', logger, transport });
 * // service.url === 'http://127.0.0.1:4004/graphql'
 * await service.close();
 * ```
 */
import { fileURLToPath } from 'node:url';
import { silentLogger, type IntegrationConsumer, type IntegrationTransport } from '../../eventstore/index.ts';
import { randomCursorCodec } from '../../federation/live/cursor.ts';
import { brokerCheck, databaseCheck, migrationsCheck } from '../../federation/readiness.ts';
import { serveSubgraph } from '../../federation/serveSubgraph.ts';
import { createServiceParking, withParkingResolvers } from '../../federation/parking.ts';
import { openServiceStorage } from '../../federation/serviceStorage.ts';
import type { SubgraphService, SubgraphServiceOptions } from '../../federation/subgraphService.ts';
import { PrismaClient } from '../../prisma/monitoring/generated/client.ts';
import { createResolvers } from './graphql/resolvers.ts';
import { createMonitoringLiveFields } from './live/monitoringLiveFields.ts';
import { observeIntegrationEvent, observeIntegrationEvents } from './observe/observeIntegrationEvent.ts';
import { projections } from './projections/index.ts';
import { createReadModel } from './readModel.ts';
import { createTimelineAsOf, DEFAULT_AS_OF_WAIT_MS } from './timeline/timelineAsOf.ts';
import type { DeliberateError } from '../../federation/formatError.ts';
import { MonitoringError } from './errors.ts';

/** Path of the subgraph's SDL (also read by the supergraph composer). */
export const MONITORING_SCHEMA_PATH = fileURLToPath(new URL('./schema.graphql', import.meta.url));

/** Services whose integration events monitoring observes by default (issue 3). */
export const OBSERVED_SOURCES: readonly string[] = Object.freeze(['workflows', 'content', 'knowledge']);

/** Durable consumer name of monitoring's consumer of `source`: `monitoring-from-<source>`. */
export const consumerNameOf = (source: string) => `monitoring-from-${source}`;

/** Options of `startMonitoringService`: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface MonitoringServiceOptions extends SubgraphServiceOptions {
  /** Where the other services' integration events come from (NATS JetStream or in-process); not closed by `close()`. */
  transport: IntegrationTransport;
  /** Services to observe; every public event type of each is consumed. @default OBSERVED_SOURCES */
  sources?: readonly string[];
  /**
   * How long `WorkflowRun.timeline` as of a run event (a subscription update's run) waits for
   * monitoring to observe that event before answering with what it has observed, in ms (≥ 0).
   * @default 5000 (DEFAULT_AS_OF_WAIT_MS)
   */
  asOfWaitMs?: number;
}

/** A running monitoring service. */
export interface MonitoringService extends SubgraphService {
  /** Stops the consumers, the HTTP server, Prisma and the event store, then the pool if the service created it. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the monitoring subgraph; resolves once it accepts requests and its consumers run.
 * @throws Error when neither `pool` nor `databaseUrl` is given, `sources` is empty or `asOfWaitMs` < 0; the listen error (e.g. EADDRINUSE); the transport's consume error
 */
export async function startMonitoringService(options: MonitoringServiceOptions): Promise<MonitoringService> {
  if (!options.pool && !options.databaseUrl) throw new Error('startMonitoringService needs `pool` or `databaseUrl`');
  const sources = options.sources ?? OBSERVED_SOURCES;
  if (sources.length === 0) throw new Error('startMonitoringService needs at least one source to observe');
  const asOfWaitMs = options.asOfWaitMs ?? DEFAULT_AS_OF_WAIT_MS;
  if (!(asOfWaitMs >= 0)) throw new Error(`asOfWaitMs must be ≥ 0, got ${asOfWaitMs}`);
  const logger = options.logger ?? silentLogger;
  const { pool, store, prisma, metrics, close: closeStorage } = openServiceStorage(options, {
    name: 'monitoring',
    logger,
    inlineProjections: projections,
    createPrisma: (adapter) => new PrismaClient({ adapter }),
  });
  const readModel = createReadModel(pool, prisma);
  const parking = createServiceParking({ service: 'monitoring', store, logger, maxAttempts: options.parkAfterAttempts });
  const transport = parking.wrap(options.transport);

  const consumers: IntegrationConsumer[] = [];
  let http: Awaited<ReturnType<typeof serveSubgraph>> | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const consumer of consumers.splice(0)) {
        await consumer.close().catch((error: unknown) => logger.warn({ err: error }, 'monitoring: consumer close failed'));
      }
      await http?.close();
      await parking.close();
      await closeStorage();
    })());

  try {
    http = await serveSubgraph({
      name: 'monitoring',
      schemaPath: MONITORING_SCHEMA_PATH,
      resolvers: withParkingResolvers(createResolvers(readModel, createTimelineAsOf({ readModel, store, logger, waitMs: asOfWaitMs })), parking),
      port: options.port,
      host: options.host,
      logger,
      readiness: [databaseCheck(pool), migrationsCheck(pool, 'monitoring'), brokerCheck(options.transport)],
      metrics,
      ...(options.identityVerifier ? { identityVerifier: options.identityVerifier } : {}),
      isDeliberateError: (e): e is DeliberateError => e instanceof MonitoringError || parking.isDeliberateError(e),
      live: { store, fields: createMonitoringLiveFields(), codec: options.cursorCodec ?? randomCursorCodec() },
    });
    for (const source of sources) {
      consumers.push(
        await transport.consume({
          consumer: consumerNameOf(source),
          source,
          // No `types`: every public event of the source is observed.
          handler: async (event) => {
            await observeIntegrationEvent(store, event, logger);
          },
          handleBatch: async (events) => {
            await observeIntegrationEvents(store, events, logger);
          },
        }),
      );
    }
  } catch (error) {
    await close();
    throw error;
  }
  logger.info({ url: http.url, sources }, 'monitoring subgraph listening');
  return { url: http.url, close };
}
