/**
 * The live event feed across services and its counters.
 *
 * - Events come from the `eventFeed` subscription (unfiltered; the view filters), resumed with
 *   its cursor after a reconnect, so none is missed or shown twice (deduplicated by
 *   `source:eventId` as well). The feed keeps the newest {@link MAX_FEED} events, newest first.
 * - Counters per service and per (service, type) start from `eventCounters` and go up with each
 *   event. The subscription starts first; an event it delivered before the counters' answer is
 *   counted only when it was observed after its type's `lastObservedAt` there (else the totals
 *   include it already).
 * - Changes are published at most once per {@link FEED_RENDER_INTERVAL_MS}, in an animation
 *   frame: each render moves the whole list (newest first), and a render per frame at 50 events/s
 *   kept Chromium's main thread busy painting (563–918 ms of tasks a second, frame gaps over
 *   200 ms on a loaded 2-core machine; `test/monitor.e2e.spec.ts`). The list is kept in blocks
 *   of {@link FEED_BLOCK_SIZE} events (`feedBlocks.ts`): a render changes the newest block only,
 *   and the browser skips the blocks off screen. Each event's arrival time
 *   (`performance.now()`) is kept in {@link FeedItem.receivedAt} for the event-to-paint
 *   measurement (the item's `data-received-at`).
 */
import { liveSubscription, request, type LiveSubscription } from '../connection.ts';
import { EVENT_COUNTERS, EVENT_FEED_LIVE, type ObservedEvent } from '../queries.ts';
import { createStore, intervalThrottle, type Store } from '../store.ts';
import { addToBlocks, emptyBlocks, type BlockList } from './feedBlocks.ts';

/** Events the feed keeps (and renders at most). */
export const MAX_FEED = 500;

/** The feed renders at most once per this many milliseconds (about 8 renders a second). */
export const FEED_RENDER_INTERVAL_MS = 125;

/** Events per block of the feed (its unit of rendering; see `feedBlocks.ts`). */
export const FEED_BLOCK_SIZE = 50;

/** An event of the feed. */
export interface FeedItem {
  /** `source:eventId`. */
  key: string;
  cursor: string;
  event: ObservedEvent;
  /** `performance.now()` when it arrived. */
  receivedAt: number;
}

/** The counters: total, per service, per `source/type`. */
export interface Counters {
  loaded: boolean;
  total: number;
  services: ReadonlyMap<string, number>;
  types: ReadonlyMap<string, number>;
}

/** The feed, newest first, in blocks of {@link FEED_BLOCK_SIZE} (at most {@link MAX_FEED} events in all). */
export const feed: Store<BlockList<FeedItem>> = createStore<BlockList<FeedItem>>(emptyBlocks());
/** The counters. */
export const counters: Store<Counters> = createStore<Counters>({ loaded: false, total: 0, services: new Map(), types: new Map() });
/** Events received since the page opened (every one, filtered or not). */
export const received: Store<number> = createStore(0);

let live: LiveSubscription | null = null;
let incoming: FeedItem[] = [];
const seen = new Set<string>();
const seenOrder: string[] = [];
/** Events received before the counters' answer. */
let beforeCounters: ObservedEvent[] | null = [];
const totals = { total: 0, services: new Map<string, number>(), types: new Map<string, number>() };
let receivedCount = 0;

function count(event: ObservedEvent): void {
  totals.total++;
  totals.services.set(event.source, (totals.services.get(event.source) ?? 0) + 1);
  const type = `${event.source}/${event.type}`;
  totals.types.set(type, (totals.types.get(type) ?? 0) + 1);
}

const publish = intervalThrottle(() => {
  if (incoming.length) {
    const fresh = incoming;
    incoming = [];
    feed.set(addToBlocks(feed.get(), fresh, FEED_BLOCK_SIZE, MAX_FEED));
  }
  received.set(receivedCount);
  if (!beforeCounters) counters.set({ loaded: true, total: totals.total, services: new Map(totals.services), types: new Map(totals.types) });
}, FEED_RENDER_INTERVAL_MS);

async function loadCounters(): Promise<void> {
  const data = await request<{ eventCounters: { total: number; services: { source: string; count: number }[]; types: { source: string; type: string; count: number; lastObservedAt: string }[] } }>(EVENT_COUNTERS);
  const c = data.eventCounters;
  totals.total = c.total;
  totals.services = new Map(c.services.map((s) => [s.source, s.count]));
  totals.types = new Map(c.types.map((t) => [`${t.source}/${t.type}`, t.count]));
  const lastObserved = new Map(c.types.map((t) => [`${t.source}/${t.type}`, Date.parse(t.lastObservedAt)]));
  for (const event of beforeCounters ?? []) {
    if (Date.parse(event.observedAt) > (lastObserved.get(`${event.source}/${event.type}`) ?? -Infinity)) count(event);
  }
  beforeCounters = null;
  publish();
}

/** Starts the feed (once, for the page's lifetime). */
export function startFeed(): void {
  if (live) return;
  live = liveSubscription<{ eventFeed: { cursor: string; occurredAt: string; event: ObservedEvent } }>({
    query: EVENT_FEED_LIVE,
    cursorOf: (data) => data.eventFeed.cursor,
    occurredAtOf: (data) => Date.parse(data.eventFeed.occurredAt),
    onData: ({ eventFeed: { cursor, event } }) => {
      const key = `${event.source}:${event.eventId}`;
      if (seen.has(key)) return;
      seen.add(key);
      seenOrder.push(key);
      if (seenOrder.length > 10_000) seen.delete(seenOrder.shift()!);
      receivedCount++;
      if (beforeCounters) beforeCounters.push(event);
      else count(event);
      incoming.push({ key, cursor, event, receivedAt: performance.now() });
      publish();
    },
  });
  const tryCounters = (attempt: number): void => {
    loadCounters().catch(() => setTimeout(() => tryCounters(attempt + 1), Math.min(5000, 500 * 2 ** attempt)));
  };
  tryCounters(0);
}
