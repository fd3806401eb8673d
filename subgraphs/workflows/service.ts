/**
 * The workflows subgraph as a running service: event store (with the inline read-model
 * projections), command handlers, Prisma read side, Apollo subgraph over HTTP, the
 * DeadlineScanner and, with a `transport` (issue 3), the relay of its public events
 * (publicEvents.ts) and the saga consumers (saga/sagaConsumers.ts). Migrations are NOT
 * applied here: the caller runs `db/migrate.ts` first.
 *
 * ```ts
 * const service = await startWorkflowsService({ pool, port: 4001, host: '127.0.0.1', logger, transport });
 * // service.url === 'http://127.0.0.1:4001/graphql'
 * await service.close();
 * ```
 */
import { fileURLToPath } from 'node:url';
import {
  silentLogger,
  startRelay,
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
import { PrismaClient } from '../../prisma/workflows/generated/client.ts';
import { systemClock, type Clock } from './clock.ts';
import { createCommandHandlers } from './commandHandlers.ts';
import { DEFAULT_DEADLINE_SCAN_INTERVAL_MS, startDeadlineScanner } from './deadlines/DeadlineScanner.ts';
import { createResolvers } from './graphql/resolvers.ts';
import { createWorkflowsLiveFields } from './live/workflowsLiveFields.ts';
import { projections } from './projections/index.ts';
import { WORKFLOWS_SOURCE, workflowsPublicEvents } from './publicEvents.ts';
import { createReadModel } from './readModel.ts';
import { startSagaConsumers } from './saga/sagaConsumers.ts';
import type { DeliberateError } from '../../federation/formatError.ts';
import { WorkflowsError } from './errors.ts';

/** Path of the subgraph's SDL (also read by the supergraph composer). */
export const WORKFLOWS_SCHEMA_PATH = fileURLToPath(new URL('./schema.graphql', import.meta.url));

export { DEFAULT_DEADLINE_SCAN_INTERVAL_MS };

/** Options of `startWorkflowsService`: give `pool` (borrowed) or `databaseUrl` (owned). */
export interface WorkflowsServiceOptions extends SubgraphServiceOptions {
  /** Pause between deadline scans, in ms (> 0). @default 1000 */
  deadlineScanIntervalMs?: number;
  /** Time source of every command. @default the system clock */
  clock?: Clock;
  /**
   * Integration transport (issue 3). When given, the service relays its public events
   * (`workflows.<EventType>`) and consumes content's and knowledge's step reports
   * (`workflows-from-content`, `workflows-from-knowledge`). Borrowed: not closed by `close()`.
   * Without it, INGEST and EXTRACT steps start but nothing completes them (only their deadline).
   */
  transport?: IntegrationTransport;
  /** Polling and retry options of the relay's subscription. @default the subscription defaults (poll 1000 ms) */
  relaySubscription?: Omit<SubscriptionOptions, 'name' | 'handler' | 'types' | 'batchSize'>;
}

/** A running workflows service. */
export interface WorkflowsService extends SubgraphService {
  /**
   * Stops the scanner, the saga consumers, the relay, the HTTP server, Prisma and the event
   * store, then the pool if the service created it. Idempotent.
   */
  close(): Promise<void>;
}

/**
 * Starts the workflows subgraph; resolves once it accepts requests.
 * @throws Error when neither `pool` nor `databaseUrl` is given or `deadlineScanIntervalMs` ≤ 0; the listen error (e.g. EADDRINUSE)
 */
export async function startWorkflowsService(options: WorkflowsServiceOptions): Promise<WorkflowsService> {
  if (!options.pool && !options.databaseUrl) throw new Error('startWorkflowsService needs `pool` or `databaseUrl`');
  const intervalMs = options.deadlineScanIntervalMs ?? DEFAULT_DEADLINE_SCAN_INTERVAL_MS;
  if (!(intervalMs > 0)) throw new Error(`deadlineScanIntervalMs must be > 0, got ${intervalMs}`);
  const logger = options.logger ?? silentLogger;
  const clock = options.clock ?? systemClock;
  const { pool, store, prisma, metrics, close: closeStorage } = openServiceStorage(options, {
    name: 'workflows',
    logger,
    inlineProjections: projections,
    createPrisma: (adapter) => new PrismaClient({ adapter }),
  });
  const commands = createCommandHandlers(store, clock);
  const readModel = createReadModel(prisma);
  const parking = createServiceParking({ service: 'workflows', store, logger, maxAttempts: options.parkAfterAttempts });

  let http: Awaited<ReturnType<typeof serveSubgraph>> | undefined;
  let scanner: ReturnType<typeof startDeadlineScanner> | undefined;
  let consumers: { close(): Promise<void> } | undefined;
  let relay: Subscription | undefined;
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await scanner?.close();
      await consumers?.close();
      await relay?.close();
      await http?.close();
      await parking.close();
      await closeStorage();
    })());

  try {
    http = await serveSubgraph({
      name: 'workflows',
      schemaPath: WORKFLOWS_SCHEMA_PATH,
      resolvers: withParkingResolvers(createResolvers({ commands, readModel, store }), parking),
      port: options.port,
      host: options.host,
      logger,
      readiness: [databaseCheck(pool), migrationsCheck(pool, 'workflows'), ...(options.transport ? [brokerCheck(options.transport)] : [])],
      metrics,
      ...(options.identityVerifier ? { identityVerifier: options.identityVerifier } : {}),
      isDeliberateError: (e): e is DeliberateError => e instanceof WorkflowsError || parking.isDeliberateError(e),
      live: { store, fields: createWorkflowsLiveFields({ store }), codec: options.cursorCodec ?? randomCursorCodec() },
    });
    scanner = startDeadlineScanner({ pool, commands, clock, intervalMs, logger });
    if (options.transport) {
      consumers = await startSagaConsumers({ store, transport: parking.wrap(options.transport), clock, logger });
      relay = startRelay(store, {
        source: WORKFLOWS_SOURCE,
        publicEvents: workflowsPublicEvents,
        transport: options.transport,
        ...(options.relaySubscription ? { subscription: options.relaySubscription } : {}),
      });
    }
  } catch (error) {
    await close();
    throw error;
  }
  logger.info({ url: http.url, deadlineScanIntervalMs: intervalMs, transport: options.transport?.kind ?? 'none' }, 'workflows subgraph listening');
  return { url: http.url, close };
}
