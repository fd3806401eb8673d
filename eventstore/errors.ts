/**
 * Typed errors of the event store. Every error carries a stable `code` (match on it, never on
 * the message) and the context that explains it. Codes double as GraphQL `extensions.code`
 * values where an error reaches a client.
 */

/** Registry of event store error codes. */
export const EventStoreErrorCode = {
  WrongExpectedVersion: 'WRONG_EXPECTED_VERSION',
  InvalidExpectedVersion: 'INVALID_EXPECTED_VERSION',
  EmptyBatch: 'EMPTY_BATCH',
  InvalidEventData: 'INVALID_EVENT_DATA',
  EventTooLarge: 'EVENT_TOO_LARGE',
  EventIdConflict: 'EVENT_ID_CONFLICT',
  CheckpointConflict: 'CHECKPOINT_CONFLICT',
  InvalidCursor: 'INVALID_CURSOR',
  CursorExpired: 'CURSOR_EXPIRED',
  InvalidStreamId: 'INVALID_STREAM_ID',
  CommandRetriesExhausted: 'COMMAND_RETRIES_EXHAUSTED',
  SubscriptionClosed: 'SUBSCRIPTION_CLOSED',
  TransactionConflict: 'TRANSACTION_CONFLICT',
  ConnectionLost: 'CONNECTION_LOST',
  AppendOutsideTransactionStart: 'APPEND_NOT_FIRST_WRITE',
  DuplicateDelivery: 'DUPLICATE_DELIVERY',
  InexactNumber: 'INEXACT_NUMBER',
} as const;
export type EventStoreErrorCode = (typeof EventStoreErrorCode)[keyof typeof EventStoreErrorCode];

