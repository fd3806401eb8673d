/**
 * Tamper-evident subscription cursors (DESIGN.md, "Cursors"): a cursor encodes the log
 * position of the last event a client saw and the time it was issued, signed with an HMAC over
 * that and the subscription's field and arguments, so a cursor is only valid for the
 * subscription that issued it, and only within the resume window.
 *
 * Format (version 2): `base64url("2.<tx>.<gp>.<atMs>.<base64url(mac)>")` where `mac` is the
 * first 16 bytes of `HMAC-SHA256(key, "2|<field>|<canonicalArgs>|<tx>|<gp>|<atMs>")`,
 * `canonicalArgs` = {@link canonicalJson} of the coerced arguments without `after`. At most
 * 200 characters.
 *
 * Keys rotate: the first key signs, every key verifies, so a new key goes first and the old one
 * stays listed for one resume window.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { CursorExpiredError, InvalidCursorError, type LogPosition } from '../../eventstore/index.ts';

/** What a cursor is bound to: the subscription field and its arguments. */
export interface CursorBinding {
  /** The `Subscription` field, a GraphQL name (e.g. `runUpdated`). */
  field: string;
  /** The coerced (and normalised) GraphQL arguments WITHOUT `after`; JSON values (Dates etc. via `toJSON`). */
  args: Readonly<Record<string, unknown>>;
}

/** Options of {@link createCursorCodec}. */
export interface CursorCodecOptions {
  /** HMAC keys, each at least 32 bytes: the first signs, all verify (rotation). At least one. */
  keys: readonly Buffer[];
  /**
   * How old a cursor may be and still resume, in ms (measured from its `atMs`); `0` = no limit.
   * @default 86_400_000 (24 h)
   */
  resumeWindowMs?: number;
  /** The clock, in ms since the epoch. @default Date.now */
  now?: () => number;
}

/** Signs and verifies the cursors of one service's subscriptions. */
export interface CursorCodec {
  /** The resume window in force, in ms (0 = none). */
  readonly resumeWindowMs: number;
  /**
   * A cursor for `position` under `binding`, issued at `atMs` (the event's `recordedAt`, or
   * now for position announcements), in ms since the epoch.
   * @throws TypeError for a field that is not a GraphQL name, an `atMs` that is not a safe
   *   integer ≥ 0, a position out of range, or arguments that are not JSON (BigInt, cycle)
   */
  issue(binding: CursorBinding, position: LogPosition, atMs: number): string;
  /**
   * Checks that `cursor` was issued for `binding` under one of the keys and is still within the
   * resume window.
   * @returns the position the client saw last and when the cursor was issued
   * @throws InvalidCursorError (code `INVALID_CURSOR`) for anything not issued for that binding
   *   under a configured key, or issued more than 5 minutes in the future;
   *   CursorExpiredError (code `CURSOR_EXPIRED`) when `now() - atMs > resumeWindowMs`
   */
  verify(binding: CursorBinding, cursor: string): { position: LogPosition; atMs: number };
}

/** Default resume window: 24 h, in ms. */
export const DEFAULT_RESUME_WINDOW_MS = 86_400_000;
/** Shortest key, in bytes (HMAC-SHA256's output size: shorter keys weaken it). */
export const MIN_CURSOR_KEY_BYTES = 32;
/** Longest cursor accepted, in characters: longer input is refused before any decoding. */
export const MAX_CURSOR_LENGTH = 200;
/** How far in the future a cursor's `atMs` may be (clock skew between instances), in ms. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

const VERSION = '2';
const MAC_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BODY = /^2\.(0|[1-9][0-9]{0,19})\.(0|[1-9][0-9]{0,18})\.(0|[1-9][0-9]{0,15})\.([A-Za-z0-9_-]{22})$/;
const GRAPHQL_NAME = /^[_A-Za-z][_0-9A-Za-z]*$/;
const MAX_TRANSACTION_ID = 18446744073709551615n;
const MAX_GLOBAL_POSITION = 9223372036854775807n;

/**
 * Creates a codec.
 * @throws RangeError when there is no key, a key is not a Buffer of at least 32 bytes, or
 *   `resumeWindowMs` is not an integer ≥ 0
 */
