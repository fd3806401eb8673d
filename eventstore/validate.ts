/**
 * Input checks of an append, done before anything reaches PostgreSQL so that bad input is a
 * typed error and nothing is stored.
 *
 * Every string the store takes must reach PostgreSQL unchanged, so none may hold U+0000 (text and
 * jsonb cannot store it) or an unpaired UTF-16 surrogate (not Unicode; node-postgres would encode
 * it as U+FFFD, so two different strings would be stored as one): stream ids
 * (`InvalidStreamIdError`), event types (ASCII pattern), and every string and object key of an
 * event's data and metadata (`InvalidEventDataError` naming its path) are refused, never altered.
 */
import { randomUUID } from 'node:crypto';
import {
  EmptyBatchError,
  EventTooLargeError,
  InvalidEventDataError,
  InvalidExpectedVersionError,
  InvalidStreamIdError,
} from './errors.ts';
import type { EventMetadata, ExpectedVersion, NewEvent } from './types.ts';

/** Longest stream id, in characters. */
export const MAX_STREAM_ID_LENGTH = 500;
/** Largest serialised metadata of one event, in UTF-8 bytes of JSON. */
export const MAX_METADATA_BYTES = 16 * 1024;
/**
 * Deepest nesting of objects and arrays in an event's data or metadata (the value itself is
 * level 1). Deeper JSON is refused: recursive readers downstream (schema validation, upcasters,
 * GraphQL serialisation) would overflow the call stack on it and stall every subscription that
 * meets the event, for ever.
 */
export const MAX_JSON_DEPTH = 64;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const TYPE = /^[A-Za-z][A-Za-z0-9_.:-]{0,199}$/;

/** A batch ready for `eventstore.append_to_stream`: parallel arrays, JSON already serialised. */
export interface PreparedBatch {
  eventIds: string[];
  types: string[];
  schemaVersions: number[];
  data: string[];
  metadata: string[];
  /** `true` when the caller chose at least one event id (only then can the batch be a retry). */
  callerChoseIds: boolean;
}

/**
 * Turns an `ExpectedVersion` into the text the SQL function takes.
 * @throws InvalidExpectedVersionError
 */
export function expectedVersionText(expected: unknown): string {
  if (expected === undefined || expected === 'any') return 'any';
  if (expected === 'no_stream' || expected === 'stream_exists') return expected;
  if (typeof expected === 'number' && Number.isSafeInteger(expected) && expected >= -1) {
    return expected === -1 ? 'no_stream' : String(expected);
  }
  if (typeof expected === 'bigint' && expected >= -1n && expected <= BigInt(Number.MAX_SAFE_INTEGER)) {
    return expected === -1n ? 'no_stream' : expected.toString();
  }
  throw new InvalidExpectedVersionError(expected);
}

/**
 * A stream id is a string of 1..`MAX_STREAM_ID_LENGTH` UTF-16 code units of valid Unicode: no
 * U+0000 (PostgreSQL text cannot hold it) and no unpaired surrogate (U+D800..U+DFFF alone is not
 * a Unicode scalar value; node-postgres encodes it to UTF-8 as U+FFFD, so `"a\uD800"` and
 * `"a\uDBFF"` would both name the stream `"a\uFFFD"`).
 * @throws InvalidStreamIdError saying which rule the id breaks
 */
export function checkStreamId(streamId: unknown): asserts streamId is string {
  if (typeof streamId !== 'string') throw new InvalidStreamIdError(streamId, 'must be a string');
  if (streamId.length === 0) throw new InvalidStreamIdError(streamId, 'must not be empty');
  if (streamId.length > MAX_STREAM_ID_LENGTH) throw new InvalidStreamIdError(streamId.slice(0, 40) + '…', `longer than ${MAX_STREAM_ID_LENGTH} characters`);
  if (streamId.includes('\u0000')) throw new InvalidStreamIdError(streamId, 'contains U+0000');
  if (!streamId.isWellFormed()) {
    throw new InvalidStreamIdError(streamId, 'contains an unpaired UTF-16 surrogate (not valid Unicode: PostgreSQL would store U+FFFD instead, merging it with other ids)');
  }
}

/**
 * Validates and serialises a batch.
 * @param maxEventBytes limit of one event's serialised `data`, in UTF-8 bytes
 * @throws EmptyBatchError, InvalidEventDataError, EventTooLargeError
 */
