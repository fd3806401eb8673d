/**
 * Poison events (DESIGN.md, "Poison events"): a consumer that cannot handle an integration event
 * after `maxAttempts` attempts parks it with its error, holds the later events of the same
 * stream behind it (per-stream order is kept), and lets the other streams flow on. An operator
 * then retries the parked event (its handler runs again now) or skips it (recorded as a
 * `ParkedEventSkipped` event in the service's log, with the inbox row, so it never has an effect
 * later); either way the events held behind it are then handled in order.
 *
 * Where it lives: in the consuming service's own database (`eventstore.parked_events`, schema
 * step 4), around the consumer's handler, so it works the same over NATS JetStream and the
 * in-process transport: `lot.wrap(transport)` returns a transport whose consumers park. A held
 * event is acknowledged to the transport once it is stored as WAITING (it is durable from then
 * on and delivered from the table), so a parked stream never blocks the transport.
 *
 * Which failures count: an `EventRejectedError` (the consumer's schema refused the payload:
 * retrying cannot help) parks at the first attempt; a transient failure (`isTransient`: an
 * unavailable database, a lost connection, a NATS disconnect, a concurrent writer) never counts
 * and is retried by the transport without end; anything else counts one attempt per delivery.
 * Attempts are stored, so they survive restarts.
 */
import { ConnectionLostError, TransactionConflictError, WrongExpectedVersionError } from './errors.ts';
import { DuplicateDeliveryError } from './inbox.ts';
import type { IntegrationConsumer, IntegrationConsumerOptions, IntegrationEvent, IntegrationTransport } from './integration.ts';
import { silentLogger, type Logger } from './logger.ts';
import { ADVISORY_LOCK } from './schema.ts';
import type { EventStore } from './store.ts';

/** Attempts after which a failing event is parked, unless configured. */
export const DEFAULT_PARK_AFTER_ATTEMPTS = 5;
/** Type of the event recorded in the consuming service's log when an operator skips a parked event. */
export const PARKED_EVENT_SKIPPED = 'ParkedEventSkipped';
/** Stream of a consumer's `ParkedEventSkipped` events: `parked-events-<consumer>`. */
export const parkedEventsStreamId = (consumer: string) => `parked-events-${consumer}`;

/**
 * Thrown by a consumer's handler when the event's payload breaks the schema the consumer reads
 * (e.g. a zod `safeParse` failed): the event is parked at once, since redelivering it cannot help.
 */
export class EventRejectedError extends Error {
  constructor(
    readonly eventType: string,
    /** What is wrong, e.g. zod's issues as `path: message; …`. */
    readonly detail: string,
  ) {
    super(`${eventType} rejected by the consumer's schema: ${detail}`);
    this.name = 'EventRejectedError';
  }