export function createCursorCodec(options: CursorCodecOptions): CursorCodec {
  const { keys } = options;
  if (!Array.isArray(keys) || keys.length === 0) throw new RangeError('cursor codec: give at least one key');
  keys.forEach((key, i) => {
    if (!Buffer.isBuffer(key)) throw new RangeError(`cursor codec: key #${i + 1} is not a Buffer`);
    if (key.length < MIN_CURSOR_KEY_BYTES) {
      throw new RangeError(`cursor codec: key #${i + 1} is ${key.length} bytes; each key needs at least ${MIN_CURSOR_KEY_BYTES}`);
    }
  });
  // Copies: a caller reusing its buffers cannot change the keys afterwards.
  const own = keys.map((key) => Buffer.from(key));
  const signer = own[0]!;
  const resumeWindowMs = options.resumeWindowMs ?? DEFAULT_RESUME_WINDOW_MS;
  if (!Number.isSafeInteger(resumeWindowMs) || resumeWindowMs < 0) {
    throw new RangeError(`cursor codec: resumeWindowMs must be an integer >= 0 (0 = no window), got ${String(resumeWindowMs)}`);
  }
  const now = options.now ?? Date.now;

  const mac = (key: Buffer, bound: string, tx: string, gp: string, at: string) =>
    createHmac('sha256', key).update(`${bound}|${tx}|${gp}|${at}`, 'utf8').digest().subarray(0, MAC_BYTES);

  return {
    resumeWindowMs,
    issue(binding, position, atMs) {
      const bound = boundText(binding);
      const { transactionId: tx, globalPosition: gp } = position;
      if (!inRange(tx, MAX_TRANSACTION_ID) || !inRange(gp, MAX_GLOBAL_POSITION)) {
        throw new TypeError(`cursor codec: ${JSON.stringify(`${tx}:${gp}`)} is not a log position`);
      }
      if (!Number.isSafeInteger(atMs) || atMs < 0) throw new TypeError(`cursor codec: atMs must be a safe integer >= 0, got ${String(atMs)}`);
      const at = String(atMs);
      const body = `${VERSION}.${tx}.${gp}.${at}.${mac(signer, bound, tx, gp, at).toString('base64url')}`;
      return Buffer.from(body, 'latin1').toString('base64url');
    },
    verify(binding, cursor) {
      const bound = boundText(binding);
      // Cheap checks first: hostile input is refused before anything is decoded or hashed.
      if (typeof cursor !== 'string' || cursor.length === 0) throw new InvalidCursorError(String(cursor), 'empty');
      if (cursor.length > MAX_CURSOR_LENGTH) throw new InvalidCursorError(cursor, `longer than ${MAX_CURSOR_LENGTH} characters`);
      if (!BASE64URL.test(cursor)) throw new InvalidCursorError(cursor, 'not base64url');
      const bytes = Buffer.from(cursor, 'base64url');
      // Exactly one spelling per cursor: no trailing bits, no padding variants.
      if (bytes.toString('base64url') !== cursor) throw new InvalidCursorError(cursor, 'not base64url');
      const match = BODY.exec(bytes.toString('latin1'));
      if (!match) throw new InvalidCursorError(cursor, 'malformed');
      const tx = match[1]!;
      const gp = match[2]!;
      const at = match[3]!;
      const macText = match[4]!;
      if (!inRange(tx, MAX_TRANSACTION_ID) || !inRange(gp, MAX_GLOBAL_POSITION)) throw new InvalidCursorError(cursor, 'position out of range');
      const atMs = Number(at);
      if (!Number.isSafeInteger(atMs)) throw new InvalidCursorError(cursor, 'time out of range');
      const given = Buffer.from(macText, 'base64url');
      if (given.length !== MAC_BYTES || given.toString('base64url') !== macText) throw new InvalidCursorError(cursor, 'malformed');
      if (!own.some((key) => timingSafeEqual(mac(key, bound, tx, gp, at), given))) {
        throw new InvalidCursorError(cursor, 'not issued for this subscription');
      }
      const age = now() - atMs;
      if (age < -MAX_CLOCK_SKEW_MS) throw new InvalidCursorError(cursor, 'issued in the future');
      if (resumeWindowMs > 0 && age > resumeWindowMs) throw new CursorExpiredError(age, resumeWindowMs);
      return { position: { transactionId: tx, globalPosition: gp }, atMs };
    },
  };
}

/**
 * A codec with a random key of this process, for tests and single-process development: its
 * cursors stop verifying when the process restarts, and other instances refuse them.
 */
export function randomCursorCodec(options: Omit<CursorCodecOptions, 'keys'> = {}): CursorCodec {
  return createCursorCodec({ ...options, keys: [randomBytes(MIN_CURSOR_KEY_BYTES)] });
}

