/**
 * The chunking rule (chunkText.ts, README "Documents and chunking") on every corpus file and on
 * generated texts, checked against a second, deliberately naive implementation of the same
 * rule (character predicates instead of regular expressions and binary search).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { requireCorpus } from '../../../config/corpus.ts';
import { CHUNKING_RULE, chunkText, type ChunkSizes, type TextChunk } from './chunkText.ts';
import { decodeText } from './decodeText.ts';

const isSpace = (c: string | undefined) => c !== undefined && /\s/.test(c);
const isBlankLineAt = (text: string, i: number) => /^[ \t]*\n/.test(text.slice(i, i + 200));

/** i ends a line break followed by ≥ 1 blank lines, and the line at i is not blank. */
function isParagraphBoundary(text: string, i: number): boolean {
  if (text[i - 1] !== '\n' || isBlankLineAt(text, i)) return false;
  let j = i - 2;
  while (j >= 0 && (text[j] === ' ' || text[j] === '\t')) j--;
  return j >= 0 && text[j] === '\n';
}
/** i ends a whitespace run that follows [.!?] and optional closing quotes/brackets. */
function isSentenceEnd(text: string, i: number): boolean {
  if (!isSpace(text[i - 1]) || isSpace(text[i])) return false;
  let j = i - 1;
  while (j >= 0 && isSpace(text[j])) j--;
  while (j >= 0 && ')]"\'’”'.includes(text[j]!)) j--;
  return j >= 0 && '.!?'.includes(text[j]!);
}
const isWhitespaceEnd = (text: string, i: number) => isSpace(text[i - 1]) && !isSpace(text[i]);

/** The rule, written as plainly as possible. */
function naiveChunkEnds(text: string, { targetChars: t, maxChars: m }: ChunkSizes): number[] {
  const ends: number[] = [];
  let s = 0;
  while (s < text.length) {
    let end: number | undefined;
    if (text.length - s <= t) end = text.length;
    for (const is of [isParagraphBoundary, isSentenceEnd, isWhitespaceEnd]) {
      if (end !== undefined) break;
      for (let i = Math.min(s + t, text.length); i > s && end === undefined; i--) if (is(text, i)) end = i;
      for (let i = s + t + 1; i <= Math.min(s + m, text.length) && end === undefined; i++) if (is(text, i)) end = i;
    }
    if (end === undefined) {
      end = Math.min(s + m, text.length);
      const code = text.charCodeAt(end - 1);
      if (code >= 0xd800 && code <= 0xdbff) end--;
    }
    ends.push(end);
    s = end;
  }
  return ends;
}

function expectLossless(text: string, chunks: TextChunk[], max: number): void {
  expect(chunks.map((c) => c.text).join('')).toBe(text);
  let offset = 0;
  chunks.forEach((c, i) => {
    expect(c.index).toBe(i);
    expect(c.startOffset).toBe(offset);
    expect(c.text).toBe(text.slice(c.startOffset, c.endOffset));
    expect(c.text.length).toBeGreaterThan(0);
    expect(c.text.length).toBeLessThanOrEqual(max);
    offset = c.endOffset;
  });
  expect(offset).toBe(text.length);
}

/** FLOWGRAPH_CORPUS_DIR or ../shared/corpus; a missing corpus fails this file with one message. */
const corpusDir = requireCorpus();

const manifest = readFileSync(path.join(corpusDir, 'MANIFEST.csv'), 'utf8')
  .trim()
  .split('\n')
  .slice(1)
  .map((line) => line.split(',')[0]!);

/** Chunk counts of the corpus under the rule (pinned: a change of the rule must show here). */
const EXPECTED_CHUNKS: Record<string, number> = {
  'jekyll-and-hyde.txt': 96,
  'sign-of-the-four.txt': 150,
  'study-in-scarlet.txt': 158,
  'dorian-gray.txt': 259,
  'pride-and-prejudice.txt': 411,
  'dracula.txt': 527,
};

