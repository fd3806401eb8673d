/**
 * The bounded summary of an integration event's payload that monitoring keeps (issue 3:
 * monitoring observes every event; an 880 KB book makes hundreds of `DocumentChunked` events,
 * whose text must not be copied). Pure.
 *
 * Rules, applied in order:
 * 1. A property named `text` holding a string (chunk text, a run's inline document text) becomes
 *    `{ "omitted": "text", "length": <characters> }`.
 * 2. Any other string longer than {@link MAX_SUMMARY_STRING_CHARS} characters is cut to that
 *    many characters followed by `…`.
 * 3. Arrays keep their first {@link MAX_SUMMARY_ARRAY_ITEMS} items, then one string `"… <n> more"`.
 * 4. Objects and arrays at depth {@link MAX_SUMMARY_DEPTH} or more (the payload itself is at
 *    depth 0, `payload.a` at 1, `payload.a.b` at 2...) become `"[object: <n> keys]"` /
 *    `"[array: <n> items]"`.
 * 5. If the result still serialises to more than {@link MAX_SUMMARY_BYTES} bytes of UTF-8 JSON,
 *    only top-level properties are kept, in order, while they fit, plus `"truncated": true`
 *    (non-objects become `{ "truncated": true }`).
 */

/** Largest summary, in bytes of UTF-8 JSON. */
export const MAX_SUMMARY_BYTES = 2048;
/** Longest string kept whole, in characters. */
export const MAX_SUMMARY_STRING_CHARS = 200;
/** Array items kept. */
export const MAX_SUMMARY_ARRAY_ITEMS = 20;
/** Depth from which objects and arrays are replaced by a description (the payload is depth 0). */
export const MAX_SUMMARY_DEPTH = 3;

/** A JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Summarises `payload` (any JSON value; `undefined` and other non-JSON values become null). Never larger than MAX_SUMMARY_BYTES. */
export function summarizePayload(payload: unknown): Json {
  const summary = shrink(payload, 0);
  if (byteLength(summary) <= MAX_SUMMARY_BYTES) return summary;
  if (summary === null || typeof summary !== 'object' || Array.isArray(summary)) return { truncated: true };
  const kept: { [key: string]: Json } = { truncated: true };
  for (const [key, value] of Object.entries(summary)) {
    kept[key] = value;
    if (byteLength(kept) > MAX_SUMMARY_BYTES) {
      delete kept[key];
    }
  }
  return kept;
}

function shrink(value: unknown, depth: number, key?: string): Json {
  if (value === null || value === undefined) return null;
  if (typeof value === 'boolean') return value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'string') {
    if (key === 'text') return { omitted: 'text', length: value.length };
    // U+0000 cannot be stored in jsonb (the event store rejects it).
    const clean = value.replaceAll('\u0000', '');
    return clean.length > MAX_SUMMARY_STRING_CHARS ? `${clean.slice(0, MAX_SUMMARY_STRING_CHARS)}…` : clean;
  }
  if (Array.isArray(value)) {
    if (depth >= MAX_SUMMARY_DEPTH) return `[array: ${value.length} items]`;
    const items = value.slice(0, MAX_SUMMARY_ARRAY_ITEMS).map((item) => shrink(item, depth + 1));
    if (value.length > MAX_SUMMARY_ARRAY_ITEMS) items.push(`… ${value.length - MAX_SUMMARY_ARRAY_ITEMS} more`);
    return items;
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    if (depth >= MAX_SUMMARY_DEPTH) return `[object: ${entries.length} keys]`;
    const out: { [key: string]: Json } = {};
    for (const [k, v] of entries) out[k.replaceAll('\u0000', '')] = shrink(v, depth + 1, k);
    return out;
  }
  return null;
}

function byteLength(value: Json): number {
  return Buffer.byteLength(JSON.stringify(value), 'utf8');
}
