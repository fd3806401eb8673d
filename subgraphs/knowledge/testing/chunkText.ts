/**
 * Test helper: splits a corpus file into chunks the way content does (README.md of content:
 * ~2000 characters, cut at the last paragraph break in the second half of the window), after
 * removing a BOM and normalising CRLF. Used by knowledge's tests to build DocumentChunked events.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../../db/migrate.ts';

/** The shared corpus folder (`../shared/corpus` from the repository root, or FLOWGRAPH_CORPUS_DIR). */
export const CORPUS_DIR = path.resolve(REPO_ROOT, process.env.FLOWGRAPH_CORPUS_DIR ?? '../shared/corpus');

/** A chunk with its offsets (characters, end exclusive). */
export interface TextChunk {
  chunkIndex: number;
  text: string;
  startOffset: number;
  endOffset: number;
}

/** Reads a corpus file as normalised text (BOM removed, CRLF → LF). */
export function readCorpusFile(file: string): string {
  return readFileSync(path.join(CORPUS_DIR, file), 'utf8').replace(/^\uFEFF/, '').replace(/\r\n?/g, '\n');
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