  /** From a failed zod `safeParse`: `detail` lists the issues as `path: message; …`. */
  static fromZod(eventType: string, error: { issues: readonly { path: readonly PropertyKey[]; message: string }[] }): EventRejectedError {
    return new EventRejectedError(eventType, error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`).join('; '));
  }
}

/** Status of a row of `eventstore.parked_events`. */
export type ParkedEventStatus = 'FAILING' | 'PARKED' | 'WAITING' | 'RETRIED' | 'SKIPPED' | 'RELEASED';

/** A parked event as operators see it. */
export interface ParkedEvent {
  /** Row id (decimal string of a bigint), the argument of `retry` and `skip`. */
  id: string;
  consumer: string;
  source: string;
  eventId: string;
  type: string;
  streamId: string;
  streamPosition: number;
  /** PARKED until an operator retried (RETRIED) or skipped (SKIPPED) it. */
  status: 'PARKED' | 'RETRIED' | 'SKIPPED';
  /** Attempts so far, the operator's retries included. */
  attempts: number;
  /** The last attempt's error message. */
  error: string;
  firstFailedAt: Date;
  /** When it was parked (the last failure of a retried-and-failed event keeps it parked). */
  parkedAt: Date;
  lastFailedAt: Date;
  resolvedAt: Date | null;
  /** Who retried or skipped it (the request's actor). */
  resolvedBy: string | null;
  /** How many later events of its stream wait behind it (0 once resolved and drained). */
  waiting: number;
}

/** No parked event has this id. */
export class ParkedEventNotFoundError extends Error {
  readonly code = 'NOT_FOUND';
  /** Safe to show a client (`extensions` of the GraphQL error). */
  readonly details: Record<string, unknown>;
  constructor(readonly id: string) {
    super(`No parked event has id "${id}"`);
    this.details = { id };
    this.name = 'ParkedEventNotFoundError';
  }
}

/** `retry`/`skip` got an id that is not a parked event's id (malformed, or the event is not PARKED). */
export class ParkedEventInputError extends Error {
  readonly code = 'BAD_USER_INPUT';
  /** Safe to show a client (`extensions` of the GraphQL error). */
  readonly details: Record<string, unknown>;
  constructor(
    readonly reason: 'INVALID_ID' | 'NOT_PARKED' | 'CONSUMER_NOT_RUNNING',
    message: string,
  ) {
    super(message);
    this.name = 'ParkedEventInputError';
    this.details = { reason };
  }
}

/** Options of `createParkingLot`. */
export interface ParkingLotOptions {
  /** The consuming service's store (its database holds the parked events). */
  store: EventStore;
  /** Attempts before an event is parked (≥ 1). @default DEFAULT_PARK_AFTER_ATTEMPTS (5) */
  maxAttempts?: number;
  /**
   * Recognises failures that must not count (they are retried without end), besides the event
   * store's own (`isTransientConsumerError`). Services pass the unavailable-database classifier
   * (`classifyDatabaseError(e) === 'UNAVAILABLE'` of `federation/formatError.ts`).
   */
  isTransient?: (error: unknown) => boolean;
  logger?: Logger;
  /** Wait between attempts of held events being released, in ms. @default 200, doubling to 5000 */
  releaseBackoffMs?: number;
}

/** A service's parked events and the consumers that park them. */
export interface ParkingLot {
  /** A transport whose consumers park poison events into this lot (publish and close pass through; `close` of the wrapper does not close `transport`). */
  wrap(transport: IntegrationTransport): IntegrationTransport;
  /**
   * Parked events, oldest first.
   * @param filter.consumer only this consumer's; filter.includeResolved also RETRIED and SKIPPED ones (default false); filter.first at most this many (default 100)
   */
  list(filter?: { consumer?: string; includeResolved?: boolean; first?: number }): Promise<ParkedEvent[]>;
  /** One parked event by id. @throws ParkedEventInputError (INVALID_ID); ParkedEventNotFoundError */
  get(id: string): Promise<ParkedEvent>;
  /** How many events are PARKED now (what a metrics endpoint exports as a gauge). */
  count(): Promise<number>;
  /**
   * Runs the parked event's handler now. Success: RETRIED, and the events held behind it flow
   * on (in the background). Failure: stays PARKED with the new error and one more attempt.
   * @throws ParkedEventInputError (INVALID_ID, NOT_PARKED, CONSUMER_NOT_RUNNING in this process); ParkedEventNotFoundError; a transient error (nothing changed)
   */
  retry(id: string, actor?: string): Promise<ParkedEvent>;
  /**
   * Skips a parked event: `ParkedEventSkipped` appended to `parked-events-<consumer>`, its inbox
   * row written and the row SKIPPED in one transaction; the events held behind it flow on.
   * `actor` / `actorRole` (the verified subject and role of the request) go in its metadata.
   * @throws ParkedEventInputError (INVALID_ID, NOT_PARKED); ParkedEventNotFoundError
   */
  skip(id: string, actor?: string, actorRole?: string): Promise<ParkedEvent>;
  /** Resolves when no release of held events is running (tests). */
  idle(): Promise<void>;
  /** Stops releasing held events. Idempotent. */
  close(): Promise<void>;
}

/**
 * Failures that never count as an attempt: an unavailable database or lost connection
 * (`ConnectionLostError`, SQLSTATE class 08, 57P01-3, 53300, socket errors), NATS connection
 * errors, and concurrency outcomes that a redelivery resolves (WrongExpectedVersion, a
 * transaction conflict, a duplicate delivery).
 */
export function isTransientConsumerError(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (
      current instanceof ConnectionLostError ||
      current instanceof WrongExpectedVersionError ||
      current instanceof TransactionConflictError ||
      current instanceof DuplicateDeliveryError
    ) {
      return true;
    }
    if (NATS_CONNECTION_ERRORS.has(current.name)) return true;
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string' && (TRANSIENT_CODES.has(code) || (code.startsWith('08') && code.length === 5))) return true;
    current = current.cause;
  }
  return false;
}
const NATS_CONNECTION_ERRORS = new Set(['ConnectionError', 'ClosedConnectionError', 'DrainingConnectionError', 'TimeoutError', 'NoResponders']);
const TRANSIENT_CODES = new Set(['57P01', '57P02', '57P03', '53300', '53400', 'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND']);

interface Row {
  id: string;
  consumer: string;
  source: string;
  event_id: string;
  stream_id: string;
  stream_position: string;
  type: string;
  event: IntegrationEvent;
  status: ParkedEventStatus;
  attempts: number;
  error: string | null;
  first_failed_at: Date | null;
  last_failed_at: Date | null;
  parked_at: Date | null;
  resolved_at: Date | null;
  resolved_by: string | null;
  waiting?: number;
}

const SELECT_ROW = `SELECT p.*, p.id::text AS id, p.event_id::text AS event_id, p.stream_position::text AS stream_position,
  (SELECT count(*)::int FROM eventstore.parked_events w
    WHERE w.consumer = p.consumer AND w.source = p.source AND w.stream_id = p.stream_id AND w.status = 'WAITING' AND w.id > p.id) AS waiting
  FROM eventstore.parked_events p`;

function toParked(row: Row): ParkedEvent {
  return {
    id: row.id,
    consumer: row.consumer,
    source: row.source,
    eventId: row.event_id,
    type: row.type,
    streamId: row.stream_id,
    streamPosition: Number(row.stream_position),
    status: row.status as ParkedEvent['status'],
    attempts: row.attempts,
    error: row.error ?? '',
    firstFailedAt: row.first_failed_at ?? row.parked_at ?? new Date(0),
    parkedAt: row.parked_at ?? row.last_failed_at ?? new Date(0),
    lastFailedAt: row.last_failed_at ?? row.parked_at ?? new Date(0),
    resolvedAt: row.resolved_at,
    resolvedBy: row.resolved_by,
    waiting: row.waiting ?? 0,
  };
}

const errorText = (error: unknown) => (error instanceof Error ? `${error.name}: ${error.message}` : String(error)).slice(0, 2000);
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Creates a service's parking lot (see the module comment).
 * @throws Error when `maxAttempts` is not an integer ≥ 1
 */
export function createParkingLot(options: ParkingLotOptions): ParkingLot {
  const { store } = options;
  const pool = store.pool;
  const logger = options.logger ?? silentLogger;
  const maxAttempts = options.maxAttempts ?? DEFAULT_PARK_AFTER_ATTEMPTS;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) throw new Error(`maxAttempts must be an integer ≥ 1, got ${maxAttempts}`);
  const isTransient = (error: unknown) => isTransientConsumerError(error) || (options.isTransient?.(error) ?? false);
  const backoff = options.releaseBackoffMs ?? 200;
  /** Running consumers of this process by name: what `retry` and releases call. */
  const handlers = new Map<string, IntegrationConsumerOptions>();
  const releasing = new Map<string, Promise<void>>();
  let closed = false;

  /** Runs `work` in a transaction holding the lock of one consumer's stream. */
  async function withStreamLock<T>(consumer: string, source: string, streamId: string, work: (q: (sql: string, params: unknown[]) => Promise<{ rows: Row[]; rowCount: number | null }>) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken = false;
    const onError = () => (broken = true);
    client.on('error', onError);
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCK.parkingNamespace, `${consumer}|${source}|${streamId}`]);
      const value = await work((sql, params) => client.query<Row>(sql, params));
      await client.query('COMMIT');
      return value;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => (broken = true));
      throw error;
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /**
   * Where `event` stands: `held` (stored as WAITING behind a parked event of its stream, or
   * already held or resolved), `failing` (earlier attempts failed), `free`. One unlocked read in
   * the common case; the stream's lock only when something of it is held, so that a release
   * finishing meanwhile cannot miss the event (it takes the same lock for its last step).
   */
  async function admit(c: IntegrationConsumerOptions, event: IntegrationEvent): Promise<'held' | 'failing' | 'free'> {
    const find = (q: (sql: string, params: unknown[]) => Promise<{ rows: Row[] }>) =>
      q(
        `SELECT status, event_id::text AS event_id FROM eventstore.parked_events
          WHERE consumer = $1 AND (event_id = $2 OR (source = $3 AND stream_id = $4 AND status IN ('PARKED', 'WAITING')))`,
        [c.consumer, event.eventId, event.source, event.streamId],
      );
    const classify = (rows: Row[]) => {
      const own = rows.find((r) => r.event_id === event.eventId.toLowerCase());
      if (own && own.status !== 'FAILING') return 'held' as const; // held already, or resolved (retried, skipped, released)
      if (rows.some((r) => r.status === 'PARKED' || r.status === 'WAITING')) return 'blocked' as const;
      return own ? ('failing' as const) : ('free' as const);
    };
    const first = classify((await find((sql, params) => pool.query<Row>(sql, params))).rows);
    if (first !== 'blocked') return first;
    return withStreamLock(c.consumer, event.source, event.streamId, async (q) => {
      const now = classify((await find(q)).rows);
      if (now !== 'blocked') return now;
      await q(
        `INSERT INTO eventstore.parked_events (consumer, source, event_id, stream_id, stream_position, type, event, status)
         VALUES ($1, $2, $3, $4, $5, $6, $7, 'WAITING')
         ON CONFLICT (consumer, event_id) DO UPDATE SET status = 'WAITING' WHERE parked_events.status = 'FAILING'`,
        [c.consumer, event.source, event.eventId, event.streamId, event.streamPosition, event.type, JSON.stringify(event)],
      );
      logger.info({ consumer: c.consumer, eventId: event.eventId, streamId: event.streamId }, 'parking: event held behind a parked event of its stream');
      return 'held';
    });
  }

  /** Counts a failed attempt; parks the event when it reached `maxAttempts` (or was rejected). @returns whether it is parked now */
  async function recordFailure(c: IntegrationConsumerOptions, event: IntegrationEvent, error: unknown): Promise<boolean> {
    const parkNow = error instanceof EventRejectedError;
    const { rows } = await pool.query<{ status: ParkedEventStatus; attempts: number }>(
      `INSERT INTO eventstore.parked_events AS p (consumer, source, event_id, stream_id, stream_position, type, event, status, attempts, error, first_failed_at, last_failed_at, parked_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, CASE WHEN $9 OR $10 <= 1 THEN 'PARKED' ELSE 'FAILING' END, 1, $8, now(), now(), CASE WHEN $9 OR $10 <= 1 THEN now() END)
       ON CONFLICT (consumer, event_id) DO UPDATE SET
         attempts = p.attempts + 1, error = EXCLUDED.error, last_failed_at = now(),
         status = CASE WHEN $9 OR p.attempts + 1 >= $10 THEN 'PARKED' ELSE p.status END,
         parked_at = CASE WHEN $9 OR p.attempts + 1 >= $10 THEN now() ELSE p.parked_at END
       WHERE p.status = 'FAILING'
       RETURNING status, attempts`,
      [c.consumer, event.source, event.eventId, event.streamId, event.streamPosition, event.type, JSON.stringify(event), errorText(error), parkNow, maxAttempts],
    );
    const row = rows[0];
    const parked = row?.status === 'PARKED';
    if (parked) logger.error({ err: error, consumer: c.consumer, eventId: event.eventId, type: event.type, streamId: event.streamId, attempts: row.attempts }, 'parking: event parked; its stream waits for an operator (retryParkedEvent / skipParkedEvent)');
    else logger.warn({ err: error, consumer: c.consumer, eventId: event.eventId, attempts: row?.attempts, maxAttempts }, 'parking: handler failed; the event will be redelivered');
    return parked;
  }

  /** One event through the consumer's handler with parking. Throws to make the transport redeliver. */
  async function deliver(c: IntegrationConsumerOptions, event: IntegrationEvent): Promise<void> {
    const standing = await admit(c, event);
    if (standing === 'held') return;
    try {
      await c.handler(event);
    } catch (error) {
      if (isTransient(error)) throw error;
      let parked: boolean;
      try {
        parked = await recordFailure(c, event, error);
      } catch (recordError) {
        logger.warn({ err: recordError, consumer: c.consumer }, 'parking: could not record a failed attempt');
        throw error;
      }
      if (parked) return;
      throw error;
    }
    // A success after failed attempts: forget them (a FAILING row only; decisions stay).
    if (standing === 'failing') {
      await pool.query(`DELETE FROM eventstore.parked_events WHERE consumer = $1 AND event_id = $2 AND status = 'FAILING'`, [c.consumer, event.eventId]);
    }
  }

  /** Delivers a batch: in one `handleBatch` call when nothing of it is held or failing, else one by one. */
  async function deliverBatch(c: IntegrationConsumerOptions, events: IntegrationEvent[]): Promise<void> {
    if (events.length === 0) return;
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM eventstore.parked_events
        WHERE consumer = $1 AND (event_id = ANY ($2::uuid[]) OR (source = $3 AND stream_id = ANY ($4::text[]) AND status IN ('PARKED', 'WAITING')))`,
      [c.consumer, events.map((e) => e.eventId), events[0]!.source, [...new Set(events.map((e) => e.streamId))]],
    );
    if ((rows[0]?.n ?? 0) === 0) {
      try {
        await c.handleBatch!(events);
        return;
      } catch (error) {
        if (isTransient(error)) throw error;
        // One of them is poison: find it by handling them one by one (the inbox absorbs the rest).
        logger.warn({ err: error, consumer: c.consumer, events: events.length }, 'parking: batch failed; handling its events one by one');
      }
    }
    for (const event of events) await deliver(c, event);
  }

