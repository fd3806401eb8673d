import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { corpusDirProblem } from './corpusDirProblem.ts';

describe('corpusDirProblem', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'content-corpus-check-'));

  it('is undefined for a directory holding a readable file', async () => {
    writeFileSync(path.join(dir, 'book.txt'), 'text');
    expect(await corpusDirProblem(dir)).toBeUndefined();
  });

  it('names what is wrong: missing, not a directory, no readable files', async () => {
    const empty = path.join(dir, 'empty');
    mkdirSync(path.join(empty, 'only-a-subdirectory'), { recursive: true });
    expect(await corpusDirProblem(path.join(dir, 'missing'))).toBe('does not exist');
    expect(await corpusDirProblem(path.join(dir, 'book.txt'))).toBe('is not a directory');
    expect(await corpusDirProblem(empty)).toBe('has no readable files');
  });
});
