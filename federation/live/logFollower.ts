/**
 * One reader of a service's log for every live feed of that service: it tails the log from its
 * head while at least one feed is registered (one `follow` of the event store: LISTEN/NOTIFY
 * wake-ups, catch-up, polling fallback) and hands each page to the feeds that may care: feeds
 * bound to one stream get that stream's events only, the others every event of their types.
 *
 * A page is handed to every feed synchronously, so a feed registered between two pages sees
 * exactly the pages after `position` as it was when it registered. The follower waits for feeds
 * whose queues are above their high-water mark before reading on (backpressure).
 */
import { compareLogPositions, type EventStore, type LogPosition, type RecordedEvent } from '../../eventstore/index.ts';
import type { Logger } from '../../eventstore/index.ts';

/** What the follower needs from a feed. */
export interface FollowerFeed {
  /** The stream the feed is bound to, or `undefined` for every stream. */
  readonly streamId: string | undefined;
  /** Event types the feed wants. */
  readonly types: ReadonlySet<string>;
  /** Takes one page: the feed's events of it (maybe none) and the position the page ends at. */
  push(events: RecordedEvent[], position: LogPosition): void;
  /** Resolves when the feed's queue is short enough for the follower to read on. */
  drained(): Promise<void>;
}

/** Options of {@link createLogFollower}. */
export interface LogFollowerOptions {
  store: EventStore;
  logger: Logger;
  /** Most events per page read. @default 500 */
  batchSize?: number;
  /** Re-read interval without a wake-up hint, in ms. @default 1000 */
  pollIntervalMs?: number;
}

/** The service's follower. */
export interface LogFollower {
  /**
   * Registers `feed`; resolves with the position after which the feed receives every page
   * (the log's head when the follower was idle, else the end of the last page handed out).
   * @throws the database error when the follower was idle and the head cannot be read
   */
  register(feed: FollowerFeed): Promise<LogPosition>;
  /** Unregisters `feed`; the follower stops reading once no feed is left. */
  unregister(feed: FollowerFeed): void;
  /** The position the last page handed out ends at (`null` while idle). */
  readonly position: LogPosition | null;
  /** Stops reading. Idempotent. */
  close(): Promise<void>;
}

/** Creates the follower of `store` (idle until the first feed registers). */
export function createLogFollower(options: LogFollowerOptions): LogFollower {
  const { store, logger } = options;
  const byStream = new Map<string, Set<FollowerFeed>>();
  const wholeLog = new Set<FollowerFeed>();
  let tail: ReturnType<EventStore['follow']> | undefined;
  let position: LogPosition | null = null;
  let starting: Promise<LogPosition> | undefined;
  let closed = false;
  let generation = 0;

  const feedCount = () => wholeLog.size + byStream.size;
  const everyFeed = () => [...wholeLog, ...[...byStream.values()].flatMap((set) => [...set])];

  function dispatch(events: readonly RecordedEvent[], end: LogPosition): void {
    const pages = new Map<FollowerFeed, RecordedEvent[]>();
    for (const event of events) {
      for (const feed of byStream.get(event.streamId) ?? []) {
        if (feed.types.has(event.type)) pageOf(pages, feed).push(event);
      }
      for (const feed of wholeLog) {
        if (feed.types.has(event.type)) pageOf(pages, feed).push(event);
      }
    }
    for (const feed of everyFeed()) feed.push(pages.get(feed) ?? [], end);
    if (position === null || compareLogPositions(end, position) > 0) position = end;
  }

  async function start(): Promise<LogPosition> {
    const mine = ++generation;
    const head = await store.headPosition();
    if (closed || mine !== generation) return head;
    position = head;
    tail = store.follow({
      after: head,
      batchSize: options.batchSize ?? 500,
      pollIntervalMs: options.pollIntervalMs ?? 1000,
      // A stopped tail may still finish a read in flight: its pages must not reach the feeds
      // of a later generation, nor set `position` (register would then never start a tail).
      onEvents: async (events, end) => {
        if (mine !== generation) return;
        dispatch(events, end);
        await Promise.all(everyFeed().map((feed) => feed.drained()));
      },
      onPosition: (end) => {
        if (mine === generation) dispatch([], end);
      },
    });
    return head;
  }

  function stop(): void {
    generation++;
    const running = tail;
    tail = undefined;
    position = null;
    starting = undefined;
    if (running) running.close().catch((error: unknown) => logger.warn({ err: error }, 'live: log follower close failed'));
  }

  return {
    get position() {
      return position;
    },
    async register(feed) {
      for (;;) {
        if (closed) throw new Error('the log follower is closed');
        if (position !== null) {
          // Synchronous from here: no page can be handed out between reading `position` and adding the feed.
          if (feed.streamId === undefined) wholeLog.add(feed);
          else {
            let set = byStream.get(feed.streamId);
            if (!set) byStream.set(feed.streamId, (set = new Set()));
            set.add(feed);
          }
          return position;
        }
        starting ??= start().finally(() => {
          starting = undefined;
        });
        await starting;
      }
    },
    unregister(feed) {
      if (feed.streamId === undefined) wholeLog.delete(feed);
      else {
        const set = byStream.get(feed.streamId);
        set?.delete(feed);
        if (set?.size === 0) byStream.delete(feed.streamId);
      }
      if (feedCount() === 0) stop();
    },
    async close() {
      if (closed) return;
      closed = true;
      const running = tail;
      stop();
      wholeLog.clear();
      byStream.clear();
      await running?.close();
    },
  };
}

function pageOf(pages: Map<FollowerFeed, RecordedEvent[]>, feed: FollowerFeed): RecordedEvent[] {
  let page = pages.get(feed);
  if (!page) pages.set(feed, (page = []));
  return page;
}
