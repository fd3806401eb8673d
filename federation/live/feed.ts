/**
 * A live feed: one subscription field with one set of arguments, shared by every client of the
 * subgraph that subscribes to it (DESIGN.md, "Subscriptions through the gateway": per event and
 * distinct subscription, hydrate once and serialize once).
 *
 * Per event the feed projects the update once (the entity as of that event), then executes each
 * distinct selection (a {@link SelectionGroup}: same document, variables and identity) once and
 * serializes it once; each member only gets the `next` envelope around those bytes.
 *
 * A member resuming from a cursor older than the feed (or an entity-scoped subscription with no
 * cursor) first replays from the store: it registers with the feed, which buffers its frames
 * from then on, reads the log from its cursor up to the position the feed had reached when it
 * registered, then flushes the buffer and is live. Every member delivers only events after its
 * last delivered position, so the seam has no gap and no duplicate.
 */
import {
  compareLogPositions,
  formatPosition,
  type EventStore,
  type LogPosition,
  type Logger,
  type RecordedEvent,
} from '../../eventstore/index.ts';
import type { CursorBinding, CursorCodec } from './cursor.ts';
import type { FollowerFeed } from './logFollower.ts';
import type { LiveField, LiveProjector, LiveUpdate } from './liveField.ts';

/** Executes a group's selection on one update; resolves with the serialized `next` payload. */
export interface SelectionGroup {
  /** Distinguishes groups of a feed: document, operation name, variables, identity. */
  readonly key: string;
  /**
   * The JSON of the ExecutionResult for `update` (root field value), with
   * `extensions.flowgraph = { cursor, position }` merged in. Never throws: execution errors are
   * in the result's `errors`.
   */
  execute(update: Record<string, unknown>, extensions: FlowgraphExtensions): Promise<Buffer>;
}

/** What every `next` of a flowgraph subgraph carries in `extensions.flowgraph`. */
export interface FlowgraphExtensions {
  /** The opaque cursor of the event (resume with `after: cursor`). */
  cursor: string;
  /** `"<transactionId>:<globalPosition>"` of the event in the subgraph's log. */
  position: string;
}

/** The side of a client subscription the feed talks to (a graphql-ws operation). */
export interface FeedSink {
  /** Sends a serialized ExecutionResult as `next`; false once the client is gone. */
  next(payload: Buffer): boolean;
  /** Ends the subscription with errors (formatted). */
  error(errors: readonly { message: string; extensions?: Record<string, unknown> }[]): void;
  readonly stopped: boolean;
}

/** Options of {@link createFeed}. */
export interface FeedOptions<TArgs extends Record<string, unknown>> {
  field: LiveField<TArgs>;
  args: TArgs;
  store: EventStore;
  codec: CursorCodec;
  logger: Logger;
  /** Called once the feed has no member left (after `close`). */
  onEmpty(): void;
  /** Events queued before the follower waits for this feed. @default 1000 */
  highWaterEvents?: number;
  /** Largest buffer of a replaying member, in bytes; past it the member re-targets its replay. @default 8 MiB */
  maxJoinBufferBytes?: number;
  /** How often members that asked for positions hear the feed's position when it moved, in ms. @default 30_000 */
  heartbeatIntervalMs?: number;
  /** First retry delay after a failed projection or replay read, in ms (doubling up to 5 s). @default 200 */
  retryDelayMs?: number;
}

/** How a member joins: its group, where it starts, whether it wants position announcements. */
export interface JoinOptions {
  group: SelectionGroup;
  sink: FeedSink;
  /** The position of the client's `after` cursor; `null` for none. */
  after: LogPosition | null;
  /** Also send data-less `next` messages with the position (the gateway's upstreams). */
  announcePositions: boolean;
}

/** A running feed. */
export interface Feed extends FollowerFeed {
  readonly binding: CursorBinding;
  /**
   * Adds a member. `live` resolves once it is live (after its replay) and rejects if the feed
   * closed first; `leave()` removes it at any time (idempotent). A feed left by its last member
   * closes itself and calls `onEmpty`.
   */
  join(options: JoinOptions): { live: Promise<void>; leave(): void };
  /** Members joined and not yet stopped. */
  readonly size: number;
  /**
   * Sets where the feed starts (the follower's position when it registered), unless a page it
   * received since reaches further: members joining then replay up to that page's end.
   */
  start(position: LogPosition): void;
  close(): void;
}

interface Member {
  group: SelectionGroup;
  sink: FeedSink;
  lastPosition: LogPosition;
  announce: boolean;
  lastAnnounced: LogPosition | null;
  /** Frames waiting while the member replays (null once live). */
  buffer: { payload: Buffer; position: LogPosition }[] | null;
  bufferBytes: number;
  /** Replay target: read the log up to here, then flush the buffer. */
  target: LogPosition;
}