export function prepareBatch(
  streamId: string,
  events: readonly NewEvent[],
  batchMetadata: EventMetadata | undefined,
  maxEventBytes: number,
): PreparedBatch {
  if (!Array.isArray(events)) throw new InvalidEventDataError('events', 'must be an array of events');
  if (events.length === 0) throw new EmptyBatchError(streamId);
  const batch: PreparedBatch = { eventIds: [], types: [], schemaVersions: [], data: [], metadata: [], callerChoseIds: false };
  const seen = new Set<string>();
  if (batchMetadata !== undefined) checkJson(batchMetadata, 'options.metadata', new Set(), 1);
  events.forEach((event, index) => {
    const at = `events[${index}]`;
    if (event === null || typeof event !== 'object') throw new InvalidEventDataError(at, 'must be an object { type, data }');
    // ASCII only, so U+0000 and unpaired surrogates are refused here too.
    if (typeof event.type !== 'string' || !TYPE.test(event.type)) {
      throw new InvalidEventDataError(`${at}.type`, 'must be 1-200 characters: a letter, then letters, digits, _ . : -');
    }
    let eventId = event.eventId;
    if (eventId === undefined) eventId = randomUUID();
    else {
      if (typeof eventId !== 'string' || !UUID.test(eventId)) throw new InvalidEventDataError(`${at}.eventId`, 'must be a UUID');
      eventId = eventId.toLowerCase();
      batch.callerChoseIds = true;
    }
    if (seen.has(eventId)) throw new InvalidEventDataError(`${at}.eventId`, `duplicates an earlier event id of the batch (${eventId})`);
    seen.add(eventId);
    const schemaVersion = event.schemaVersion ?? 1;
    if (!Number.isSafeInteger(schemaVersion) || schemaVersion < 1 || schemaVersion > 2_147_483_647) {
      throw new InvalidEventDataError(`${at}.schemaVersion`, 'must be an integer >= 1');
    }
    if (!('data' in event)) throw new InvalidEventDataError(`${at}.data`, 'is missing');
    checkJson(event.data, `${at}.data`, new Set(), 1);
    const data = JSON.stringify(event.data);
    const size = Buffer.byteLength(data, 'utf8');
    if (size > maxEventBytes) throw new EventTooLargeError(index, event.type, size, maxEventBytes);
    if (event.metadata !== undefined) checkJson(event.metadata, `${at}.metadata`, new Set(), 1);
    const metadata = JSON.stringify({ ...batchMetadata, ...event.metadata });
    if (Buffer.byteLength(metadata, 'utf8') > MAX_METADATA_BYTES) {
      throw new InvalidEventDataError(`${at}.metadata`, `larger than ${MAX_METADATA_BYTES} bytes of JSON`);
    }
    batch.eventIds.push(eventId);
    batch.types.push(event.type);
    batch.schemaVersions.push(schemaVersion);
    batch.data.push(data);
    batch.metadata.push(metadata);
  });
  return batch;
}

/**
 * Accepts exactly what survives a JSON round trip unchanged, what jsonb can store, and no
 * deeper than `MAX_JSON_DEPTH` levels (`depth` is the level of `value`).
 * @throws InvalidEventDataError naming the path of the first offending value
 */
function checkJson(value: unknown, path: string, ancestors: Set<object>, depth: number): void {
  switch (typeof value) {
    case 'string':
      if (value.includes('\u0000')) throw new InvalidEventDataError(path, 'strings may not contain U+0000 (PostgreSQL jsonb rejects it)');
      if (!value.isWellFormed()) throw new InvalidEventDataError(path, 'strings may not contain unpaired UTF-16 surrogates (not valid Unicode)');
      return;
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new InvalidEventDataError(path, `${value} is not a JSON number`);
      if (Object.is(value, -0)) throw new InvalidEventDataError(path, '-0 is stored as 0 (JSON and jsonb keep no sign of zero); pass 0');
      return;
    case 'object': {
      if (value === null) return;
      if (ancestors.has(value)) throw new InvalidEventDataError(path, 'is a circular reference');
      if (depth > MAX_JSON_DEPTH) throw new InvalidEventDataError(path, `nests objects and arrays deeper than ${MAX_JSON_DEPTH} levels`);
      ancestors.add(value);
      if (Array.isArray(value)) {
        value.forEach((item, i) => checkJson(item, `${path}[${i}]`, ancestors, depth + 1));
      } else {
        const proto = Object.getPrototypeOf(value);
        if (proto !== Object.prototype && proto !== null) {
          throw new InvalidEventDataError(path, `is a ${value.constructor?.name ?? 'non-plain'} object; convert it to plain JSON (e.g. a Date to an ISO string)`);
        }
        for (const [key, item] of Object.entries(value)) {
          if (key.includes('\u0000') || !key.isWellFormed()) throw new InvalidEventDataError(path, 'object keys may not contain U+0000 or unpaired surrogates');
          checkJson(item, `${path}.${key}`, ancestors, depth + 1);
        }
      }
      ancestors.delete(value);
      return;
    }
    default:
      throw new InvalidEventDataError(path, `a ${typeof value} is not JSON`);
  }
}
