/**
 * Reads a file of the corpus directory (issue 3: `runInput.corpusFile` / `ingestDocument(corpusFile)`
 * is "a file name inside the corpus dir ... reject path traversal").
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { DOCUMENT_LIMITS } from '../document/limits.ts';
import { BadUserInputError, ContentRejectionReason } from '../errors.ts';

/** A plain file name: no separators, does not start with a dot, 1..255 characters. */
const FILE_NAME = /^[A-Za-z0-9_][A-Za-z0-9._ -]{0,254}$/;

/**
 * Reads `name` from `corpusDir`.
 * @param corpusDir absolute or cwd-relative directory
 * @param name a plain file name, e.g. `dracula.txt`
 * @returns the file's bytes
 * @throws BadUserInputError (field `corpusFile`): INVALID_CORPUS_FILE when `name` is not a plain
 *   file name (`../x`, `a/b`, `.hidden`, NUL...) or resolves (through a symlink) outside the
 *   directory; CORPUS_FILE_NOT_FOUND when no such regular file exists; DOCUMENT_TOO_LARGE when
 *   it is larger than DOCUMENT_LIMITS.maxBytes (not read then)
 */
export async function readCorpusFile(corpusDir: string, name: string): Promise<Uint8Array> {
  if (!FILE_NAME.test(name) || name.includes('..')) {
    throw new BadUserInputError(ContentRejectionReason.InvalidCorpusFile, `corpusFile must be a plain file name inside the corpus directory, got ${JSON.stringify(name.slice(0, 100))}`, {
      field: 'corpusFile',
    });
  }
  const notFound = () =>
    new BadUserInputError(ContentRejectionReason.CorpusFileNotFound, `The corpus has no file named ${JSON.stringify(name)}`, { field: 'corpusFile', corpusFile: name });
  let real: string;
  let root: string;
  try {
    root = await realpath(corpusDir);
    real = await realpath(path.join(root, name));
  } catch {
    throw notFound();
  }
  if (path.dirname(real) !== root) {
    throw new BadUserInputError(ContentRejectionReason.InvalidCorpusFile, `corpusFile ${JSON.stringify(name)} points outside the corpus directory`, { field: 'corpusFile' });
  }
  const info = await stat(real).catch(() => undefined);
  if (!info?.isFile()) throw notFound();
  if (info.size > DOCUMENT_LIMITS.maxBytes) {
    throw new BadUserInputError(ContentRejectionReason.DocumentTooLarge, `Corpus file ${name} has ${info.size} bytes; at most ${DOCUMENT_LIMITS.maxBytes} are accepted`, {
      field: 'corpusFile',
      sizeBytes: info.size,
      maxBytes: DOCUMENT_LIMITS.maxBytes,
    });
  }
  return new Uint8Array(await readFile(real));
}
