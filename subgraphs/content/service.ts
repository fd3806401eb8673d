/**
 * The content subgraph as a running service: event store (with the inline read-model
 * projection), command handlers, Prisma read side, Apollo subgraph over HTTP, the relay of its
 * public events and its saga consumer (`content-from-workflows`). Migrations are NOT applied
 * here: the caller runs `db/migrate.ts` first.
 *
 * ```ts
 * const transport = createInProcessTransport();
 * const service = await startContentService({ pool, port: 4002, host: '127.0.0.1', logger, transport });
 * // service.url === 'http://127.0.0.1:4002/graphql'
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
import { PrismaClient } from '../../prisma/content/generated/client.ts';
import { createCommandHandlers } from './commandHandlers.ts';
import { DEFAULT_CORPUS_DIR } from './corpus/readCorpusFile.ts';
import { contextFromHeaders, type RequestContext } from '../../federation/requestContext.ts';
import { createFormatError } from './graphql/formatError.ts';
import { listenApollo } from '../../federation/httpServer.ts';
import { createResolvers } from './graphql/resolvers.ts';
import { documentsProjection } from './projections/documentsProjection.ts';
import { CONTENT_SOURCE, contentPublicEvents } from './publicEvents.ts';
import { createReadModel } from './readModel.ts';
import { startIngestStepConsumer } from './saga/ingestStepConsumer.ts';

/** Path of the subgraph's SDL (also read by the supergraph composer). */
export const CONTENT_SCHEMA_PATH = fileURLToPath(new URL('./schema.graphql', import.meta.url));

/** Largest GraphQL request body, in bytes: 4 MiB (inline `text` of a large book). */
export const CONTENT_MAX_BODY_BYTES = 4 * 1024 * 1024;

/** Options of `startContentService`: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface ContentServiceOptions {
  /** Pool on the migrated content database; not ended by `close()`. */
  pool?: pg.Pool;
  /** Connection string; the service creates a pool (max 10) and ends it on `close()`. Ignored when `pool` is given. */
  databaseUrl?: string;
  /** TCP port (0 = any free port). */
  port: number;
  /** Interface to bind. @default '127.0.0.1' */
  host?: string;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /** Carries integration events: the relay publishes content's, the saga consumer reads workflows'. */
  transport: IntegrationTransport;
  /**
   * Directory of `corpusFile` names (`FLOWGRAPH_CORPUS_DIR`, parsed by the composition root).
   * @default `<repo>/../shared/corpus`
   */
  corpusDir?: string;
  /** Passed to the relay's subscription (poll interval, retry delays: tests shorten them). */
  relaySubscription?: Omit<SubscriptionOptions, 'name' | 'handler' | 'types' | 'batchSize'>;
  /** Time source of every command. @default () => new Date() */
  now?: () => Date;
}

/** A running content service. */
export interface ContentService {
  /** GraphQL endpoint, e.g. `http://127.0.0.1:4002/graphql`. */
  url: string;
  /** Stops the consumer, the relay, the HTTP server, Prisma and the event store, then the pool if the service created it. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the content subgraph; resolves once it accepts requests and its relay and consumer run.
 * @throws Error when neither `pool` nor `databaseUrl` is given; the listen error (e.g. EADDRINUSE)
 */
export async function startContentService(options: ContentServiceOptions): Promise<ContentService> {
  if (!options.pool && !options.databaseUrl) throw new Error('startContentService needs `pool` or `databaseUrl`');
  const logger = options.logger ?? silentLogger;
  const corpusDir = options.corpusDir ?? DEFAULT_CORPUS_DIR;
  const ownsPool = !options.pool;
  const pool = options.pool ?? new pg.Pool({ connectionString: options.databaseUrl, max: 10 });
  if (ownsPool) pool.on('error', (error) => logger.error({ err: error }, 'content: idle database connection failed'));

  const store = createEventStore({ pool, inlineProjections: [documentsProjection], logger });
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  const commands = createCommandHandlers(store, { corpusDir, now: options.now });
  const readModel = createReadModel(prisma, pool);

  const schema = buildSubgraphSchema({
    typeDefs: parse(readFileSync(CONTENT_SCHEMA_PATH, 'utf8')),
    resolvers: createResolvers({ commands, readModel }),
  });
  const apollo = new ApolloServer<RequestContext>({
    // The composition root (bin/lifecycle.ts) decides what a signal stops, and in which order.
    stopOnTerminationSignals: false,
    schema,
    formatError: createFormatError(logger),
    includeStacktraceInErrorResponses: false,
    logger: apolloLogger(logger),
  });

  let http: Awaited<ReturnType<typeof listenApollo>> | undefined;
  let relay: Subscription | undefined;
  let consumer: IntegrationConsumer | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await consumer?.close().catch((error: unknown) => logger.warn({ err: error }, 'content: consumer close failed'));
      await relay?.close().catch((error: unknown) => logger.warn({ err: error }, 'content: relay close failed'));
      await http?.close();
      await prisma.$disconnect().catch((error: unknown) => logger.warn({ err: error }, 'content: prisma disconnect failed'));
      await store.close();
      if (ownsPool) await pool.end();
    })());

  try {
    http = await listenApollo(apollo, {
      port: options.port,
      host: options.host ?? '127.0.0.1',
      maxBodyBytes: CONTENT_MAX_BODY_BYTES,
      context: async ({ req }) =>
        contextFromHeaders((name) => {
          const value = req.headers[name];
          return Array.isArray(value) ? value[0] : value;
        }),
      onError: (error) => logger.error({ err: error }, 'content: HTTP error'),
    });
    relay = startRelay(store, { source: CONTENT_SOURCE, publicEvents: contentPublicEvents, transport: options.transport, subscription: options.relaySubscription });
    consumer = await startIngestStepConsumer({ store, transport: options.transport, corpusDir, logger, now: options.now });
  } catch (error) {
    await close();
    throw error;
  }
  logger.info({ url: http.url, corpusDir, transport: options.transport.kind }, 'content subgraph listening');
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
