/**
 * `createEventStore`: the event store over one PostgreSQL database (the `eventstore` schema
 * made by `migrateEventStore`). The store borrows the pool it is given and never ends it.
 */
import type pg from 'pg';
import { appendBatch, isConcurrentDuplicate } from './append.ts';
import { ConnectionLostError, WrongExpectedVersionError } from './errors.ts';
import { Notifier } from './notify.ts';
import { createFollower, type FollowOptions, type LogFollower } from './follow.ts';
import { headPosition, readAll, readStream, toRecordedEvent } from './read.ts';
import { silentLogger, type Logger } from './logger.ts';
import { traceAppend } from '../observability/eventstoreSpans.ts';
import { NOOP_EVENT_STORE_METRICS, type AppendOutcome, type EventStoreMetrics } from './metrics.ts';
import { ADVISORY_LOCK } from './schema.ts';
import { createSubscription, type Subscription, type SubscriptionOptions } from './subscribe.ts';
import { checkStreamId, expectedVersionText, prepareBatch } from './validate.ts';
import type {
  AppendOptions,
  AppendResult,
  LogPosition,
  NewEvent,
  Projection,
  ReadAllOptions,
  ReadAllResult,
  ReadStreamOptions,
  RecordedEvent,
  Upcasters,
} from './types.ts';

/** Default limit of one event's `data`: 256 KiB of UTF-8 JSON (DESIGN.md, "Limits"). */
export const DEFAULT_MAX_EVENT_BYTES = 256 * 1024;

/** Options of `createEventStore`. */
export interface EventStoreOptions {
  /** Pool on the service's database. Borrowed: `close()` does not end it. */
  pool: pg.Pool;
  /** Largest `data` of one event in UTF-8 bytes of JSON. @default 262144 (256 KiB) */
  maxEventBytes?: number;
  /** Projections run inside every append transaction that stores an event they handle. */
  inlineProjections?: readonly Projection[];
  /** Payload upcasters applied on every read. */
  upcasters?: Upcasters;
  /** pino-compatible logger. @default silent */
  logger?: Logger;
  /** Where appends and subscriptions report (`eventstore/metrics.ts`). @default NOOP_EVENT_STORE_METRICS */
  metrics?: EventStoreMetrics;
  /**
   * Shortest time between two cross-process wake-up hints (`pg_notify`) of this store, in ms
   * (`eventstore/notify.ts`). @default 5
   */
  notifyIntervalMs?: number;
}

