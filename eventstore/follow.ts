/**
 * Followers: non-durable tails of the log for ephemeral readers, e.g. the live subscription
 * fields of a subgraph (DESIGN.md, "Subscriptions through the gateway"). Unlike
 * `subscribe.ts` there is no checkpoint row, no advisory lock and no transaction around the
 * handler: the reader keeps its own position (a client holds it in its cursor) and many
 * followers may run at once in one process.
 *
 * A follower reads gap-safe `readAll` pages (DESIGN.md, "Global order without lost events")
 * through the store's pool, hands each non-empty page to `onEvents` and waits for it, then
 * waits for a wake-up hint (DESIGN.md, "Subscriptions": a hint only says "re-read") or the
 * poll interval. An idle follower holds no connection: it costs one wake-up listener and one
 * timer.
 */
import { checkLogPosition, compareLogPositions } from './cursor.ts';
import { InvalidEventDataError } from './errors.ts';
import { readAll } from './read.ts';
import { checkStreamId } from './validate.ts';
import type { Notifier } from './notify.ts';
import type { EventStore } from './store.ts';
import type { LogPosition, ReadAllResult, RecordedEvent } from './types.ts';

/** Options of `EventStore.follow`. */
export interface FollowOptions {
  /**
   * Start strictly after this position: `LOG_START` for the whole log, `await
   * store.headPosition()` for only what is appended from now on, or a position a reader
   * handed out before (to resume).
   */
  after: LogPosition;
  /**
   * Called with each non-empty page, in log order, never concurrently: the follower waits
   * for it before reading on (backpressure). `position` is where the page ends (the last
   * event's position, or further — the safe bound — when the page was not full); it becomes
   * `follower.position` once the call resolves. A throw or rejection is logged at error and
   * the SAME page (same array) is handed again after a backoff (`retryDelayMs` doubling up to
   * 5 s), for ever: the handler must be idempotent per page or handle its own errors.
   */
  onEvents(events: RecordedEvent[], position: LogPosition): Promise<void> | void;
  /**
   * Called when a read moves the position without events to hand out (nothing after the
   * position matched `types`/`streamId`, yet the safe bound moved on). Pages with events
   * carry their position in `onEvents` instead. A throw is logged at error and ignored.
   */
  onPosition?(position: LogPosition): void;
  /** Only these event types reach `onEvents`. @default every type */
  types?: readonly string[];
  /** Only this stream's events reach `onEvents`. @default every stream */
  streamId?: string;
  /** Most events per page. @default 500 */
  batchSize?: number;
  /** Re-read interval when no wake-up hint arrives, in ms (covers lost hints). @default 1000 */
  pollIntervalMs?: number;
  /** First delay after a failed read or handler call, in ms; doubles up to 5000. @default 200 */
  retryDelayMs?: number;
  /** Names the follower in log messages. @default 'follower' */
  label?: string;
}

/** A running follower. */
export interface LogFollower {
  /** The end of the last page handed out (`onEvents` resolved, or `onPosition` called); `after` at first. */
  readonly position: LogPosition;
  /** `true` when the last read found nothing more visible after it; `false` before the first read and after a failed one. */
  readonly caughtUp: boolean;
  /** Re-reads now (as a wake-up hint would), unless a read or handler call is under way, which is then followed by a read. */
  wake(): void;
  /** Stops reading, waiting for an in-flight `onEvents` call to settle. Idempotent. */
  close(): Promise<void>;
  /** Resolves once the follower has stopped (after `close()` or the store's `close()`); never rejects. */
  readonly closed: Promise<void>;
}

/** Longest delay between retries of a failed read or handler call, in ms. */
const MAX_RETRY_DELAY_MS = 5000;

/**
 * Starts a follower on `store`. Used through `EventStore.follow`.
 * @throws InvalidEventDataError for a bad `after`, `types`, `batchSize`, `pollIntervalMs` or
 *   `retryDelayMs`; InvalidStreamIdError for a bad `streamId`; TypeError when `onEvents` is
 *   not a function — synchronously, before anything is read
 */