/** Base class of every error the event store throws on purpose. */
export class EventStoreError extends Error {
  readonly code: EventStoreErrorCode;
  constructor(code: EventStoreErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/**
 * The stream's current version did not match the append's expected version. `actual` is the
 * stream's version when the append was decided: `-1` when the stream does not exist, else the
 * position of its last event (0-based).
 */
export class WrongExpectedVersionError extends EventStoreError {
  constructor(
    readonly streamId: string,
    readonly expected: string,
    readonly actual: number,
  ) {
    super(
      EventStoreErrorCode.WrongExpectedVersion,
      `Wrong expected version for stream "${streamId}": expected ${expected}, actual ${actual === -1 ? 'no_stream (-1)' : actual}`,
    );
  }
}

/** The `expectedVersion` option is none of `any`, `no_stream`, `stream_exists` or an integer ≥ -1. */
export class InvalidExpectedVersionError extends EventStoreError {
  constructor(readonly received: unknown) {
    super(
      EventStoreErrorCode.InvalidExpectedVersion,
      `Invalid expected version ${describe(received)}: expected "any", "no_stream", "stream_exists" or an integer >= -1`,
    );
  }
}

/** An append was asked to store zero events. */
export class EmptyBatchError extends EventStoreError {
  constructor(readonly streamId: string) {
    super(EventStoreErrorCode.EmptyBatch, `Append to stream "${streamId}" has no events: a batch needs at least one event`);
  }
}

/** A stream id that is empty, too long, not a string, or not valid Unicode (U+0000, an unpaired surrogate): eventstore/validate.ts. */
export class InvalidStreamIdError extends EventStoreError {
  constructor(readonly received: unknown, reason: string) {
    super(EventStoreErrorCode.InvalidStreamId, `Invalid stream id ${describe(received)}: ${reason}`);
  }
}

/**
 * An event's `data` or `metadata` is not storable JSON (undefined, a function, a BigInt, a
 * non-finite number, a cycle, a class instance, a string holding U+0000 which PostgreSQL's
 * jsonb rejects), or its `type`/`eventId`/`schemaVersion` is malformed. `path` points at the
 * offending value, e.g. `events[2].data.items[0]`.
 */
export class InvalidEventDataError extends EventStoreError {
  constructor(readonly path: string, reason: string) {
    super(EventStoreErrorCode.InvalidEventData, `Invalid event at ${path}: ${reason}`);
  }
}

/**
 * A stored event holds a JSON number that a double cannot hold exactly (eventstore/jsonNumbers.ts),
 * e.g. `9007199254740993` written by another writer with raw SQL: the read fails instead of
 * handing out a rounded value. `column` is `data` or `metadata`, `jsonPath` the number's place
 * in it (`big`, `items[2]`, `$` for the whole value), `text` the number as PostgreSQL prints it
 * (whole; the message shortens it past 64 characters).
 */
export class InexactNumberError extends EventStoreError {
  constructor(
    readonly streamId: string,
    readonly streamPosition: number,
    readonly eventId: string,
    readonly column: 'data' | 'metadata',
    readonly jsonPath: string,
    readonly text: string,
  ) {
    super(
      EventStoreErrorCode.InexactNumber,
      `Event ${eventId} (stream "${streamId}", version ${streamPosition}) holds the number ${text.length <= 64 ? text : `${text.slice(0, 30)}…${text.slice(-30)} (${text.length} characters)`} at ${column}${jsonPath === '$' ? '' : jsonPath.startsWith('[') ? jsonPath : `.${jsonPath}`}, which a double cannot hold exactly: the read refuses to round it`,
    );
  }
}

/** An event's serialised `data` exceeds the store's `maxEventBytes` (UTF-8 bytes of its JSON). */
export class EventTooLargeError extends EventStoreError {
  constructor(
    readonly index: number,
    readonly type: string,
    readonly sizeBytes: number,
    readonly limitBytes: number,
  ) {
    super(
      EventStoreErrorCode.EventTooLarge,
      `Event #${index} (${type}) is ${sizeBytes} bytes of JSON data; the limit is ${limitBytes} bytes. Split large inputs across several events`,
    );
  }
}

/** An `eventId` already stored with a different stream, type or payload. */
export class EventIdConflictError extends EventStoreError {
  constructor(readonly eventId: string, reason: string) {
    super(EventStoreErrorCode.EventIdConflict, `Event id ${eventId} is already used by a different event: ${reason}`);
  }
}

/**
 * A checkpoint write found a different previous value than the one the writer read: another
 * consumer (after a takeover) moved it. The writer must stop; its transaction was rolled back.
 */
export class CheckpointConflictError extends EventStoreError {
  constructor(readonly subscriptionName: string) {
    super(
      EventStoreErrorCode.CheckpointConflict,
      `Checkpoint of subscription "${subscriptionName}" was moved by another consumer; this consumer stops`,
    );
  }
}

/**
 * A cursor string that this store (or this subscription) did not produce. `reason`, when
 * given, says which check failed (e.g. `not issued for this subscription`); it is safe to show
 * to clients. `received` is the input as given; the message quotes at most its first 40
 * characters.
 */
export class InvalidCursorError extends EventStoreError {
  constructor(
    readonly received: string,
    readonly reason?: string,
  ) {
    super(
      EventStoreErrorCode.InvalidCursor,
      `Invalid cursor ${quote(received)}${reason ? ` (${reason})` : ''}: pass back a cursor the server returned`,
    );
  }
}

/**
 * A genuine subscription cursor older than the resume window (DESIGN.md, "Cursors"): the events
 * after it may no longer be replayed. The client must re-query the current state, then
 * subscribe again without `after`. Ages and windows are in ms.
 */
export class CursorExpiredError extends EventStoreError {
  constructor(
    readonly ageMs: number,
    readonly resumeWindowMs: number,
  ) {
    super(
      EventStoreErrorCode.CursorExpired,
      `Cursor expired: it was issued ${formatDuration(ageMs)} ago and the resume window is ${formatDuration(resumeWindowMs)}; ` +
        're-query the current state, then subscribe again without `after`',
    );
  }
}

/** A command handler met a concurrent writer on every one of its attempts. */
export class CommandRetriesExhaustedError extends EventStoreError {
  constructor(readonly streamId: string, readonly attempts: number, cause: unknown) {
    super(
      EventStoreErrorCode.CommandRetriesExhausted,
      `Command on stream "${streamId}" lost to concurrent writers ${attempts} times in a row`,
      { cause },
    );
  }
}

/**
 * A transaction that appends to several streams met a younger transaction that had appended
 * to one of them first; committing would break per-stream log order. Retry the transaction.
 */
export class TransactionConflictError extends EventStoreError {
  constructor(readonly streamId: string) {
    super(
      EventStoreErrorCode.TransactionConflict,
      `Stream "${streamId}" was appended to by a later transaction; retry the whole transaction`,
    );
  }
}

/**
 * PostgreSQL ended the transaction's session (pg_terminate_backend, an idle-in-transaction
 * timeout, a restart or failover) before it committed. `outcome`: `rolled back` when the session
 * ended before COMMIT was sent (nothing of the transaction is stored: retry it), `unknown` when
 * it ended during COMMIT (appends are idempotent by event id: retrying with the same ids is safe).
 * `cause` is the driver's error (SQLSTATE 57P01 or "Connection terminated"), so callers that
 * classify database failures see an unavailable database.
 */
export class ConnectionLostError extends EventStoreError {
  constructor(readonly outcome: 'rolled back' | 'unknown', cause: unknown) {
    super(
      EventStoreErrorCode.ConnectionLost,
      outcome === 'rolled back'
        ? 'The database ended the session inside the transaction; nothing of it was stored; retry it'
        : 'The database ended the session during COMMIT; the transaction may or may not be stored; retry it with the same event ids',
      { cause },
    );
  }
}

/**
 * `append_to_stream` was called in a transaction that had already written something without
 * taking the appenders lock first: readers could skip its events. Use `store.transaction()`.
 */
export class AppendNotFirstWriteError extends EventStoreError {
  constructor() {
    super(
      EventStoreErrorCode.AppendOutsideTransactionStart,
      'An append must be the first write of its transaction; open transactions with store.transaction()',
    );
  }
}

function quote(text: unknown): string {
  const s = String(text);
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}…` : s);
}

/** `90061000` → `"25 h 1 min 1 s"`; below a second, `"250 ms"`. */
function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const seconds = Math.floor(ms / 1000);
  const parts: string[] = [];
  const h = Math.floor(seconds / 3600);
  const min = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (h > 0) parts.push(`${h} h`);
  if (min > 0) parts.push(`${min} min`);
  if (s > 0 || parts.length === 0) parts.push(`${s} s`);
  return parts.join(' ');
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}
