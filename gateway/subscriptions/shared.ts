/**
 * A shared subscription: every client subscription with the same plan, variables (cursor
 * aside) and identity is served by one upstream subscription; per event the plan's rest is run
 * once and serialized once, and each client only gets its `next` envelope (DESIGN.md,
 * "Subscriptions through the gateway": fan-out is the hot path).
 *
 * Joining (until the subgraph has accepted the shared upstream, the engine lets only clients with
 * its starting cursor join; the others wait for {@link SharedSubscription.settled}):
 * - A client whose cursor is the upstream's starting cursor, while the upstream has received no
 *   event yet, simply joins: it will see exactly what the upstream sees.
 * - Any other client catches up on an upstream of its own (from its cursor), while the shared
 *   upstream's frames are buffered for it from the moment it registered. Once its own upstream
 *   has delivered through the position the shared one had reached then, the private upstream is
 *   closed and the buffer flushed (frames after what it already got): no gap, no duplicate.
 *
 * Events are delivered to a client only when their position is after the last it received (or,
 * for a client that caught up, after the position its own upstream reached: its cursor's at least).
 */
import type { GraphQLFormattedError } from 'graphql';
import { compareLogPositions, type LogPosition } from '../../eventstore/cursor.ts';
import type { Hydrator, UpstreamEvent } from './hydrate.ts';
import type { Upstream, UpstreamHandlers } from './upstream.ts';

/** A client subscription as the shared subscription sees it (a graphql-ws operation). */
export interface ClientSink {
  next(payload: Buffer): boolean;
  error(errors: readonly GraphQLFormattedError[]): void;
  complete(): void;
  readonly stopped: boolean;
}

/** Options of {@link createSharedSubscription}. */
export interface SharedSubscriptionOptions {
  key: string;
  hydrate: Hydrator;
  /** Opens an upstream from `after` reporting to `handlers`. */
  openUpstream(after: string | null, handlers: UpstreamHandlers): Upstream;
  /** The starting cursor of the shared upstream (the first client's). */
  after: string | null;
  /** Called when the last member left or the upstream ended. */
  onClosed(): void;
  /** Largest buffer of a catching-up client, in bytes; past it its switch point moves forward. @default 8 MiB */
  maxCatchUpBufferBytes?: number;
  /**
   * Events hydrated concurrently (delivery stays in order), twice over: the shared upstream's,
   * and those of all catching-up members together. @default 8
   */
  hydrationConcurrency?: number;
  logger: { error(obj: object, msg: string): void };
}

/** A running shared subscription. */
export interface SharedSubscription {
  readonly key: string;
  /** The shared upstream's starting cursor (its first client's). */
  readonly after: string | null;
  /**
   * Whether the subgraph accepted the shared upstream (see {@link Upstream.accepted}). Until it
   * has, the starting cursor may still be refused (`INVALID_CURSOR`, `CURSOR_EXPIRED`), and that
   * error ends every member, catching-up ones included: only clients with that same cursor
   * should join then.
   */
  readonly accepted: boolean;
  /**
   * Resolves true once the subgraph accepted the shared upstream (its first position
   * announcement or event), false if the subscription closed before (refused, or left by all).
   */
  readonly settled: Promise<boolean>;
  /** Adds a client from its cursor. Returns a function removing it (idempotent). */
  join(sink: ClientSink, after: string | null): () => void;
  readonly members: number;
  /** Closes the upstream(s) and completes nobody. Idempotent. */
  close(): void;
}

interface Member {
  sink: ClientSink;
  lastPosition: LogPosition | null;
  /** Set while the member catches up on its own upstream. */
  catchUp: CatchUp | null;
}

interface CatchUp {
  upstream: Upstream;
  /** Shared frames since registration, in order. */
  buffer: { payload: Buffer; position: LogPosition | null }[];
  bytes: number;
  /** The shared upstream's position at registration (null: not known yet, take its first one). */
  mark: LogPosition | null;
  markKnown: boolean;
  /** How far the private upstream has delivered (events or announcements). */
  reached: LogPosition | null;
  /** Private events hydrated in order. */
  chain: Promise<void>;
}

