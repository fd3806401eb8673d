import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BadUserInputError } from '../errors.ts';
import { requireCorpus, resolveCorpusDir } from '../../../config/corpus.ts';
import { readCorpusFile } from './readCorpusFile.ts';

/** The corpus directory (FLOWGRAPH_CORPUS_DIR or ../shared/corpus); only the first test needs it to exist. */
const CORPUS_DIR = resolveCorpusDir(process.env);

async function reason(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(BadUserInputError);
  return (error as BadUserInputError).reason;
}

describe('readCorpusFile', () => {
  it('reads a corpus file by name (FLOWGRAPH_CORPUS_DIR, default ../shared/corpus)', async () => {
    const bytes = await readCorpusFile(requireCorpus(), 'sign-of-the-four.txt');
    expect(bytes.byteLength).toBe(257665);
  });

  it.each(['../main/package.json', '../../etc/passwd', 'a/b.txt', '/etc/passwd', '.hidden', '..', 'x\u0000.txt', ''])(
    'rejects %j as INVALID_CORPUS_FILE',
    async (name) => {
      expect(await reason(readCorpusFile(CORPUS_DIR, name))).toBe('INVALID_CORPUS_FILE');
    },
  );

  it('rejects a missing file as CORPUS_FILE_NOT_FOUND', async () => {
    expect(await reason(readCorpusFile(CORPUS_DIR, 'no-such-book.txt'))).toBe('CORPUS_FILE_NOT_FOUND');
  });

  it('rejects a symlink that leads outside the directory as INVALID_CORPUS_FILE', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'corpus-'));
    writeFileSync(path.join(dir, 'ok.txt'), 'fine');
    symlinkSync('/etc/hostname', path.join(dir, 'escape.txt'));
    expect(new TextDecoder().decode(await readCorpusFile(dir, 'ok.txt'))).toBe('fine');
    expect(await reason(readCorpusFile(dir, 'escape.txt'))).toBe('INVALID_CORPUS_FILE');
  });
});
