import { describe, expect, it } from 'vitest';
import { MAX_SUMMARY_ARRAY_ITEMS, MAX_SUMMARY_BYTES, MAX_SUMMARY_STRING_CHARS, summarizePayload } from './summarizePayload.ts';

const size = (v: unknown) => Buffer.byteLength(JSON.stringify(v), 'utf8');

describe('summarizePayload', () => {
  it('replaces chunk text by its length and keeps the other fields', () => {
    const text = 'Holmes '.repeat(2000);
    expect(summarizePayload({ documentId: 'd', chunkIndex: 3, chunkCount: 9, text, startOffset: 0, endOffset: text.length })).toEqual({
      documentId: 'd',
      chunkIndex: 3,
      chunkCount: 9,
      text: { omitted: 'text', length: text.length },
      startOffset: 0,
      endOffset: text.length,
    });
  });

  it('omits a run input’s inline document text at any depth and cuts long strings', () => {
    const summary = summarizePayload({ runInput: { title: 'T', text: 'x'.repeat(10_000) }, reason: 'é'.repeat(500) }) as { runInput: unknown; reason: string };
    expect(summary.runInput).toEqual({ title: 'T', text: { omitted: 'text', length: 10_000 } });
    expect(summary.reason).toBe(`${'é'.repeat(MAX_SUMMARY_STRING_CHARS)}…`);
  });

  it('bounds arrays and nesting', () => {
    const summary = summarizePayload({ list: Array.from({ length: 30 }, (_, i) => i), deep: { a: { b: { c: { d: 1 } }, l: [[1]] } } }) as { list: unknown[]; deep: unknown };
    expect(summary.list).toHaveLength(MAX_SUMMARY_ARRAY_ITEMS + 1);
    expect(summary.list.at(-1)).toBe('… 10 more');
    // payload (0) → deep (1) → a (2) → b (3): replaced.
    expect(summary.deep).toEqual({ a: { b: '[object: 1 keys]', l: '[array: 1 items]' } });
  });

  it('never exceeds MAX_SUMMARY_BYTES, keeping the leading top-level fields', () => {
    const wide = Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`field${i}`, 'y'.repeat(150)]));
    const summary = summarizePayload({ runId: 'r-1', ...wide });
    expect(size(summary)).toBeLessThanOrEqual(MAX_SUMMARY_BYTES);
    expect(summary).toMatchObject({ truncated: true, runId: 'r-1', field0: 'y'.repeat(150) });
    expect(summarizePayload(Array.from({ length: 20 }, () => 'z'.repeat(200)))).toEqual({ truncated: true });
  });

  it('turns non-JSON values into null and drops U+0000 (jsonb cannot store it)', () => {
    expect(summarizePayload(undefined)).toBeNull();
    expect(summarizePayload({ n: Number.NaN, s: 'a\u0000b' })).toEqual({ n: null, s: 'ab' });
  });
});