  /** Handles the WAITING events of one stream in order until the stream is empty or parks again. */
  function release(consumer: string, source: string, streamId: string): void {
    const key = `${consumer}|${source}|${streamId}`;
    if (closed || releasing.has(key)) return;
    const run = (async () => {
      let wait = backoff;
      while (!closed) {
        const c = handlers.get(consumer);
        if (!c) return;
        try {
          const { rows } = await pool.query<Row>(
            `SELECT id::text AS id, status, event FROM eventstore.parked_events
              WHERE consumer = $1 AND source = $2 AND stream_id = $3 AND status IN ('PARKED', 'WAITING') ORDER BY id LIMIT 1`,
            [consumer, source, streamId],
          );
          const next = rows[0];
          if (!next || next.status === 'PARKED') return;
          try {
            await c.handler(next.event);
          } catch (error) {
            if (isTransient(error)) throw error;
            await pool.query(
              `UPDATE eventstore.parked_events SET attempts = attempts + 1, error = $2, first_failed_at = coalesce(first_failed_at, now()), last_failed_at = now(),
                 status = CASE WHEN attempts + 1 >= $3 OR $4 THEN 'PARKED' ELSE status END,
                 parked_at = CASE WHEN attempts + 1 >= $3 OR $4 THEN now() ELSE parked_at END
               WHERE id = $1`,
              [next.id, errorText(error), maxAttempts, error instanceof EventRejectedError],
            );
            logger.warn({ err: error, consumer, eventId: next.event.eventId }, 'parking: a held event failed on release');
            throw error;
          }
          await withStreamLock(consumer, source, streamId, (q) =>
            q(`UPDATE eventstore.parked_events SET status = 'RELEASED', resolved_at = now() WHERE id = $1 AND status = 'WAITING'`, [next.id]),
          );
          wait = backoff;
        } catch (error) {
          if (closed) return;
          logger.warn({ err: error, consumer, streamId }, 'parking: releasing held events paused; retrying');
          await sleep(wait);
          wait = Math.min(wait * 2, 5000);
        }
      }
    })().finally(() => releasing.delete(key));
    releasing.set(key, run);
  }

