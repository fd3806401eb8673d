/**
 * The chunking rule (README, "Documents and chunking"). Sizes are in characters, where a
 * character is a UTF-16 code unit (JavaScript string length; the same as Unicode code points
 * for text without astral characters, e.g. the whole corpus).
 *
 * Chunks are contiguous slices of the normalised text (see decodeText.ts): chunk 0 starts at
 * offset 0, chunk i+1 starts where chunk i ends, the last one ends at the text's length, so
 * concatenating the chunk texts in order gives back the text exactly (no separator is dropped:
 * a chunk keeps the blank lines or spaces it ends with). From a chunk's start `s`:
 * 1. if at most TARGET (2000) characters remain, they are the last chunk;
 * 2. otherwise the chunk ends at a paragraph boundary: the last one in (s, s+2000], else the
 *    first one in (s+2000, s+4000];
 * 3. else (a paragraph longer than 4000 characters) at a sentence end, chosen the same way;
 * 4. else at a whitespace boundary, chosen the same way;
 * 5. else after exactly MAX (4000) characters, or at the end of the text if nearer (one less
 *    if that would split a surrogate pair).
 * So no chunk is longer than 4000 characters (≤ 16 KB of JSON: far below the event store's
 * 256 KiB event limit) and whole paragraphs are kept together whenever they fit.
 *
 * Boundaries are positions between two characters, right after:
 * - paragraph: a line break followed by one or more blank lines (only spaces/tabs), i.e. the
 *   end of a match of `\n([ \t]*\n)+` — the next chunk starts at the next non-blank line;
 * - sentence end: `.`, `!` or `?` (repeated), optional closing quotes/brackets, then
 *   whitespace — the end of a match of `[.!?]+[)\]"'’”]*\s+` (no abbreviation detection:
 *   "Mr. Holmes" counts as a sentence end);
 * - whitespace: the end of a run of whitespace (`\s+`).
 */

/** Sizes of the chunking rule, in characters (UTF-16 code units). */
export const CHUNKING_RULE = {
  /** Preferred chunk length: whole paragraphs are packed up to it. */
  targetChars: 2000,
  /** Hard upper bound of a chunk's length. */
  maxChars: 4000,
} as const;

/** One chunk of a text. */
export interface TextChunk {
  /** 0-based position. */
  index: number;
  /** `text.slice(startOffset, endOffset)`. */
  text: string;
  /** Offset of its first character in the normalised text (UTF-16 code units). */
  startOffset: number;
  /** Offset just after its last character (exclusive). */
  endOffset: number;
}

/** Sizes of one run of the rule (tests use small ones). */
export interface ChunkSizes {
  targetChars: number;
  maxChars: number;
}

const PARAGRAPH = /\n(?:[ \t]*\n)+/g;
const SENTENCE = /[.!?]+[)\]"'’”]*\s+/g;
const WHITESPACE = /\s+/g;

/**
 * Splits `text` by the chunking rule above.
 * @param text normalised text (decodeText's output); '' gives no chunk
 * @param sizes @default CHUNKING_RULE (2000 / 4000)
 * @throws RangeError when sizes are not integers with 2 ≤ targetChars ≤ maxChars
 */
export function chunkText(text: string, sizes: ChunkSizes = CHUNKING_RULE): TextChunk[] {
  const { targetChars: target, maxChars: max } = sizes;
  if (!Number.isInteger(target) || !Number.isInteger(max) || target < 2 || max < target) {
    throw new RangeError(`chunk sizes must be integers with 2 <= targetChars <= maxChars, got ${target}/${max}`);
  }
  const kinds = [boundaries(text, PARAGRAPH), boundaries(text, SENTENCE), boundaries(text, WHITESPACE)];
  const chunks: TextChunk[] = [];
  let start = 0;
  while (start < text.length) {
    const end = chunkEnd(text, start, target, max, kinds);
    chunks.push({ index: chunks.length, text: text.slice(start, end), startOffset: start, endOffset: end });
    start = end;
  }
  return chunks;
}

/** End of the chunk starting at `start` (rules 1-5). */
function chunkEnd(text: string, start: number, target: number, max: number, kinds: readonly number[][]): number {
  if (text.length - start <= target) return text.length;
  for (const positions of kinds) {
    const upToTarget = lastAtMost(positions, start + target);
    if (upToTarget !== undefined && upToTarget > start) return upToTarget;
    const beyond = firstAbove(positions, start + target);
    if (beyond !== undefined && beyond <= start + max) return beyond;
  }
  const hard = Math.min(start + max, text.length);
  return isHighSurrogate(text.charCodeAt(hard - 1)) ? hard - 1 : hard;
}

/** End positions of every match of `pattern` (global), ascending. */
function boundaries(text: string, pattern: RegExp): number[] {
  const positions: number[] = [];
  for (const match of text.matchAll(pattern)) positions.push(match.index + match[0].length);
  return positions;
}

/** Largest element ≤ limit of an ascending array (binary search). */
function lastAtMost(sorted: readonly number[], limit: number): number | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= limit) lo = mid + 1;
    else hi = mid;
  }
  return lo > 0 ? sorted[lo - 1] : undefined;
}

/** Smallest element > limit of an ascending array (binary search). */
function firstAbove(sorted: readonly number[], limit: number): number | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! <= limit) lo = mid + 1;
    else hi = mid;
  }
  return sorted[lo];
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