const MAX_RETRY_DELAY_MS = 5_000;
const LOG_ORIGIN: LogPosition = Object.freeze({ transactionId: '0', globalPosition: '0' });

/** Creates a feed; the caller registers it with the follower and calls `start` with the result. */
export function createFeed<TArgs extends Record<string, unknown>>(options: FeedOptions<TArgs>): Feed {
  const { field, args, store, codec, logger } = options;
  const binding: CursorBinding = { field: field.name, args };
  const streamId = field.streamId?.(args);
  const types = new Set(field.types);
  const highWater = options.highWaterEvents ?? 1000;
  const maxJoinBuffer = options.maxJoinBufferBytes ?? 8 * 1024 * 1024;
  const heartbeatMs = options.heartbeatIntervalMs ?? 30_000;
  const retryDelayMs = options.retryDelayMs ?? 200;
  const log = logger;

  const projector: LiveProjector = field.createProjector(args);
  const groups = new Map<string, Set<Member>>();
  const queue: { events: RecordedEvent[]; position: LogPosition }[] = [];
  let queuedEvents = 0;
  let startedThrough: LogPosition | null = null;
  let processing = false;
  let closed = false;
  let waiters: (() => void)[] = [];
  let ready: (() => void) | undefined;
  const started = new Promise<void>((resolve) => (ready = resolve));

  const members = () => [...groups.values()].flatMap((set) => [...set]);
  const heartbeat = setInterval(() => {
    if (processing || queue.length > 0 || startedThrough === null) return;
    for (const member of members()) {
      if (member.announce && member.buffer === null) announce(member, startedThrough);
    }
  }, heartbeatMs);
  heartbeat.unref();

  function announce(member: Member, position: LogPosition): void {
    if (member.lastAnnounced && compareLogPositions(position, member.lastAnnounced) <= 0) return;
    member.lastAnnounced = position;
    const cursor = codec.issue(binding, position, Date.now());
    member.sink.next(Buffer.from(JSON.stringify({ extensions: { flowgraph: { cursor, position: formatPosition(position) } } })));
  }

  function remove(member: Member): void {
    const set = groups.get(member.group.key);
    if (!set?.delete(member)) return;
    if (set.size === 0) groups.delete(member.group.key);
    if (groups.size === 0) {
      close();
      options.onEmpty();
    }
  }

  function deliver(member: Member, payload: Buffer, position: LogPosition): void {
    if (member.sink.stopped) return remove(member);
    if (compareLogPositions(position, member.lastPosition) <= 0) return;
    if (member.buffer !== null) {
      member.buffer.push({ payload, position });
      member.bufferBytes += payload.length;
      if (member.bufferBytes > maxJoinBuffer) {
        // Re-target the replay: the buffered events will be read from the log instead.
        member.buffer = [];
        member.bufferBytes = 0;
        member.target = startedThrough ?? member.target;
      }
      return;
    }
    member.lastPosition = position;
    if (!member.sink.next(payload)) remove(member);
  }

  async function retrying<T>(what: string, work: () => Promise<T>): Promise<T> {
    let delay = retryDelayMs;
    for (;;) {
      try {
        return await work();
      } catch (error) {
        if (closed) throw error;
        log.warn({ err: error, field: field.name, retryInMs: delay }, `live: ${what} failed; retrying`);
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, MAX_RETRY_DELAY_MS);
      }
    }
  }

  function withEnvelope(event: RecordedEvent, update: LiveUpdate): { update: Record<string, unknown>; extensions: FlowgraphExtensions } {
    const position = positionOf(event);
    const cursor = codec.issue(binding, position, event.recordedAt.getTime());
    return {
      update: { ...update, cursor, eventType: event.type, occurredAt: event.recordedAt },
      extensions: { cursor, position: formatPosition(position) },
    };
  }

  async function processEvent(event: RecordedEvent): Promise<void> {
    const position = positionOf(event);
    // Members joining from here on replay up to this event (inclusive): they are not in the snapshot.
    startedThrough = position;
    const snapshot = [...groups.values()].map((set) => [...set]).filter((set) => set.length > 0);
    if (snapshot.length === 0) return;
    const update = await retrying('projecting an event', async () => projector.project(event));
    if (update === null) return;
    const { update: payload, extensions } = withEnvelope(event, update);
    await Promise.all(
      snapshot.map(async (set) => {
        const bytes = await set[0]!.group.execute(payload, extensions);
        for (const member of set) deliver(member, bytes, position);
      }),
    );
  }

  async function drain(): Promise<void> {
    if (processing) return;
    processing = true;
    try {
      while (queue.length > 0 && !closed) {
        const page = queue[0]!;
        for (const event of page.events) {
          if (closed) return;
          await processEvent(event);
        }
        queue.shift();
        queuedEvents -= page.events.length;
        if (startedThrough === null || compareLogPositions(page.position, startedThrough) > 0) startedThrough = page.position;
        if (queuedEvents < highWater) releaseWaiters();
      }
    } catch (error) {
      if (!closed) log.error({ err: error, field: field.name }, 'live: feed stopped on an unexpected error');
      failAll(error);
    } finally {
      processing = false;
      releaseWaiters();
    }
  }

  function releaseWaiters(): void {
    const released = waiters;
    waiters = [];
    for (const resolve of released) resolve();
  }

  function failAll(_error: unknown): void {
    for (const member of members()) member.sink.error([{ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }]);
    close();
    options.onEmpty();
  }

  /** Replays the log for `member` from its cursor up to its target, then makes it live. */
  async function replay(member: Member): Promise<void> {
    const replayProjector = field.createProjector(args);
    let position = member.lastPosition;
    for (;;) {
      if (closed || member.sink.stopped) return remove(member);
      if (compareLogPositions(position, member.target) >= 0) break;
      const page = await retrying('replaying from a cursor', () =>
        store.readAll({ after: position, count: 200, types: field.types, ...(streamId !== undefined ? { streamId } : {}) }),
      );
      let consumedAll = true;
      for (const event of page.events) {
        if (closed || member.sink.stopped) return remove(member);
        const at = positionOf(event);
        if (compareLogPositions(at, member.target) > 0) {
          // The next event in log order is past the target: everything up to it is replayed.
          consumedAll = false;
          position = member.target;
          break;
        }
        const update = await retrying('projecting an event', async () => replayProjector.project(event));
        if (update !== null) {
          const { update: payload, extensions } = withEnvelope(event, update);
          const bytes = await member.group.execute(payload, extensions);
          member.lastPosition = at;
          if (!member.sink.next(bytes)) return remove(member);
        }
        position = at;
      }
      if (consumedAll && compareLogPositions(page.position, position) > 0) position = page.position;
      if (consumedAll && page.events.length === 0 && compareLogPositions(position, member.target) < 0) {
        // Everything visible is read and the target is committed: the bound reaches it shortly.
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    // Live from here: the buffer holds every frame after the target, in order.
    const buffered = member.buffer ?? [];
    member.buffer = null;
    member.bufferBytes = 0;
    if (compareLogPositions(member.target, member.lastPosition) > 0) member.lastPosition = member.target;
    for (const frame of buffered) deliver(member, frame.payload, frame.position);
    if (member.announce) announce(member, member.lastPosition);
  }

  function close(): void {
    if (closed) return;
    closed = true;
    clearInterval(heartbeat);
    groups.clear();
    queue.length = 0;
    releaseWaiters();
    ready?.();
  }

  return {
    binding,
    streamId,
    types,
    get size() {
      return members().length;
    },
    start(position) {
      // Never back: the follower may have handed out a page between `register` and this call
      // (the feed took it with nobody joined yet); members must replay up to it, not to `position`.
      if (startedThrough === null || compareLogPositions(position, startedThrough) > 0) startedThrough = position;
      ready?.();
    },
    push(events, position) {
      if (closed) return;
      queue.push({ events, position });
      queuedEvents += events.length;
      void drain();
    },
    drained() {
      if (closed || queuedEvents < highWater) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push(resolve));
    },
    join({ group, sink, after, announcePositions }) {
      let member: Member | undefined;
      let left = false;
      const live = (async () => {
        await started;
        if (closed) throw new Error('the feed is closed');
        if (left) {
          if (groups.size === 0) {
            close();
            options.onEmpty();
          }
          return;
        }
        const origin = after ?? (field.start === 'stream' ? LOG_ORIGIN : startedThrough!);
        const now = startedThrough!;
        const needsReplay = compareLogPositions(origin, now) < 0;
        member = {
          group,
          sink,
          lastPosition: origin,
          announce: announcePositions,
          lastAnnounced: null,
          buffer: needsReplay ? [] : null,
          bufferBytes: 0,
          target: now,
        };
        let set = groups.get(group.key);
        if (!set) groups.set(group.key, (set = new Set()));
        set.add(member);
        if (announcePositions) announce(member, origin);
        if (needsReplay) await replay(member);
      })();
      live.catch(() => {
        if (member) remove(member);
      });
      return {
        live,
        leave() {
          left = true;
          if (member) remove(member);
        },
      };
    },
    close,
  };
}

/** The log position of an event. */
export function positionOf(event: RecordedEvent): LogPosition {
  return { transactionId: event.transactionId, globalPosition: event.globalPosition };
}
