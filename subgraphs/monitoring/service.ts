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
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ApolloServer } from '@apollo/server';
import { buildSubgraphSchema } from '@apollo/subgraph';
import { PrismaPg } from '@prisma/adapter-pg';
import { parse } from 'graphql';
import pg from 'pg';
import { createEventStore, silentLogger, type IntegrationConsumer, type IntegrationTransport, type Logger } from '../../eventstore/index.ts';
import { PrismaClient } from '../../prisma/monitoring/generated/client.ts';
import { listenApollo } from '../../federation/httpServer.ts';
import { createFormatError } from './graphql/formatError.ts';
import { createResolvers } from './graphql/resolvers.ts';
import { observeIntegrationEvent, observeIntegrationEvents } from './observe/observeIntegrationEvent.ts';
import { observedEventsProjection } from './projections/observedEventsProjection.ts';
import { createReadModel } from './readModel.ts';

/** Path of the subgraph's SDL (also read by the supergraph composer). */
export const MONITORING_SCHEMA_PATH = fileURLToPath(new URL('./schema.graphql', import.meta.url));

/** Services whose integration events monitoring observes by default (issue 3). */
export const OBSERVED_SOURCES: readonly string[] = Object.freeze(['workflows', 'content', 'knowledge']);

/** Durable consumer name of monitoring's consumer of `source`: `monitoring-from-<source>`. */
export const consumerNameOf = (source: string) => `monitoring-from-${source}`;

/** Options of `startMonitoringService`: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface MonitoringServiceOptions {
  /** Pool on the migrated monitoring database; not ended by `close()`. */
  pool?: pg.Pool;
  /** Connection string; the service creates a pool (max 10) and ends it on `close()`. Ignored when `pool` is given. */
  databaseUrl?: string;
  /** TCP port (0 = any free port). */
  port: number;
  /** Interface to bind. @default '127.0.0.1' */
  host?: string;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /** Where the other services' integration events come from (NATS JetStream or in-process); not closed by `close()`. */
  transport: IntegrationTransport;
  /** Services to observe; every public event type of each is consumed. @default OBSERVED_SOURCES */
  sources?: readonly string[];
}

/** A running monitoring service. */
export interface MonitoringService {
  /** GraphQL endpoint, e.g. `http://127.0.0.1:4004/graphql`. */
  url: string;
  /** Stops the consumers, the HTTP server, Prisma and the event store, then the pool if the service created it. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the monitoring subgraph; resolves once it accepts requests and its consumers run.
 * @throws Error when neither `pool` nor `databaseUrl` is given, or `sources` is empty; the listen error (e.g. EADDRINUSE); the transport's consume error
 */
export async function startMonitoringService(options: MonitoringServiceOptions): Promise<MonitoringService> {
  if (!options.pool && !options.databaseUrl) throw new Error('startMonitoringService needs `pool` or `databaseUrl`');
  const sources = options.sources ?? OBSERVED_SOURCES;
  if (sources.length === 0) throw new Error('startMonitoringService needs at least one source to observe');
  const logger = options.logger ?? silentLogger;
  const ownsPool = !options.pool;
  const pool = options.pool ?? new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
  if (ownsPool) pool.on('error', (error) => logger.error({ err: error }, 'monitoring: idle database connection failed'));

  const store = createEventStore({ pool, inlineProjections: [observedEventsProjection], logger });
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const readModel = createReadModel(pool, prisma);

  const schema = buildSubgraphSchema({ typeDefs: parse(readFileSync(MONITORING_SCHEMA_PATH, 'utf8')), resolvers: createResolvers(readModel) });
  const apollo = new ApolloServer({
    // The composition root (bin/lifecycle.ts) decides what a signal stops, and in which order.
    stopOnTerminationSignals: false,
    schema,
    formatError: createFormatError(logger),
    includeStacktraceInErrorResponses: false,
    logger: apolloLogger(logger),
  });

  const consumers: IntegrationConsumer[] = [];
  let http: Awaited<ReturnType<typeof listenApollo>> | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const consumer of consumers.splice(0)) {
        await consumer.close().catch((error: unknown) => logger.warn({ err: error }, 'monitoring: consumer close failed'));
      }
      await http?.close();
      await prisma.$disconnect().catch((error: unknown) => logger.warn({ err: error }, 'monitoring: prisma disconnect failed'));
      await store.close();
      if (ownsPool) await pool.end();
    })());

  try {
    http = await listenApollo(apollo, {
      port: options.port,
      host: options.host ?? '127.0.0.1',
      context: async () => ({}),
      onError: (error) => logger.error({ err: error }, 'monitoring: HTTP error'),
    });
    for (const source of sources) {
      consumers.push(
        await options.transport.consume({
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

/** Apollo's `(message)` logger shape on top of a pino-style `(object, message)` logger. */
function apolloLogger(logger: Logger) {
  const text = (args: unknown[]) => args.map(String).join(' ');
  return {
    debug: (...args: unknown[]) => logger.debug({}, text(args)),
    info: (...args: unknown[]) => logger.info({}, text(args)),
    warn: (...args: unknown[]) => logger.warn({}, text(args)),
    error: (...args: unknown[]) => logger.error({}, text(args)),
  };
}