  /** Releases every stream of `consumer` whose first held event is WAITING (after a restart, say). */
  async function releasePending(consumer: string): Promise<void> {
    const { rows } = await pool.query<{ source: string; stream_id: string }>(
      `SELECT DISTINCT w.source, w.stream_id FROM eventstore.parked_events w
        WHERE w.consumer = $1 AND w.status = 'WAITING' AND NOT EXISTS (
          SELECT 1 FROM eventstore.parked_events p WHERE p.consumer = w.consumer AND p.source = w.source AND p.stream_id = w.stream_id AND p.status = 'PARKED')`,
      [consumer],
    );
    for (const r of rows) release(consumer, r.source, r.stream_id);
  }

  async function load(id: string): Promise<Row> {
    if (!/^[1-9][0-9]{0,17}$/.test(id)) throw new ParkedEventInputError('INVALID_ID', `A parked event id is a positive decimal integer, got ${JSON.stringify(id.slice(0, 40))}`);
    const { rows } = await pool.query<Row>(`${SELECT_ROW} WHERE p.id = $1 AND p.status IN ('PARKED', 'RETRIED', 'SKIPPED')`, [id]);
    if (!rows[0]) throw new ParkedEventNotFoundError(id);
    return rows[0];
  }
  /**
   * Runs `work` holding the parked event's own advisory lock (session level, on a dedicated
   * client), so a retry and a skip of one parked event, or two retries, run one after the other:
   * the second sees the first's outcome (`NOT_PARKED`) instead of skipping an event whose retry
   * has just applied its effect. `skip` takes the same lock inside its transaction.
   */
  async function withParkedEventLock<T>(id: string, work: () => Promise<T>): Promise<T> {
    const client = await pool.connect();
    let broken = false;
    const onError = () => (broken = true);
    client.on('error', onError);
    try {
      await client.query('SELECT pg_advisory_lock($1, hashtext($2))', [ADVISORY_LOCK.parkingNamespace, parkedEventLockKey(id)]);
      try {
        return await work();
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [ADVISORY_LOCK.parkingNamespace, parkedEventLockKey(id)]).catch(() => (broken = true));
      }
    } finally {
      client.off('error', onError);
      client.release(broken);
    }
  }

  /** `retry` once the parked event's lock is held: still PARKED, else `NOT_PARKED`. */
  async function retryHoldingLock(id: string, actor: string | undefined): Promise<ParkedEvent> {
    const row = await loadParked(id);
    const c = handlers.get(row.consumer);
    if (!c) throw new ParkedEventInputError('CONSUMER_NOT_RUNNING', `Consumer ${row.consumer} does not run in this process; retry where it runs`);
    try {
      await c.handler(row.event);
    } catch (error) {
      if (isTransient(error)) throw error;
      await pool.query(`UPDATE eventstore.parked_events SET attempts = attempts + 1, error = $2, last_failed_at = now() WHERE id = $1 AND status = 'PARKED'`, [id, errorText(error)]);
      logger.warn({ err: error, consumer: row.consumer, eventId: row.event_id }, 'parking: retry of a parked event failed; it stays parked');
      return toParked(await load(id));
    }
    await withStreamLock(row.consumer, row.source, row.stream_id, (q) =>
      q(`UPDATE eventstore.parked_events SET status = 'RETRIED', attempts = attempts + 1, resolved_at = now(), resolved_by = $2 WHERE id = $1 AND status = 'PARKED'`, [id, actor ?? null]),
    );
    logger.info({ consumer: row.consumer, eventId: row.event_id, actor }, 'parking: parked event retried successfully; its stream flows on');
    release(row.consumer, row.source, row.stream_id);
    return toParked(await load(id));
  }

  /** `skip`: records the decision and the inbox row in one transaction that holds the event's lock. */
  async function skipParked(id: string, actor: string | undefined, actorRole: string | undefined): Promise<ParkedEvent> {
    const row = await loadParked(id);
    await store.transaction(async (tx) => {
      // The parked event's own lock first (as a retry holds it), then its status again.
      await tx.client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCK.parkingNamespace, parkedEventLockKey(id)]);
      const { rows: current } = await tx.client.query<{ status: string }>('SELECT status FROM eventstore.parked_events WHERE id = $1', [id]);
      if (current[0]?.status !== 'PARKED') throw new ParkedEventInputError('NOT_PARKED', `Parked event ${id} was resolved meanwhile`);
      await tx.appendToStream(
        parkedEventsStreamId(row.consumer),
        [
          {
            type: PARKED_EVENT_SKIPPED,
            data: {
              parkedEventId: row.id,
              consumer: row.consumer,
              source: row.source,
              eventId: row.event_id,
              type: row.type,
              streamId: row.stream_id,
              streamPosition: Number(row.stream_position),
              attempts: row.attempts,
              error: row.error ?? '',
            },
          },
        ],
        { metadata: { causationId: row.event_id, ...(actor ? { actor } : {}), ...(actorRole ? { actorRole } : {}), ...(row.event.metadata?.correlationId ? { correlationId: row.event.metadata.correlationId } : {}) } },
      );
      await tx.client.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [ADVISORY_LOCK.parkingNamespace, `${row.consumer}|${row.source}|${row.stream_id}`]);
      const updated = await tx.client.query(
        `UPDATE eventstore.parked_events SET status = 'SKIPPED', resolved_at = now(), resolved_by = $2 WHERE id = $1 AND status = 'PARKED'`,
        [id, actor ?? null],
      );
      if (updated.rowCount !== 1) throw new ParkedEventInputError('NOT_PARKED', `Parked event ${id} was resolved meanwhile`);
      await tx.client.query(`INSERT INTO eventstore.inbox (source, event_id, type) VALUES ($1, $2, $3) ON CONFLICT (source, event_id) DO NOTHING`, [row.source, row.event_id, row.type]);
    });
    logger.info({ consumer: row.consumer, eventId: row.event_id, actor }, 'parking: parked event skipped; its stream flows on');
    release(row.consumer, row.source, row.stream_id);
    return toParked(await load(id));
  }

  async function loadParked(id: string): Promise<Row> {
    const row = await load(id);
    if (row.status !== 'PARKED') throw new ParkedEventInputError('NOT_PARKED', `Parked event ${id} was already ${row.status === 'RETRIED' ? 'retried' : 'skipped'}`);
    return row;
  }

  return {
    wrap(transport) {
      return {
        kind: transport.kind,
        publish: (events) => transport.publish(events),
        ping: (signal) => transport.ping(signal),
        async consume(consumerOptions): Promise<IntegrationConsumer> {
          const c = consumerOptions;
          const wrapped: IntegrationConsumerOptions = {
            ...c,
            handler: (event) => deliver(c, event),
            ...(c.handleBatch ? { handleBatch: (events: IntegrationEvent[]) => deliverBatch(c, events) } : {}),
          };
          handlers.set(c.consumer, c);
          const inner = await transport.consume(wrapped);
          await releasePending(c.consumer).catch((error: unknown) => logger.warn({ err: error, consumer: c.consumer }, 'parking: could not look for held events'));
          return {
            async close() {
              if (handlers.get(c.consumer) === c) handlers.delete(c.consumer);
              await inner.close();
            },
            ...(inner.pending ? { pending: () => inner.pending!() } : {}),
          };
        },
        async close() {},
      };
    },
    async list(filter = {}) {
      const statuses = filter.includeResolved ? ['PARKED', 'RETRIED', 'SKIPPED'] : ['PARKED'];
      const first = Math.max(0, Math.min(filter.first ?? 100, 1000));
      const { rows } = await pool.query<Row>(
        `${SELECT_ROW} WHERE p.status = ANY ($1::text[]) AND ($2::text IS NULL OR p.consumer = $2) ORDER BY p.id LIMIT $3`,
        [statuses, filter.consumer ?? null, first],
      );
      return rows.map(toParked);
    },
    async get(id) {
      return toParked(await load(id));
    },
    async count() {
      return Object.values(await countParkedEvents(pool)).reduce((sum, n) => sum + n, 0);
    },
    async retry(id, actor) {
      await loadParked(id); // INVALID_ID, NOT_FOUND, NOT_PARKED before a connection is taken
      return withParkedEventLock(id, () => retryHoldingLock(id, actor));
    },
    async skip(id, actor, actorRole) {
      return skipParked(id, actor, actorRole);
    },
    async idle() {
      while (releasing.size > 0) await Promise.all([...releasing.values()]);
    },
    async close() {
      closed = true;
      await Promise.all([...releasing.values()]);
    },
  };
}

/** The key of a parked event's own advisory lock (with `ADVISORY_LOCK.parkingNamespace`). */
const parkedEventLockKey = (id: string) => `parked-event|${id}`;

/**
 * How many events are PARKED now in the database of `pool`, by consumer name (consumers with none
 * are absent): what a metrics endpoint exports as a gauge labelled by consumer.
 */
export async function countParkedEvents(pool: Pick<EventStore['pool'], 'query'>): Promise<Record<string, number>> {
  const { rows } = await pool.query<{ consumer: string; n: number }>(
    `SELECT consumer, count(*)::int AS n FROM eventstore.parked_events WHERE status = 'PARKED' GROUP BY consumer ORDER BY consumer`,
  );
  return Object.fromEntries(rows.map((r) => [r.consumer, r.n]));
}

/** Is `error` one of the parking lot's input errors (`NOT_FOUND`, `BAD_USER_INPUT`). */
export function isParkingInputError(error: unknown): error is ParkedEventNotFoundError | ParkedEventInputError {
  return error instanceof ParkedEventNotFoundError || error instanceof ParkedEventInputError;
}