export function createFollower(store: EventStore, options: FollowOptions, notifier: Notifier): LogFollower {
  const { onEvents, onPosition, types, streamId } = options;
  checkLogPosition(options.after, 'options.after');
  if (typeof onEvents !== 'function') throw new TypeError('options.onEvents must be a function');
  if (types !== undefined && (!Array.isArray(types) || types.some((t) => typeof t !== 'string'))) {
    throw new InvalidEventDataError('options.types', 'must be an array of event type names');
  }
  if (streamId !== undefined) checkStreamId(streamId);
  const batchSize = options.batchSize ?? 500;
  if (!Number.isSafeInteger(batchSize) || batchSize < 1 || batchSize > 100_000) {
    throw new InvalidEventDataError('options.batchSize', 'must be an integer from 1 to 100000');
  }
  const pollIntervalMs = checkDelay(options.pollIntervalMs ?? 1000, 'options.pollIntervalMs');
  const retryDelayMs = checkDelay(options.retryDelayMs ?? 200, 'options.retryDelayMs');
  const label = options.label ?? 'follower';
  const log = store.logger;
  const readOptions = {
    count: batchSize,
    ...(types !== undefined ? { types: [...types] } : {}),
    ...(streamId !== undefined ? { streamId } : {}),
  };

  let position: LogPosition = { transactionId: options.after.transactionId, globalPosition: options.after.globalPosition };
  let caughtUp = false;
  let closing = false;

  // A flag, so that a hint arriving during a read or a handler call is not lost.
  let woken = false;
  let interruptSleep: (() => void) | undefined;
  let endSleep: (() => void) | undefined;
  const onWake = () => {
    woken = true;
    interruptSleep?.();
  };
  const unregister = notifier.onWake(onWake);

  /** Waits `ms`; a hint ends an `interruptible` wait early, `close()` ends any. */
  const sleep = (ms: number, interruptible: boolean) =>
    new Promise<void>((resolve) => {
      if (closing || (interruptible && woken)) return resolve();
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        interruptSleep = undefined;
        endSleep = undefined;
        resolve();
      }
      interruptSleep = interruptible ? done : undefined;
      endSleep = done;
    });

  /** Hands `page` to `onEvents` until it takes it. @returns false when closed first */
  async function handOut(page: ReadAllResult): Promise<boolean> {
    let delay = retryDelayMs;
    for (;;) {
      if (closing) return false;
      try {
        await onEvents(page.events, page.position);
        position = page.position;
        return true;
      } catch (error) {
        if (closing) return false;
        log.error(
          { err: error, follower: label, events: page.events.length, position: page.position, retryInMs: delay },
          'eventstore: follower handler failed; handing the same page again',
        );
        await sleep(delay, false);
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  async function run(): Promise<void> {
    let delay = retryDelayMs;
    while (!closing) {
      woken = false;
      let page: ReadAllResult;
      try {
        page = await readAll(store.pool, store.upcasters, { ...readOptions, after: position });
      } catch (error) {
        if (closing) return;
        // The database is down or the connection was lost: re-read from the last position
        // handed out, so nothing is skipped and nothing handed out twice.
        caughtUp = false;
        log.warn({ err: error, follower: label, position, retryInMs: delay }, 'eventstore: follower read failed; retrying');
        await sleep(delay, false);
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
        continue;
      }
      // Closed while reading: nothing more is handed out.
      if (closing) return;
      delay = retryDelayMs;
      if (page.events.length > 0) {
        if (!(await handOut(page))) return;
      } else if (compareLogPositions(page.position, position) > 0) {
        position = page.position;
        try {
          onPosition?.(position);
        } catch (error) {
          log.error({ err: error, follower: label, position }, 'eventstore: follower onPosition failed; ignored');
        }
      }
      caughtUp = page.caughtUp;
      if (caughtUp) await sleep(pollIntervalMs, true);
    }
  }

  const closed = run()
    .catch((error: unknown) => log.error({ err: error, follower: label }, 'eventstore: follower stopped on an unexpected error'))
    .finally(unregister);

  return {
    get position() {
      return position;
    },
    get caughtUp() {
      return caughtUp;
    },
    wake: onWake,
    closed,
    async close() {
      closing = true;
      endSleep?.();
      await closed;
    },
  };
}

function checkDelay(ms: number, path: string): number {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 1 || ms > 2_147_483_647) {
    throw new InvalidEventDataError(path, 'must be a number of milliseconds from 1 to 2147483647');
  }
  return ms;
}