/** Appends inside a transaction opened by `EventStore.transaction`. */
export interface EventStoreTransaction {
  /** Same as `EventStore.appendToStream`, inside this transaction (inline projections included). */
  appendToStream(streamId: string, events: readonly NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  /** Same as `EventStore.readStream`, inside this transaction (sees its own appends). */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** The transaction's connection, for the caller's own SQL in the same transaction. */
  client: pg.PoolClient;
}

/** The event store. See DESIGN.md, "Event store semantics", for its guarantees. */
export interface EventStore {
  readonly pool: pg.Pool;
  readonly logger: Logger;
  readonly upcasters: Upcasters | undefined;
  /** The metrics hooks given to `createEventStore` (no-op ones by default). */
  readonly metrics: EventStoreMetrics;
  /**
   * Appends `events` to `streamId` atomically.
   * @returns positions of the batch; for a retry whose event ids are all stored, the original result with `duplicate: true`
   * @throws WrongExpectedVersionError (stream, expected, actual), InvalidExpectedVersionError,
   *   EmptyBatchError, InvalidStreamIdError, InvalidEventDataError, EventTooLargeError,
   *   EventIdConflictError — in every case nothing is stored.
   */
  appendToStream(streamId: string, events: readonly NewEvent[], options?: AppendOptions): Promise<AppendResult>;
  /**
   * Runs `work` in one transaction that may append to several streams and run the caller's
   * SQL; commits when it resolves, rolls back when it throws. Takes the appenders lock first
   * (readers must know about every appender before it writes).
   * @throws whatever `work` throws; TransactionConflictError when a multi-stream transaction must be retried;
   *   ConnectionLostError when PostgreSQL ended the session before the transaction committed (the process lives on)
   */
  transaction<T>(work: (tx: EventStoreTransaction) => Promise<T>): Promise<T>;
  /** Reads one stream in stream-position order. `[]` when it does not exist. */
  readStream(streamId: string, options?: ReadStreamOptions): Promise<RecordedEvent[]>;
  /** Reads the whole log after a position, gap-safe (optionally one stream's or some types' events only). */
  readAll(options?: ReadAllOptions): Promise<ReadAllResult>;
  /**
   * The log's head now: every event at or before it is committed and visible, and none can
   * still appear at or before it; what a `readAll` that read everything would return as
   * `position`. Follow `after` it to receive exactly what is appended from now on. One cheap
   * statement (no read of the events table).
   * @throws the database error when PostgreSQL cannot be reached
   */
  headPosition(): Promise<LogPosition>;
  /** Starts a catch-up subscription (see `SubscriptionOptions`). */
  subscribe(options: SubscriptionOptions): Subscription;
  /**
   * Starts a non-durable tail of the log after `options.after` (see `FollowOptions`): no
   * checkpoint, no lock, no transaction; read errors are retried from the last position handed
   * out, so it survives PostgreSQL restarts without skipping an event.
   * @throws InvalidEventDataError, InvalidStreamIdError, TypeError for bad options; Error when the store is closed
   */
  follow(options: FollowOptions): LogFollower;
  /** Registers a wake-up callback, called after appends commit (any process). @returns unregister */
  onAppended(callback: () => void): () => void;
  /** Turns a stored row shape into a RecordedEvent (upcasting applied). Internal use. */
  readonly toRecordedEvent: typeof toRecordedEvent;
  /** Closes subscriptions, followers and the notifier. Idempotent. Does not end the pool. */
  close(): Promise<void>;
}

/** Creates an event store on `options.pool`. Does not touch the database until first use. */
export function createEventStore(options: EventStoreOptions): EventStore {
  const { pool, upcasters } = options;
  const logger = options.logger ?? silentLogger;
  const maxEventBytes = options.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  const inline = options.inlineProjections ?? [];
  const metrics = options.metrics ?? NOOP_EVENT_STORE_METRICS;
  const notifier = new Notifier(pool, logger, options.notifyIntervalMs);
  const subscriptions = new Set<Subscription>();
  const followers = new Set<LogFollower>();
  let closed = false;

  const inlineFor = (types: readonly string[]) => inline.filter((p) => p.handles.some((t) => types.includes(t)));
  const batchTypesOf = (events: readonly NewEvent[]) => (Array.isArray(events) ? events.map((e) => e?.type) : []);

  /** Runs the inline projections handling any of the batch's events, in the append's transaction. */
  async function runInlineProjections(client: pg.PoolClient, result: AppendResult, batchSize: number): Promise<void> {
    if (result.duplicate) return;
    const events = await readStream(client, upcasters, result.streamId, {
      from: result.nextExpectedVersion - batchSize + 1,
      count: batchSize,
    });
    for (const projection of inline) {
      const handled = events.filter((e) => projection.handles.includes(e.type));
      if (handled.length > 0) await projection.apply(handled, client);
    }
  }

  async function appendIn(
    db: pg.Pool | pg.PoolClient,
    streamId: string,
    events: readonly NewEvent[],
    appendOptions: AppendOptions | undefined,
  ): Promise<{ result: AppendResult; batchSize: number }> {
    checkStreamId(streamId);
    const expected = expectedVersionText(appendOptions?.expectedVersion);
    const batch = prepareBatch(streamId, events, appendOptions?.metadata, maxEventBytes);
    const started = performance.now();
    let outcome: AppendOutcome = 'error';
    try {
      const result = await appendBatch(db, streamId, expected, batch);
      outcome = result.duplicate ? 'duplicate' : 'ok';
      return { result, batchSize: batch.eventIds.length };
    } catch (error) {
      if (error instanceof WrongExpectedVersionError) outcome = 'conflict';
      throw error;
    } finally {
      metrics.appended(outcome, batch.eventIds.length, (performance.now() - started) / 1000);
    }
  }

  async function transaction<T>(work: (tx: EventStoreTransaction) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let appended = false;
    // A checked-out pg client emits 'error' when the server ends its session between
    // statements; without a listener that is an uncaught exception that ends the process.
    let lost: Error | undefined;
    let committing = false;
    const onLost = (error: Error) => {
      lost ??= error;
    };
    client.on('error', onLost);
    try {
      await client.query('BEGIN');
      await client.query(
        "SELECT pg_advisory_xact_lock_shared($1, $2), set_config('flowgraph.appender', 'on', true)",
        [ADVISORY_LOCK.namespace, ADVISORY_LOCK.appenders],
      );
      const tx: EventStoreTransaction = {
        client,
        readStream: (streamId, readOptions) => readStream(client, upcasters, streamId, readOptions),
        async appendToStream(streamId, events, appendOptions) {
          // Tracing on: the append (inline projections included) in a span (observability/eventstoreSpans.ts).
          const { result } = await traceAppend(streamId, events, appendOptions, async (traced) => {
            const appendedBatch = await appendIn(client, streamId, events, traced);
            if (inlineFor(batchTypesOf(events)).length > 0) await runInlineProjections(client, appendedBatch.result, appendedBatch.batchSize);
            return appendedBatch;
          });
          if (!result.duplicate) appended = true;
          return result;
        },
      };
      const value = await work(tx);
      committing = true;
      await client.query('COMMIT');
      if (appended) notifier.hint();
      return value;
    } catch (error) {
      if (lost === undefined && isConnectionEnded(error)) lost = error as Error;
      if (lost !== undefined) throw new ConnectionLostError(committing ? 'unknown' : 'rolled back', lost);
      await client.query('ROLLBACK').catch(() => {});
      throw error;
    } finally {
      client.off('error', onLost);
      // A broken connection is destroyed, never handed out again.
      client.release(lost);
    }
  }

  async function appendToStream(streamId: string, events: readonly NewEvent[], appendOptions?: AppendOptions): Promise<AppendResult> {
    const needsTransaction = inlineFor(batchTypesOf(events)).length > 0;
    for (let attempt = 1; ; attempt++) {
      try {
        if (needsTransaction) return await transaction((tx) => tx.appendToStream(streamId, events, appendOptions));
        const { result } = await traceAppend(streamId, events, appendOptions, (traced) => appendIn(pool, streamId, events, traced));
        if (!result.duplicate) notifier.hint();
        return result;
      } catch (error) {
        // Two identical retries racing into different streams' locks can meet on the unique
        // event_id; the second attempt sees the stored events and answers as a duplicate.
        if (attempt < 2 && isConcurrentDuplicate(error)) continue;
        throw error;
      }
    }
  }

  const store: EventStore = {
    pool,
    logger,
    upcasters,
    metrics,
    appendToStream,
    transaction,
    readStream: (streamId, readOptions) => readStream(pool, upcasters, streamId, readOptions),
    readAll: (readOptions) => readAll(pool, upcasters, readOptions),
    headPosition: () => headPosition(pool),
    subscribe(subscriptionOptions) {
      if (closed) throw new Error('event store is closed');
      const subscription = createSubscription(store, subscriptionOptions, notifier);
      subscriptions.add(subscription);
      subscription.closed.then(() => subscriptions.delete(subscription)).catch(() => {});
      return subscription;
    },
    follow(followOptions) {
      if (closed) throw new Error('event store is closed');
      const follower = createFollower(store, followOptions, notifier);
      followers.add(follower);
      void follower.closed.then(() => followers.delete(follower));
      return follower;
    },
    onAppended: (callback) => notifier.onWake(callback),
    toRecordedEvent,
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all([...subscriptions, ...followers].map((s) => s.close()));
      await notifier.close();
    },
  };
  return store;
}

/** The driver's errors of a session the server ended (SQLSTATE class 57P0x, or the socket gone). */
function isConnectionEnded(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown } | null;
  if (!e || typeof e !== 'object') return false;
  if (typeof e.code === 'string' && /^57P0[123]$/.test(e.code)) return true;
  return typeof e.message === 'string' && /Connection terminated|Client has encountered a connection error|not queryable/i.test(e.message);
}
