/**
 * Shapes shared by every part of the event store. See `../../shared/DESIGN.md`, "Event store
 * semantics", for the guarantees behind them.
 */
import type { ClientBase } from 'pg';

/**
 * What an append expects of its stream (DESIGN.md, "Append"):
 * - `'any'`: no check; concurrent `any` appends never lose events.
 * - `'no_stream'`: the stream must not exist yet (same as `-1`).
 * - `'stream_exists'`: the stream must have at least one event.
 * - a number `n ≥ 0`: the stream's last event must be at position `n` (0-based).
 */
export type ExpectedVersion = 'any' | 'no_stream' | 'stream_exists' | number;

/** Metadata stored with every event. Unknown keys are kept as given (JSON values only). */
export interface EventMetadata {
  /** Id shared by every event caused, directly or not, by one user request. */
  correlationId?: string;
  /** `eventId` (or request id) of what directly caused this event. */
  causationId?: string;
  /** Who caused it: a user id, `operator`, or `system:<component>`. */
  actor?: string;
  /** W3C trace context `traceparent` header of the request that appended it. */
  traceparent?: string;
  [key: string]: unknown;
}

/** An event to append. */
export interface NewEvent<TType extends string = string, TData = unknown> {
  /** UUID; give one to make the append idempotent on retry. Default: a random UUID. */
  eventId?: string;
  /** Event type in PascalCase past tense, e.g. `RunStarted`. 1..200 characters. */
  type: TType;
  /** Payload: plain JSON (objects, arrays, strings, finite numbers, booleans, null). */
  data: TData;
  /** Version of the payload's shape, ≥ 1. Default 1. Upcasters turn older versions into the current one on read. */
  schemaVersion?: number;
  /** Per-event metadata, merged over the append's `metadata` option. */
  metadata?: EventMetadata;
}

/** An event as stored and read back. */
export interface RecordedEvent<TType extends string = string, TData = unknown> {
  eventId: string;
  streamId: string;
  /** 0-based, gapless per stream. */
  streamPosition: number;
  /** Position in the whole log (may have gaps; never rely on density). Decimal string of a bigint. */
  globalPosition: string;
  /** `xid8` of the appending transaction, decimal string. */
  transactionId: string;
  type: TType;
  /** Version after upcasting (the current one when an upcaster ran). */
  schemaVersion: number;
  data: TData;
  metadata: EventMetadata;
  recordedAt: Date;
}

/** Options of `appendToStream`. */
export interface AppendOptions {
  /** @default 'any' */
  expectedVersion?: ExpectedVersion;
  /** Metadata applied to every event of the batch (each event's own metadata wins per key). */
  metadata?: EventMetadata;
}

/** Result of an append (or of an idempotent re-append, which returns the original result). */
export interface AppendResult {
  streamId: string;
  /** Stream position of the batch's last event: pass it as the next `expectedVersion`. */
  nextExpectedVersion: number;
  /** Global positions of the batch's first and last event (decimal strings). */
  firstGlobalPosition: string;
  lastGlobalPosition: string;
  /** `xid8` of the transaction that stored the batch (decimal string). */
  transactionId: string;
  /** Cursor just after the batch's last event, for `readAll`/subscriptions `after`. */
  position: LogPosition;
  /** `true` when every event id was already stored and nothing new was written. */
  duplicate: boolean;
}

/**
 * A point in the whole log: readers order by `(transactionId, globalPosition)`. The start of
 * the log is `{ transactionId: '0', globalPosition: '0' }` (`LogPosition.start`).
 */
export interface LogPosition {
  transactionId: string;
  globalPosition: string;
}

/** Options of `readStream`. */
export interface ReadStreamOptions {
  /** @default 'forwards' */
  direction?: 'forwards' | 'backwards';
  /** First stream position to return (inclusive). Default: 0 forwards, the last event backwards. */
  from?: number;
  /** Maximum number of events. @default unbounded */
  count?: number;
}

/** Options of `readAll`. */
export interface ReadAllOptions {
  /** Return events strictly after this position. @default the start of the log */
  after?: LogPosition;
  /** Maximum number of events. @default 1000 */
  count?: number;
  /** Only these event types (the position still advances past others). */
  types?: readonly string[];
  /**
   * Only this stream's events, still in log order (the position still advances past other
   * streams' events, to the safe bound when the page is not full).
   * @throws InvalidStreamIdError when not a valid stream id (1-500 characters, no U+0000, no unpaired surrogate)
   */
  streamId?: string;
}

/** A page of the whole log. */
export interface ReadAllResult {
  events: RecordedEvent[];
  /**
   * Where the next read starts: the last returned event's position, or — when no event
   * matched `types` — the furthest position known to be safe to skip to.
   */
  position: LogPosition;
  /** `true` when no committed event after `position` was visible below the safe bound. */
  caughtUp: boolean;
}

/**
 * Upcasters by event type then by the schema version they read: `upcasters.RunStarted[1]`
 * turns a version-1 payload into a version-2 payload. They are chained until no upcaster
 * applies; they must be pure.
 */
export type Upcasters = Record<string, Record<number, (data: any, event: RecordedEvent) => unknown>>;

/**
 * A projection: turns events into read-model rows with SQL on the given client, inside a
 * transaction owned by the event store.
 */
export interface Projection {
  /** Unique name; also the checkpoint name of an async projection. */
  name: string;
  /** Event types it handles; others are never passed to `apply`. */
  handles: readonly string[];
  /** Apply events in log order (inline: the append's events, in batch order). */
  apply(events: readonly RecordedEvent[], client: ClientBase): Promise<void>;
  /** Delete everything the projection wrote, before a rebuild. */
  reset(client: ClientBase): Promise<void>;
}
