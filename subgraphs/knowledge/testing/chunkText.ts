/**
 * Test helper: splits a corpus file into chunks the way content does (README.md of content:
 * ~2000 characters, cut at the last paragraph break in the second half of the window), after
 * removing a BOM and normalising CRLF. Used by knowledge's tests to build DocumentChunked events.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { requireCorpus } from '../../../config/corpus.ts';

/** A chunk with its offsets (characters, end exclusive). */
export interface TextChunk {
  chunkIndex: number;
  text: string;
  startOffset: number;
  endOffset: number;
}

/**
 * Reads a corpus file as normalised text (BOM removed, CRLF → LF). The corpus directory follows
 * config/corpus.ts (FLOWGRAPH_CORPUS_DIR, absolute or cwd-relative; default ../shared/corpus).
 * @throws Error from requireCorpus (`corpus not found at <dir> ...`) when the directory is
 *   missing or empty; the read error when `file` is not in it
 */
export function readCorpusFile(file: string): string {
  return readFileSync(path.join(requireCorpus(), file), 'utf8').replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
}

/** Splits `text` into chunks of at most `size` characters (default 2000), preferring paragraph breaks. */
export function chunkText(text: string, size = 2000): TextChunk[] {
  const chunks: TextChunk[] = [];
  let start = 0;
  while (start < text.length) {
    let end = Math.min(text.length, start + size);
    if (end < text.length) {
      const br = text.lastIndexOf('\n\n', end);
      if (br > start + size / 2) end = br;
    }
    chunks.push({ chunkIndex: chunks.length, text: text.slice(start, end), startOffset: start, endOffset: end });
    start = end;
  }
  return chunks;
}
