/**
 * Wake-up hints (DESIGN.md, "Subscriptions"): a hint only tells readers to re-read the log;
 * polling covers a lost one. `NOTIFY` takes a global lock at commit, so appends never notify
 * inside their transaction: after commit, the store coalesces hints into at most one
 * `pg_notify` in flight per process, and wakes same-process readers directly.
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import { NOTIFY_CHANNEL } from './schema.ts';
import type { Logger } from './logger.ts';

/** Reconnect delays of the LISTEN connection, in ms: doubles from 100 up to 5000. */
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

/** Sends and receives wake-up hints for one database. Close it with `close()` (idempotent). */
export class Notifier {
  private readonly wakeups = new EventEmitter();
  private sending = false;
  private pending = false;
  private listener: pg.Client | undefined;
  private listening = false;
  private reconnectDelay = RECONNECT_MIN_MS;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly logger: Logger,
  ) {
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

  private async send(): Promise<void> {
    do {
      this.pending = false;
      try {
        await this.pool.query('SELECT pg_notify($1, $2)', [NOTIFY_CHANNEL, '']);
      } catch (error) {
        // A lost hint only delays readers until their next poll.
        if (!this.closed) this.logger.warn({ err: error }, 'eventstore: wake-up hint not sent');
      }
    } while (this.pending && !this.closed);
    this.sending = false;
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
