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
import { PrismaClient } from '../../prisma/knowledge/generated/client.ts';
import { startContentConsumer } from './consumers/contentConsumer.ts';
import { startWorkflowsConsumer } from './consumers/workflowsConsumer.ts';
import { startExtractor, type Extractor, type ExtractorOptions } from './extraction/Extractor.ts';
import { createResolvers } from './graphql/resolvers.ts';
import { createKnowledgeLiveFields } from './live/knowledgeLiveFields.ts';
import { projections } from './projections/index.ts';
import { KNOWLEDGE_SOURCE, knowledgePublicEvents } from './publicEvents.ts';
import { createReadModel } from './readModel.ts';
import type { DeliberateError } from '../../federation/formatError.ts';
import { KnowledgeError } from './errors.ts';

/** Path of the subgraph's SDL (also read by the supergraph composer). */
export const KNOWLEDGE_SCHEMA_PATH = fileURLToPath(new URL('./schema.graphql', import.meta.url));

/** Options of `startKnowledgeService`: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface KnowledgeServiceOptions extends SubgraphServiceOptions {
  /** Carries integration events between services (NATS or in-process). Borrowed: not closed by `close()`. */
  transport: IntegrationTransport;
  /** Options of the relay's subscription (poll interval, standby retry...). @default the event store's */
  relaySubscription?: Omit<SubscriptionOptions, 'name' | 'handler' | 'types' | 'batchSize'>;
  /**
   * How long an extraction request waits for its document's chunks, in ms (`KNOWLEDGE_CHUNK_WAIT_MS`),
   * then ends with ExtractionFailed. @default 120_000 (DEFAULT_CHUNK_WAIT_MS)
   */
  chunkWaitMs?: number;
  /**
   * Extraction worker threads, and so documents extracted at once (`KNOWLEDGE_EXTRACTION_WORKERS`),
   * 1..64. @default the cores (`os.availableParallelism()`)
   */
  extractionWorkers?: number;
  /** The extractor's retry and rescan timing (see `ExtractorOptions`). @default its defaults */
  extractorTiming?: Pick<ExtractorOptions, 'retryDelayMs' | 'maxRetryDelayMs' | 'rescanIntervalMs'>;
}

/** A running knowledge service. */
export interface KnowledgeService extends SubgraphService {
  /** The extractor (tests wait on `extractor.idle()`). */
  extractor: Extractor;
  /** Stops consumers, extractor, relay, HTTP server, Prisma and the event store, then the pool if the service created it. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the knowledge subgraph; resolves once it accepts requests and its consumers run.
 * @throws Error when neither `pool` nor `databaseUrl` is given, or when `chunkWaitMs` or an `extractorTiming` value is not a positive number of ms; RangeError when `extractionWorkers` is not an integer from 1 to 64; the listen error (e.g. EADDRINUSE)
 */
export async function startKnowledgeService(options: KnowledgeServiceOptions): Promise<KnowledgeService> {
  if (!options.pool && !options.databaseUrl) throw new Error('startKnowledgeService needs `pool` or `databaseUrl`');
  const logger = options.logger ?? silentLogger;
  const { pool, store, prisma, metrics, close: closeStorage } = openServiceStorage(options, {
    name: 'knowledge',
    logger,
    inlineProjections: projections,
    createPrisma: (adapter) => new PrismaClient({ adapter }),
  });
  const readModel = createReadModel(prisma);
  const parking = createServiceParking({ service: 'knowledge', store, logger, maxAttempts: options.parkAfterAttempts });
  let extractor: Extractor;
  try {
    extractor = startExtractor({ store, pool, logger, chunkWaitMs: options.chunkWaitMs, extractionWorkers: options.extractionWorkers, ...options.extractorTiming });
  } catch (error) {
    await parking.close(); // a bad option: nothing else started yet
    await closeStorage();
    throw error;
  }

  let http: Awaited<ReturnType<typeof serveSubgraph>> | undefined;
  let relay: Subscription | undefined;
  const consumers: IntegrationConsumer[] = [];
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      for (const consumer of consumers.splice(0)) await consumer.close().catch((error: unknown) => logger.warn({ err: error }, 'knowledge: consumer close failed'));
      await extractor.close();
      await relay?.close();
      await http?.close();
      await parking.close();
      await closeStorage();
    })());

  try {
    http = await serveSubgraph({
      name: 'knowledge',
      schemaPath: KNOWLEDGE_SCHEMA_PATH,
      resolvers: withParkingResolvers(createResolvers(readModel), parking),
      port: options.port,
      host: options.host,
      logger,
      readiness: [databaseCheck(pool), migrationsCheck(pool, 'knowledge'), brokerCheck(options.transport)],
      metrics,
      ...(options.identityVerifier ? { identityVerifier: options.identityVerifier } : {}),
      isDeliberateError: (e): e is DeliberateError => e instanceof KnowledgeError || parking.isDeliberateError(e),
      live: { store, fields: createKnowledgeLiveFields({ store, readModel }), codec: options.cursorCodec ?? randomCursorCodec() },
    });
    relay = startRelay(store, { source: KNOWLEDGE_SOURCE, publicEvents: knowledgePublicEvents, transport: options.transport, subscription: options.relaySubscription });
    consumers.push(await startContentConsumer({ store, transport: parking.wrap(options.transport), logger, onChunkStored: (id) => extractor.wake(id) }));
    consumers.push(await startWorkflowsConsumer({ store, transport: parking.wrap(options.transport), logger, onRequested: (id) => extractor.wake(id) }));
    extractor.wake(); // requests left pending by a previous process
  } catch (error) {
    await close();
    throw error;
  }
  logger.info({ url: http.url, transport: options.transport.kind }, 'knowledge subgraph listening');
  return { url: http.url, extractor, close };
}
