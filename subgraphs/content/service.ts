/**
 * The content subgraph as a running service: event store (with the inline read-model
 * projection), command handlers, Prisma read side, Apollo subgraph over HTTP, the relay of its
 * public events and its saga consumer (`content-from-workflows`). Migrations are NOT applied
 * here: the caller runs `db/migrate.ts` first.
 *
 * ```ts
 * const transport = createInProcessTransport();
 * const service = await startContentService({ pool, port: 4002, host: '127.0.0.1', logger, transport, corpusDir: '/srv/corpus' });
 * // service.url === 'http://127.0.0.1:4002/graphql'
 * await service.close();
 * ```
 */
import { fileURLToPath } from 'node:url';
import {
  silentLogger,
  startRelay,
  type IntegrationConsumer,
  type IntegrationTransport,
  type Subscription,
  type SubscriptionOptions,
} from '../../eventstore/index.ts';
import { randomCursorCodec } from '../../federation/live/cursor.ts';
import { brokerCheck, databaseCheck, migrationsCheck } from '../../federation/readiness.ts';
import { serveSubgraph } from '../../federation/serveSubgraph.ts';
import { createServiceParking, withParkingResolvers } from '../../federation/parking.ts';
import { openServiceStorage } from '../../federation/serviceStorage.ts';
import type { SubgraphService, SubgraphServiceOptions } from '../../federation/subgraphService.ts';
import { PrismaClient } from '../../prisma/content/generated/client.ts';
import { createCommandHandlers } from './commandHandlers.ts';
import { corpusDirProblem } from './corpus/corpusDirProblem.ts';
import { createResolvers } from './graphql/resolvers.ts';
import { createContentLiveFields } from './live/contentLiveFields.ts';
import { projections } from './projections/index.ts';
import { CONTENT_SOURCE, contentPublicEvents } from './publicEvents.ts';
import { createReadModel } from './readModel.ts';
import { startIngestStepConsumer } from './saga/ingestStepConsumer.ts';
import type { DeliberateError } from '../../federation/formatError.ts';
import { ContentError } from './errors.ts';

/** Path of the subgraph's SDL (also read by the supergraph composer). */
export const CONTENT_SCHEMA_PATH = fileURLToPath(new URL('./schema.graphql', import.meta.url));

/**
 * Largest GraphQL request body, in bytes: 11 MiB. Above the gateway's own 10 MiB limit
 * (gateway/server.ts `DEFAULT_MAX_BODY_BYTES`) plus room for the query the gateway sends, so
 * that inline `text` the gateway lets through reaches the document rules (DOCUMENT_TOO_LARGE
 * above 16 MiB, reachable through `corpusFile`) instead of an HTTP 413 between the two.
 */
export const CONTENT_MAX_BODY_BYTES = 11 * 1024 * 1024;

/** Options of `startContentService`: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface ContentServiceOptions extends SubgraphServiceOptions {
  /** Carries integration events: the relay publishes content's, the saga consumer reads workflows'. */
  transport: IntegrationTransport;
  /**
   * Directory of `corpusFile` names, absolute or cwd-relative (`FLOWGRAPH_CORPUS_DIR`, resolved
   * by the composition root: config/corpus.ts). When it is missing or has no readable file the
   * service still starts (inline `text` works) and logs a warning naming it.
   */
  corpusDir: string;
  /** Passed to the relay's subscription (poll interval, retry delays: tests shorten them). */
  relaySubscription?: Omit<SubscriptionOptions, 'name' | 'handler' | 'types' | 'batchSize'>;
  /** Time source of every command. @default () => new Date() */
  now?: () => Date;
}

/** A running content service. */
export interface ContentService extends SubgraphService {
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
  const corpusDir = options.corpusDir;
  const corpusProblem = await corpusDirProblem(corpusDir);
  if (corpusProblem) {
    logger.warn(
      { corpusDir, problem: corpusProblem },
      `content: the corpus directory ${corpusDir} ${corpusProblem}: every ingestion by corpusFile will fail with CORPUS_FILE_NOT_FOUND ` +
        '(ingesting by text still works). Clone the repository next to shared/ (the corpus is expected at ../shared/corpus) or set FLOWGRAPH_CORPUS_DIR',
    );
  }
  const { pool, store, prisma, metrics, close: closeStorage } = openServiceStorage(options, {
    name: 'content',
    logger,
    inlineProjections: projections,
    createPrisma: (adapter) => new PrismaClient({ adapter }),
  });
  const commands = createCommandHandlers(store, { corpusDir, now: options.now });
  const readModel = createReadModel(prisma, pool);
  const parking = createServiceParking({ service: 'content', store, logger, maxAttempts: options.parkAfterAttempts });

  let http: Awaited<ReturnType<typeof serveSubgraph>> | undefined;
  let relay: Subscription | undefined;
  let consumer: IntegrationConsumer | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await consumer?.close().catch((error: unknown) => logger.warn({ err: error }, 'content: consumer close failed'));
      await relay?.close().catch((error: unknown) => logger.warn({ err: error }, 'content: relay close failed'));
      await http?.close();
      await parking.close();
      await closeStorage();
    })());

  try {
    http = await serveSubgraph({
      name: 'content',
      schemaPath: CONTENT_SCHEMA_PATH,
      resolvers: withParkingResolvers(createResolvers({ commands, readModel }), parking),
      port: options.port,
      host: options.host,
      logger,
      readiness: [databaseCheck(pool), migrationsCheck(pool, 'content'), brokerCheck(options.transport)],
      metrics,
      ...(options.identityVerifier ? { identityVerifier: options.identityVerifier } : {}),
      isDeliberateError: (e): e is DeliberateError => e instanceof ContentError || parking.isDeliberateError(e),
      maxBodyBytes: CONTENT_MAX_BODY_BYTES,
      live: { store, fields: createContentLiveFields({ store }), codec: options.cursorCodec ?? randomCursorCodec() },
    });
    relay = startRelay(store, { source: CONTENT_SOURCE, publicEvents: contentPublicEvents, transport: options.transport, subscription: options.relaySubscription });
    consumer = await startIngestStepConsumer({ store, transport: parking.wrap(options.transport), corpusDir, logger, now: options.now });
  } catch (error) {
    await close();
    throw error;
  }
  logger.info({ url: http.url, corpusDir, transport: options.transport.kind }, 'content subgraph listening');
  return { url: http.url, close };
}