/**
 * Parses a comma-separated list of cursor keys (e.g. the value of a secret's environment
 * variable): each key base64 (standard or URL alphabet, padding optional) or hex, at least 32
 * bytes once decoded; spaces around keys are ignored. A key of hex digits only is read as hex.
 * Errors name the key by its place in the list and never quote key material.
 * @throws RangeError naming what is wrong (empty list or key, not base64/hex, too short)
 */
export function parseCursorKeys(text: string): Buffer[] {
  if (typeof text !== 'string' || text.trim() === '') throw new RangeError('cursor keys: the list is empty; give one or more base64 or hex keys of at least 32 bytes, comma-separated');
  const parts = text.split(',');
  return parts.map((raw, i) => {
    const name = `cursor key #${i + 1} of ${parts.length}`;
    const part = raw.trim();
    if (part === '') throw new RangeError(`${name} is empty (two commas in a row, or a trailing comma?)`);
    let key: Buffer;
    if (/^[0-9a-fA-F]+$/.test(part) && part.length % 2 === 0) key = Buffer.from(part, 'hex');
    else if (/^[A-Za-z0-9+/]+={0,2}$/.test(part) || /^[A-Za-z0-9_-]+={0,2}$/.test(part)) {
      const unpadded = part.replace(/=+$/, '');
      key = Buffer.from(unpadded, unpadded.includes('-') || unpadded.includes('_') ? 'base64url' : 'base64');
      // Buffer.from ignores what it cannot decode: a round trip proves nothing was dropped.
      const again = key.toString(unpadded.includes('-') || unpadded.includes('_') ? 'base64url' : 'base64').replace(/=+$/, '');
      if (again !== unpadded) throw new RangeError(`${name} is not valid base64 (${part.length} characters; its last character carries stray bits)`);
    } else {
      throw new RangeError(`${name} is neither hex nor base64 (${part.length} characters, with characters outside both alphabets)`);
    }
    if (key.length < MIN_CURSOR_KEY_BYTES) {
      throw new RangeError(`${name} is ${key.length} bytes; each key needs at least ${MIN_CURSOR_KEY_BYTES} (e.g. \`openssl rand -base64 32\`)`);
    }
    return key;
  });
}

/**
 * JSON of `value` with every object's keys sorted (by UTF-16 code units), otherwise as
 * `JSON.stringify` writes it: `toJSON` honoured, `undefined`/function members dropped (`null` in
 * arrays), non-finite numbers as `null`. So `{a:1,b:2}` and `{b:2,a:1}` give the same text.
 * @throws TypeError for a BigInt or a cycle
 */
export function canonicalJson(value: unknown): string {
  return canonical(value, new Set()) ?? 'null';
}

function canonical(input: unknown, ancestors: Set<object>): string | undefined {
  let value = input;
  if (value !== null && typeof value === 'object' && typeof (value as { toJSON?: unknown }).toJSON === 'function') {
    value = (value as { toJSON(): unknown }).toJSON();
  }
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new TypeError('cursor codec: arguments must be JSON; a BigInt is not');
    default:
      break;
  }
  if (value === null) return 'null';
  const object = value as object;
  if (ancestors.has(object)) throw new TypeError('cursor codec: arguments must be JSON; they hold a cycle');
  ancestors.add(object);
  let text: string;
  if (Array.isArray(object)) {
    text = `[${object.map((item: unknown) => canonical(item, ancestors) ?? 'null').join(',')}]`;
  } else {
    const record = object as Record<string, unknown>;
    const members: string[] = [];
    for (const key of Object.keys(record).sort()) {
      const member = canonical(record[key], ancestors);
      if (member !== undefined) members.push(`${JSON.stringify(key)}:${member}`);
    }
    text = `{${members.join(',')}}`;
  }
  ancestors.delete(object);
  return text;
}

/** `2|<field>|<canonicalArgs>`: the part of the MAC input that binds a cursor to its subscription. */
function boundText(binding: CursorBinding): string {
  // A GraphQL name never holds `|`, so the MAC input splits one way only.
  if (typeof binding?.field !== 'string' || !GRAPHQL_NAME.test(binding.field)) {
    throw new TypeError(`cursor codec: field ${JSON.stringify(binding?.field)} is not a GraphQL name`);
  }
  return `${VERSION}|${binding.field}|${canonicalJson(binding.args ?? {})}`;
}

function inRange(digits: unknown, max: bigint): digits is string {
  return typeof digits === 'string' && /^(0|[1-9][0-9]{0,19})$/.test(digits) && BigInt(digits) <= max;
}
