/**
 * Catch-up subscriptions (DESIGN.md, "Subscriptions"): read the log from the subscription's
 * checkpoint, hand each batch to the handler inside a transaction that also moves the
 * checkpoint (compare-and-set), then wait for a wake-up hint or the poll interval.
 *
 * One active consumer per subscription name across all processes: the consumer holds a
 * session advisory lock on a dedicated connection and runs its transactions on that same
 * connection, so a consumer whose connection died can neither hold the lock nor commit. A
 * standby retries the lock and takes over from the stored checkpoint; the connection
 * reconnects on its own (with backoff) after PostgreSQL restarts.
 */
import pg from 'pg';
import { CheckpointConflictError, TransactionConflictError, WrongExpectedVersionError } from './errors.ts';
import { LOG_START } from './cursor.ts';
import { briefError } from './logger.ts';
import { readAll } from './read.ts';
import { ADVISORY_LOCK } from './schema.ts';
import type { Notifier } from './notify.ts';
import type { EventStore } from './store.ts';
import type { LogPosition, RecordedEvent } from './types.ts';

/** What a handler receives besides its events. */
export interface SubscriptionHandlerContext {
  /** The open transaction's connection: write the effects here to commit them with the checkpoint. */
  client: pg.ClientBase;
  subscriptionName: string;
}

/** Options of `EventStore.subscribe`. */
export interface SubscriptionOptions {
  /** Checkpoint name, unique per consumer group (1-200 characters). */
  name: string;
  /**
   * Called with each batch in log order. Throwing rolls the batch back; it is retried after
   * `retryDelayMs` (doubling up to 30 s). Delivery is at-least-once for effects outside
   * `ctx.client`'s transaction, exactly-once for effects written through it.
   */
  handler(events: RecordedEvent[], ctx: SubscriptionHandlerContext): Promise<void>;
  /** Only these event types reach the handler. @default all */
  types?: readonly string[];
  /** Most events per handler call. @default 500 */
  batchSize?: number;
  /** Re-read interval when no hint arrives, in ms (covers lost hints). @default 1000 */
  pollIntervalMs?: number;
  /** How often a standby tries to become the active consumer, in ms. @default 1000 */
  standbyRetryMs?: number;
  /** First delay after a failed batch or a lost connection, in ms. @default 200 */
  retryDelayMs?: number;
  /** Called after each committed batch (for metrics and tests). */
  onCommitted?(events: RecordedEvent[], checkpoint: LogPosition): void;
}

/** Lifecycle phases of a subscription. */
export type SubscriptionState = 'connecting' | 'standby' | 'active' | 'closed';

/** A running subscription. */
export interface Subscription {
  readonly name: string;
  /** Current phase: only one consumer per name is `active` at a time. */
  readonly state: SubscriptionState;
  /** Last checkpoint this consumer committed or loaded; `null` before it was active. */
  readonly checkpoint: LogPosition | null;
  /** Resolves once the subscription has stopped. */
  readonly closed: Promise<void>;
  /** Stops it, waiting for an in-flight batch to finish and releasing the lock. Idempotent. */
  close(): Promise<void>;
}

const MAX_RETRY_DELAY_MS = 30_000;

