import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpusProblem, DEFAULT_CORPUS_DIR, requireCorpus, resolveCorpusDir } from './corpus.ts';

const REPO_ROOT = path.resolve(import.meta.dirname, '..');

describe('resolveCorpusDir', () => {
  it('defaults (unset or empty) to ../shared/corpus next to the repository', () => {
    expect(DEFAULT_CORPUS_DIR).toBe(path.resolve(REPO_ROOT, '..', 'shared', 'corpus'));
    expect(resolveCorpusDir({})).toBe(DEFAULT_CORPUS_DIR);
    expect(resolveCorpusDir({ FLOWGRAPH_CORPUS_DIR: '' })).toBe(DEFAULT_CORPUS_DIR);
  });

  it('takes FLOWGRAPH_CORPUS_DIR as is when absolute, against the working directory when relative', () => {
    expect(resolveCorpusDir({ FLOWGRAPH_CORPUS_DIR: '/srv/books' })).toBe('/srv/books');
    expect(resolveCorpusDir({ FLOWGRAPH_CORPUS_DIR: 'books/x' })).toBe(path.join(process.cwd(), 'books', 'x'));
  });
});

describe('corpusProblem / requireCorpus', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'corpus-config-'));

  it('accepts a directory with a readable file and returns it absolute', () => {
    const good = path.join(dir, 'good');
    mkdirSync(good);
    writeFileSync(path.join(good, 'book.txt'), 'text');
    expect(corpusProblem(good)).toBeUndefined();
    expect(requireCorpus({ FLOWGRAPH_CORPUS_DIR: good })).toBe(good);
  });

  it('names what is wrong: missing, not a directory, no readable files', () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(path.join(empty, 'only-a-subdirectory'), { recursive: true });
    const file = path.join(dir, 'file.txt');
    writeFileSync(file, 'x');
    expect(corpusProblem(path.join(dir, 'missing'))).toBe('does not exist');
    expect(corpusProblem(file)).toBe('is not a directory');
    expect(corpusProblem(empty)).toBe('has no readable files');
  });

  it('requireCorpus throws one message naming the directory and FLOWGRAPH_CORPUS_DIR', () => {
    const missing = path.join(dir, 'nowhere');
    expect(() => requireCorpus({ FLOWGRAPH_CORPUS_DIR: missing })).toThrow(
      `corpus not found at ${missing} (does not exist): clone the repository next to shared/ (the corpus is expected at ../shared/corpus) or set FLOWGRAPH_CORPUS_DIR to the corpus directory`,
    );
  });
});
