/**
 * The knowledge subgraph as a running service: event store (with the inline graph and
 * extraction projections), its relay (public events → transport), its integration consumers
 * (`knowledge-from-content`: chunks; `knowledge-from-workflows`: EXTRACT steps and
 * cancellations), the extractor, the Prisma read side and the Apollo subgraph over HTTP.
 * Migrations are NOT applied here: the caller runs `db/migrate.ts` first.
 *
 * ```ts
 * const service = await startKnowledgeService({ pool, port: 4003, host: '127.0.0.1', logger, transport });
 * // service.url === 'http://127.0.0.1:4003/graphql'
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
import {
  createEventStore,
  silentLogger,
  startRelay,
  type IntegrationConsumer,
  type IntegrationTransport,
  type Logger,
  type Subscription,
  type SubscriptionOptions,
} from '../../eventstore/index.ts';
import { PrismaClient } from '../../prisma/knowledge/generated/client.ts';
import { listenApollo } from '../../federation/httpServer.ts';
import { startContentConsumer } from './consumers/contentConsumer.ts';
import { startWorkflowsConsumer } from './consumers/workflowsConsumer.ts';
import { startExtractor, type Extractor } from './extraction/Extractor.ts';
import { createFormatError } from './graphql/formatError.ts';
import { createResolvers } from './graphql/resolvers.ts';
import { extractionProjection } from './projections/extractionProjection.ts';
import { graphProjection } from './projections/graphProjection.ts';
import { KNOWLEDGE_SOURCE, knowledgePublicEvents } from './publicEvents.ts';
import { createReadModel } from './readModel.ts';

/** Path of the subgraph's SDL (also read by the supergraph composer). */
export const KNOWLEDGE_SCHEMA_PATH = fileURLToPath(new URL('./schema.graphql', import.meta.url));

/** Options of `startKnowledgeService`: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface KnowledgeServiceOptions {
  /** Pool on the migrated knowledge database; not ended by `close()`. */
  pool?: pg.Pool;
  /** Connection string; the service creates a pool (max 10) and ends it on `close()`. Ignored when `pool` is given. */
  databaseUrl?: string;
  /** TCP port (0 = any free port). */
  port: number;
  /** Interface to bind. @default '127.0.0.1' */
  host?: string;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /** Carries integration events between services (NATS or in-process). Borrowed: not closed by `close()`. */
  transport: IntegrationTransport;
  /** Options of the relay's subscription (poll interval, standby retry...). @default the event store's */
  relaySubscription?: Omit<SubscriptionOptions, 'name' | 'handler' | 'types' | 'batchSize'>;
}

/** A running knowledge service. */
export interface KnowledgeService {
  /** GraphQL endpoint, e.g. `http://127.0.0.1:4003/graphql`. */
  url: string;
  /** The extractor (tests wait on `extractor.idle()`). */
  extractor: Extractor;
  /** Stops consumers, extractor, relay, HTTP server, Prisma and the event store, then the pool if the service created it. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the knowledge subgraph; resolves once it accepts requests and its consumers run.
 * @throws Error when neither `pool` nor `databaseUrl` is given; the listen error (e.g. EADDRINUSE)
 */
export async function startKnowledgeService(options: KnowledgeServiceOptions): Promise<KnowledgeService> {
  if (!options.pool && !options.databaseUrl) throw new Error('startKnowledgeService needs `pool` or `databaseUrl`');
  const logger = options.logger ?? silentLogger;
  const ownsPool = !options.pool;
  const pool = options.pool ?? new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
  if (ownsPool) pool.on('error', (error) => logger.error({ err: error }, 'knowledge: idle database connection failed'));

  const store = createEventStore({ pool, inlineProjections: [graphProjection, extractionProjection], logger });
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const readModel = createReadModel(prisma);
  const extractor = startExtractor({ store, pool, logger });

  const schema = buildSubgraphSchema({ typeDefs: parse(readFileSync(KNOWLEDGE_SCHEMA_PATH, 'utf8')), resolvers: createResolvers(readModel) });
  const apollo = new ApolloServer({
    // The composition root (bin/lifecycle.ts) decides what a signal stops, and in which order.
    stopOnTerminationSignals: false,
    schema,
    formatError: createFormatError(logger),
    includeStacktraceInErrorResponses: false,
    logger: apolloLogger(logger),
  });

  let http: Awaited<ReturnType<typeof listenApollo>> | undefined;
  let relay: Subscription | undefined;
  const consumers: IntegrationConsumer[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const consumer of consumers.splice(0)) await consumer.close().catch((error: unknown) => logger.warn({ err: error }, 'knowledge: consumer close failed'));
      await extractor.close();
      await relay?.close();
      await http?.close();
      await prisma.$disconnect().catch((error: unknown) => logger.warn({ err: error }, 'knowledge: prisma disconnect failed'));
      await store.close();
      if (ownsPool) await pool.end();
    })());

  try {
    http = await listenApollo(apollo, {
      port: options.port,
      host: options.host ?? '127.0.0.1',
      context: async () => ({}),
      onError: (error) => logger.error({ err: error }, 'knowledge: HTTP error'),
    });
    relay = startRelay(store, { source: KNOWLEDGE_SOURCE, publicEvents: knowledgePublicEvents, transport: options.transport, subscription: options.relaySubscription });
    consumers.push(await startContentConsumer({ store, transport: options.transport, logger, onChunkStored: (id) => extractor.wake(id) }));
    consumers.push(await startWorkflowsConsumer({ store, transport: options.transport, logger, onRequested: (id) => extractor.wake(id) }));
    extractor.wake(); // requests left pending by a previous process
  } catch (error) {
    await close();
    throw error;
  }
  logger.info({ url: http.url, transport: options.transport.kind }, 'knowledge subgraph listening');
  return { url: http.url, extractor, close };
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