/** Starts a subscription on `store`. Used through `EventStore.subscribe`. */
export function createSubscription(store: EventStore, options: SubscriptionOptions, notifier: Notifier): Subscription {
  const { name, handler, types } = options;
  if (typeof name !== 'string' || name.length === 0 || name.length > 200) throw new Error('subscription name must be 1-200 characters');
  const batchSize = options.batchSize ?? 500;
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const standbyRetryMs = options.standbyRetryMs ?? 1000;
  const retryDelayMs = options.retryDelayMs ?? 200;
  const log = store.logger;
  // Its lag is measured from the stored checkpoint (observability/serviceMetrics.ts), also while it is stopped.
  const metrics = store.metrics;
  metrics?.subscriptionStarted({ name, types });

  let state: SubscriptionState = 'connecting';
  let checkpoint: LogPosition | null = null;
  let closing = false;
  let client: pg.Client | undefined;
  let broken = false;

  // Wake-ups: a flag so that a hint arriving between a read and the wait is not lost.
  let woken = false;
  let wake: (() => void) | undefined;
  const unregister = notifier.onWake(() => {
    woken = true;
    wake?.();
  });
  const sleep = (ms: number, interruptible: boolean) =>
    new Promise<void>((resolve) => {
      if (closing || (interruptible && woken)) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = interruptible ? done : undefined;
      stopSleeping = done;
    });
  let stopSleeping: (() => void) | undefined;

  async function connect(): Promise<pg.Client> {
    const c = new pg.Client({ ...store.pool.options, application_name: `flowgraph:sub:${name}`.slice(0, 63) });
    broken = false;
    c.on('error', (error) => {
      broken = true;
      log.warn({ err: error, subscription: name }, 'eventstore: subscription connection error');
    });
    c.on('end', () => {
      broken = true;
    });
    await c.connect();
    return c;
  }

  async function loadCheckpoint(c: pg.Client): Promise<LogPosition | null> {
    const { rows } = await c.query<{ transaction_id: string; global_position: string }>(
      'SELECT transaction_id::text AS transaction_id, global_position::text AS global_position FROM eventstore.checkpoints WHERE subscription_name = $1',
      [name],
    );
    const row = rows[0];
    return row ? { transactionId: row.transaction_id, globalPosition: row.global_position } : null;
  }

  /** Compare-and-set: only moves the checkpoint from the value this consumer last saw. */
  async function storeCheckpoint(c: pg.Client, previous: LogPosition | null, next: LogPosition): Promise<void> {
    const result = previous
      ? await c.query(
          `UPDATE eventstore.checkpoints SET transaction_id = $2::xid8, global_position = $3, updated_at = now()
            WHERE subscription_name = $1 AND transaction_id = $4::xid8 AND global_position = $5`,
          [name, next.transactionId, next.globalPosition, previous.transactionId, previous.globalPosition],
        )
      : await c.query(
          `INSERT INTO eventstore.checkpoints (subscription_name, transaction_id, global_position)
           VALUES ($1, $2::xid8, $3) ON CONFLICT (subscription_name) DO NOTHING`,
          [name, next.transactionId, next.globalPosition],
        );
    if (result.rowCount !== 1) throw new CheckpointConflictError(name);
  }

  async function consume(c: pg.Client): Promise<void> {
    checkpoint = await loadCheckpoint(c);
    let position = checkpoint ?? LOG_START;
    let delay = retryDelayMs;
    while (!closing) {
      woken = false;
      const page = await readAll(c, store.upcasters, { after: position, count: batchSize, types });
      if (page.events.length > 0) {
        const last = page.events[page.events.length - 1]!;
        const next = { transactionId: last.transactionId, globalPosition: last.globalPosition };
        try {
          await c.query('BEGIN');
          await handler(page.events, { client: c, subscriptionName: name });
          await storeCheckpoint(c, checkpoint, next);
          await c.query('COMMIT');
        } catch (error) {
          if (!broken) await c.query('ROLLBACK').catch(() => {});
          if (broken || error instanceof CheckpointConflictError) throw error;
          // A transaction conflict or a lost write race is routine under concurrency: the retry
          // settles it. Anything else is worth an operator's attention.
          metrics?.subscriptionRetried(name);
          const routine = error instanceof TransactionConflictError || error instanceof WrongExpectedVersionError;
          if (routine) log.info({ reason: briefError(error), subscription: name, retryInMs: delay }, 'eventstore: subscription handler met a concurrent writer; retrying the batch');
          else log.error({ err: error, subscription: name, retryInMs: delay }, 'eventstore: subscription handler failed; retrying the batch');
          await sleep(delay, false);
          delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
          continue;
        }
        delay = retryDelayMs;
        checkpoint = next;
        metrics?.subscriptionHandled(name, page.events.length);
        options.onCommitted?.(page.events, next);
      }
      position = page.position;
      if (page.caughtUp) await sleep(pollIntervalMs, true);
    }
  }

  async function run(): Promise<void> {
    let delay = retryDelayMs;
    let wasActive = false;
    while (!closing) {
      try {
        state = 'connecting';
        client = await connect();
        if (wasActive) {
          // A consumer that just lost its connection yields to the standbys first: they have
          // been waiting, and takeover is their job.
          state = 'standby';
          await sleep(standbyRetryMs, false);
          if (closing) return;
        }
        for (;;) {
          const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [
            ADVISORY_LOCK.subscriptionsNamespace,
            name,
          ]);
          if (rows[0]?.locked) break;
          state = 'standby';
          await sleep(standbyRetryMs, false);
          if (closing) return;
          if (broken) throw new Error('connection lost while standing by');
        }
        state = 'active';
        wasActive = true;
        delay = retryDelayMs;
        log.info({ subscription: name }, 'eventstore: subscription active');
        await consume(client);
      } catch (error) {
        if (closing) break;
        const conflict = error instanceof CheckpointConflictError;
        // Another instance taking over is routine (info, no stack); a lost connection is worth a warning.
        if (conflict) log.info({ reason: briefError(error), subscription: name, retryInMs: delay }, 'eventstore: checkpoint moved by another consumer; standing by');
        else log.warn({ err: error, subscription: name, retryInMs: delay }, 'eventstore: subscription lost its connection; reconnecting');
        await sleep(delay, false);
        delay = Math.min(delay * 2, 5000);
      } finally {
        const c = client;
        client = undefined;
        // Ending the session releases the advisory lock (and rolls back anything open).
        if (c) await c.end().catch(() => {});
      }
    }
  }

  const closed = run()
    .catch((error) => log.error({ err: error, subscription: name }, 'eventstore: subscription stopped on an unexpected error'))
    .finally(() => {
      state = 'closed';
      unregister();
    });

  return {
    name,
    get state() {
      return state;
    },
    get checkpoint() {
      return checkpoint;
    },
    closed,
    async close() {
      closing = true;
      stopSleeping?.();
      wake?.();
      await closed;
    },
  };
}
