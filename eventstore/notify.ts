/**
 * Wake-up hints (DESIGN.md, "Subscriptions"): a hint only tells readers to re-read the log;
 * polling covers a lost one. `NOTIFY` takes a global lock at commit, so appends never notify
 * inside their transaction: after commit, the store coalesces hints into at most one
 * `pg_notify` per {@link DEFAULT_NOTIFY_INTERVAL_MS} per process (a lone hint is sent at once, a
 * burst costs one notification at its start and one at the end of each interval it lasts), and
 * wakes same-process readers directly. Effect on wake-up latency: readers in this process wake at
 * once; readers elsewhere wake at once for an isolated commit and at most one interval (plus the
 * notification's round trip) late inside a burst; polling stays the fallback for a lost hint.
 * Issue 13: one `pg_notify` per commit cost ~40 % of single-event append throughput at 16 writers.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { NOTIFY_CHANNEL } from './schema.ts';
import type { Logger } from './logger.ts';

/** Reconnect delays of the LISTEN connection, in ms: doubles from 100 up to 5000. */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

/**
 * Shortest time between two `pg_notify` hints of one process, in ms: 5. A burst of commits
 * costs at most 200 notifications a second per process; cross-process wake-up is at most this
 * much later than the commit inside a burst.
 */
export const DEFAULT_NOTIFY_INTERVAL_MS = 5;

/** Sends and receives wake-up hints for one database. Close it with `close()` (idempotent). */
export class Notifier {
  private readonly wakeups = new EventEmitter();
  /** A notification is being sent, or the interval after one has not passed. */
  private sending = false;
  private pending = false;
  private intervalTimer: NodeJS.Timeout | undefined;
  private listener: pg.Client | undefined;
  private listening = false;
  private reconnectDelay = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;

  /**
   * @param intervalMs shortest time between two notifications, in ms (0: one in flight at a time,
   *   sent back to back). @default {@link DEFAULT_NOTIFY_INTERVAL_MS}
   * @throws TypeError when `intervalMs` is not a number from 0 to 60 000
   */
  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
    private readonly intervalMs: number = DEFAULT_NOTIFY_INTERVAL_MS,
  ) {
    if (!Number.isFinite(intervalMs) || intervalMs < 0 || intervalMs > 60_000) {
      throw new TypeError(`notifyIntervalMs must be a number of ms from 0 to 60000, got ${String(intervalMs)}`);
    }
    this.wakeups.setMaxListeners(0);
  }

  /** Call after a commit that stored events: wakes local readers now and others soon. */
  hint(): void {
    if (this.closed) return;
    this.wakeups.emit('wake');
    if (this.sending) {
      this.pending = true;
      return;
    }
    this.sending = true;
    void this.send();
  }

  /** Sends one notification, then holds further ones until the interval since its start passed. */
  private async send(): Promise<void> {
    this.pending = false;
    const started = performance.now();
    try {
      await this.pool.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, '']);
    } catch (error) {
      // A lost hint only delays readers until their next poll.
      if (!this.closed) this.logger.warn({ err: error }, 'eventstore: wake-up hint not sent');
    }
    if (this.closed) return;
    const wait = this.intervalMs - (performance.now() - started);
    const next = () => {
      this.intervalTimer = undefined;
      if (this.pending && !this.closed) void this.send();
      else this.sending = false;
    };
    if (wait <= 0) next();
    else this.intervalTimer = setTimeout(next, wait);
  }

  /**
   * Registers `onWake` for hints from this process and (over LISTEN) from any process.
   * @returns a function that unregisters it
   */
  onWake(onWake: () => void): () => void {
    this.wakeups.on('wake', onWake);
    if (!this.listening && !this.closed) {
      this.listening = true;
      void this.listen();
    }
    return () => this.wakeups.off('wake', onWake);
  }

  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(this.pool.options);
    this.listener = client;
    const retry = (error: unknown) => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.removeAllListeners('notification');
      client.end().catch(() => {});
      if (this.closed) return;
      this.logger.warn({ err: error, retryInMs: this.reconnectDelay }, 'eventstore: LISTEN connection lost; reconnecting');
      this.reconnectTimer = setTimeout(() => void this.listen(), this.reconnectDelay);
      this.reconnectDelay = Math.min(this.reconnectDelay * 2, RECONNECT_MAX_MS);
      // Hints may have been missed while disconnected: readers re-read now.
      this.wakeups.emit('wake');
    };
    client.on('error', retry);
    client.on('end', () => retry(new Error('connection ended')));
    client.on('notification', () => this.wakeups.emit('wake'));
    try {
      await client.connect();
      await client.query(`LISTEN ${NOTIFY_CHANNEL}`);
      this.reconnectDelay = RECONNECT_MIN_MS;
      this.wakeups.emit('wake');
    } catch (error) {
      retry(error);
    }
  }

  /** Stops listening and sending. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.intervalTimer);
    this.wakeups.removeAllListeners();
    const client = this.listener;
    this.listener = undefined;
    if (client) {
      client.removeAllListeners('end');
      client.removeAllListeners('notification');
      client.on('error', () => {});
      await client.end().catch(() => {});
    }
  }
}