describe('chunkText on the corpus', () => {
  it('the manifest lists the six corpus files', () => {
    expect(manifest.sort()).toEqual(Object.keys(EXPECTED_CHUNKS).sort());
  });

  it.each(Object.keys(EXPECTED_CHUNKS))('%s: lossless, ≤ 4000 characters per chunk, cuts where the rule says, pinned count', (file) => {
    const { text } = decodeText(readFileSync(path.join(corpusDir, file)));
    const chunks = chunkText(text);
    expectLossless(text, chunks, CHUNKING_RULE.maxChars);
    expect(chunks.map((c) => c.endOffset)).toEqual(naiveChunkEnds(text, CHUNKING_RULE));
    // Prose has paragraph breaks within 4000 characters: nearly every cut is one (Dracula has
    // two paragraphs longer than 4000 characters, cut at a sentence end).
    const otherCuts = chunks.slice(0, -1).filter((c) => !isParagraphBoundary(text, c.endOffset));
    expect(otherCuts.length).toBe(file === 'dracula.txt' ? 2 : 0);
    for (const c of otherCuts) expect(isSentenceEnd(text, c.endOffset)).toBe(true);
    expect(chunks.length).toBe(EXPECTED_CHUNKS[file]);
    expect(chunks.length).toBeGreaterThanOrEqual(Math.ceil(text.length / CHUNKING_RULE.maxChars));
  });
});

describe('chunkText rules', () => {
  const small: ChunkSizes = { targetChars: 20, maxChars: 40 };

  it('keeps a text of at most targetChars characters in one chunk, and gives none for ""', () => {
    expect(chunkText('short text\n\nwith a paragraph', small)).toHaveLength(2);
    expect(chunkText('exactly twenty chars', small).map((c) => c.text)).toEqual(['exactly twenty chars']);
    expect(chunkText('')).toEqual([]);
  });

  it('packs whole paragraphs up to the target, keeping the blank lines with the chunk they end', () => {
    const text = 'aaaa aaa\n\nbbbb bbb\n\ncccc cccc cccc\n';
    expect(chunkText(text, small).map((c) => c.text)).toEqual(['aaaa aaa\n\nbbbb bbb\n\n', 'cccc cccc cccc\n']);
  });

  it('takes a paragraph longer than the target whole when it fits the maximum', () => {
    const long = 'x'.repeat(30);
    expect(chunkText(`${long}\n\nend of it all here.`, small).map((c) => c.text)).toEqual([`${long}\n\n`, 'end of it all here.']);
  });

  it('falls back to sentence ends, then whitespace, then a hard cut at maxChars', () => {
    const sentences = 'One two three. Four five six seven. Eight nine ten eleven twelve.';
    expect(chunkText(sentences, small).map((c) => c.text)).toEqual(['One two three. ', 'Four five six seven. ', 'Eight nine ten ', 'eleven twelve.']);
    const words = 'alpha beta gamma delta epsilon zeta eta theta';
    expect(chunkText(words, small).map((c) => c.text)).toEqual(['alpha beta gamma ', 'delta epsilon zeta ', 'eta theta']);
    const blob = 'y'.repeat(100);
    expect(chunkText(blob, small).map((c) => c.text.length)).toEqual([40, 40, 20]);
  });

  it('never splits a surrogate pair on a hard cut', () => {
    const text = `${'z'.repeat(39)}😀${'z'.repeat(30)}`;
    const chunks = chunkText(text, small);
    expect(chunks[0]!.text).toBe('z'.repeat(39));
    expectLossless(text, chunks, small.maxChars);
  });

  it('agrees with the naive implementation on generated texts', () => {
    let seed = 42;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const pieces = ['word', 'Mr.', 'end.', 'really?!', '"quoted."', ' ', ' ', '\n', '\n\n', '\n  \n', '\t', 'é', '😀', 'x'.repeat(25)];
    for (let round = 0; round < 300; round++) {
      let text = '';
      const n = Math.floor(random() * 80);
      for (let i = 0; i < n; i++) text += pieces[Math.floor(random() * pieces.length)];
      const chunks = chunkText(text, small);
      expectLossless(text, chunks, small.maxChars);
      expect(chunks.map((c) => c.endOffset)).toEqual(naiveChunkEnds(text, small));
    }
  });

  it('rejects sizes that break 2 <= targetChars <= maxChars', () => {
    expect(() => chunkText('abc', { targetChars: 10, maxChars: 5 })).toThrow(RangeError);
  });
});