/** Creates a shared subscription and its upstream. */
export function createSharedSubscription(options: SharedSubscriptionOptions): SharedSubscription {
  const { hydrate } = options;
  const maxBuffer = options.maxCatchUpBufferBytes ?? 8 * 1024 * 1024;
  const concurrency = options.hydrationConcurrency ?? 8;
  const members = new Set<Member>();
  let closed = false;
  let sharedPosition: LogPosition | null = null;
  let sharedPositionKnown = false;

  /** Hydrations of the catching-up members' events: a replay of a long backlog must not start them all at once. */
  const catchUpHydrations = createLimiter(concurrency);

  let flushing = false;
  let settle: (accepted: boolean) => void = () => {};
  const settled = new Promise<boolean>((resolve) => (settle = resolve));

  const upstream = options.openUpstream(options.after, {
    onPosition(_cursor, position) {
      settle(true);
      enqueue({ kind: 'position', position });
    },
    onEvent(event, position) {
      settle(true);
      enqueue({ kind: 'event', event, position });
    },
    onError(errors) {
      enqueue({ kind: 'error', errors });
    },
    onComplete() {
      enqueue({ kind: 'complete' });
    },
  });

  type Item =
    | { kind: 'position'; position: LogPosition }
    | { kind: 'event'; event: UpstreamEvent; position: LogPosition | null }
    | { kind: 'error'; errors: GraphQLFormattedError[] }
    | { kind: 'complete' };
  /** Ordered, bounded-concurrency hydration of the shared upstream's events. */
  const items: { item: Item; started?: boolean; value?: Buffer | Error }[] = [];
  let inFlight = 0;

  function enqueue(item: Item): void {
    if (closed) return;
    items.push({ item });
    pump();
  }

  function pump(): void {
    // Start hydrations up to the concurrency bound, in order; deliver in order as they finish.
    for (const entry of items) {
      if (inFlight >= concurrency) break;
      const item = entry.item;
      if (item.kind !== 'event' || entry.started) continue;
      entry.started = true;
      inFlight++;
      hydrate(item.event)
        .then(
          (value) => {
            entry.value = value;
          },
          (error: unknown) => {
            entry.value = error instanceof Error ? error : new Error(String(error));
          },
        )
        .finally(() => {
          inFlight--;
          pump();
        });
    }
    flush();
  }

  function flush(): void {
    if (flushing) return;
    flushing = true;
    try {
      while (items.length > 0 && !closed) {
        const entry = items[0]!;
        const { item } = entry;
        if (item.kind === 'event') {
          const settled = entry.value;
          if (settled === undefined) break;
          items.shift();
          if (settled instanceof Error) {
            options.logger.error({ err: settled }, 'gateway: subscription event hydration failed');
            continue;
          }
          deliverShared(settled, item.position);
        } else if (item.kind === 'position') {
          items.shift();
          advanceShared(item.position);
        } else if (item.kind === 'error') {
          items.shift();
          for (const member of [...members]) {
            member.catchUp?.upstream.close();
            member.sink.error(item.errors);
          }
          close();
        } else {
          items.shift();
          for (const member of [...members]) {
            member.catchUp?.upstream.close();
            member.sink.complete();
          }
          close();
        }
      }
    } finally {
      flushing = false;
    }
  }

  function advanceShared(position: LogPosition): void {
    if (!sharedPositionKnown || sharedPosition === null || compareLogPositions(position, sharedPosition) > 0) sharedPosition = position;
    sharedPositionKnown = true;
    for (const member of members) {
      if (member.catchUp && !member.catchUp.markKnown) {
        member.catchUp.mark = position;
        member.catchUp.markKnown = true;
        trySwitch(member);
      }
    }
  }

  function deliverShared(payload: Buffer, position: LogPosition | null): void {
    if (position) advanceShared(position);
    for (const member of [...members]) {
      const catchUp = member.catchUp;
      if (catchUp) {
        catchUp.buffer.push({ payload, position });
        catchUp.bytes += payload.length;
        if (catchUp.bytes > maxBuffer) {
          // Too far behind to hold the shared frames: switch later, from the shared position now.
          catchUp.buffer = [];
          catchUp.bytes = 0;
          catchUp.mark = sharedPosition;
          catchUp.markKnown = sharedPositionKnown;
        }
        continue;
      }
      deliver(member, payload, position);
    }
  }

  function deliver(member: Member, payload: Buffer, position: LogPosition | null): void {
    if (position && member.lastPosition && compareLogPositions(position, member.lastPosition) <= 0) return;
    if (position) member.lastPosition = position;
    if (!member.sink.next(payload)) remove(member);
  }

  function trySwitch(member: Member): void {
    const catchUp = member.catchUp;
    if (!catchUp || !catchUp.markKnown || catchUp.reached === null) return;
    if (catchUp.mark !== null && compareLogPositions(catchUp.reached, catchUp.mark) < 0) return;
    member.catchUp = null;
    catchUp.upstream.close();
    // Everything up to `reached` is the client's: delivered by its upstream, or before its cursor
    // (the subgraph announces the cursor's position first). A shared upstream that started from
    // an older cursor sends those events again: they are not the client's to receive.
    if (member.lastPosition === null || compareLogPositions(catchUp.reached, member.lastPosition) > 0) member.lastPosition = catchUp.reached;
    for (const frame of catchUp.buffer) deliver(member, frame.payload, frame.position);
  }

  function remove(member: Member): void {
    if (!members.delete(member)) return;
    member.catchUp?.upstream.close();
    if (members.size === 0) close();
  }

  function close(): void {
    if (closed) return;
    closed = true;
    upstream.close();
    for (const member of members) member.catchUp?.upstream.close();
    members.clear();
    items.length = 0;
    settle(false);
    options.onClosed();
  }

  function startCatchUp(member: Member, after: string | null): void {
    const catchUp: CatchUp = {
      upstream: undefined as unknown as Upstream,
      buffer: [],
      bytes: 0,
      mark: sharedPosition,
      markKnown: sharedPositionKnown,
      reached: null,
      chain: Promise.resolve(),
    };
    member.catchUp = catchUp;
    const reach = (position: LogPosition) => {
      if (catchUp.reached === null || compareLogPositions(position, catchUp.reached) > 0) catchUp.reached = position;
    };
    catchUp.upstream = options.openUpstream(after, {
      onPosition(_cursor, position) {
        catchUp.chain = catchUp.chain.then(() => {
          if (member.catchUp !== catchUp) return;
          reach(position);
          trySwitch(member);
        });
      },
      onEvent(event, position) {
        const hydrated = catchUpHydrations(() => (member.catchUp === catchUp ? hydrate(event) : Promise.resolve(undefined)));
        catchUp.chain = catchUp.chain.then(async () => {
          const payload = await hydrated.catch((error: unknown) => {
            options.logger.error({ err: error }, 'gateway: subscription event hydration failed');
            return undefined;
          });
          if (member.catchUp !== catchUp || payload === undefined) return;
          deliver(member, payload, position);
          if (position) reach(position);
          trySwitch(member);
        });
      },
      onError(errors) {
        catchUp.chain = catchUp.chain.then(() => {
          if (member.catchUp !== catchUp) return;
          member.sink.error(errors);
          remove(member);
        });
      },
      onComplete() {
        catchUp.chain = catchUp.chain.then(() => {
          if (member.catchUp !== catchUp) return;
          member.sink.complete();
          remove(member);
        });
      },
    });
  }

  return {
    key: options.key,
    after: options.after,
    get accepted() {
      return upstream.accepted;
    },
    settled,
    get members() {
      return members.size;
    },
    join(sink, after) {
      const member: Member = { sink, lastPosition: null, catchUp: null };
      members.add(member);
      // Nothing received yet from the same cursor: the shared upstream's sequence is exactly this client's.
      const fresh = upstream.received === 0 && after === options.after;
      if (!fresh) startCatchUp(member, after);
      return () => remove(member);
    },
    close,
  };
}


/** Runs at most `concurrency` of the functions given at once, the others queued in order. */
function createLimiter(concurrency: number): <T>(work: () => Promise<T>) => Promise<T> {
  let active = 0;
  const queue: (() => void)[] = [];
  const release = () => {
    active--;
    queue.shift()?.();
  };
  return <T>(work: () => Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      const start = () => {
        active++;
        work().then(resolve, reject).finally(release);
      };
      if (active < concurrency) start();
      else queue.push(start);
    });
}
