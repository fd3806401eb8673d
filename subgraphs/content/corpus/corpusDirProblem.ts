/**
 * Checks the corpus directory at service start: content still starts without it (ingesting
 * inline `text` works), but every `corpusFile` would then be CORPUS_FILE_NOT_FOUND, so the
 * service logs a warning (subgraphs/content/service.ts).
 */
import { access, constants, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/**
 * What is wrong with `dir` as a corpus directory, or undefined when it is a directory holding
 * at least one readable regular file (symlinks followed). Never throws.
 * @returns e.g. `'does not exist'`, `'is not a directory'`, `'has no readable files'`
 */
export async function corpusDirProblem(dir: string): Promise<string | undefined> {
  let names: string[];
  try {
    if (!(await stat(dir)).isDirectory()) return 'is not a directory';
    names = await readdir(dir);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? String(error)})`;
  }
  for (const name of names) {
    const file = path.join(dir, name);
    const readable = await access(file, constants.R_OK).then(
      async () => (await stat(file)).isFile(),
      () => false,
    );
    if (readable) return undefined;
  }
  return 'has no readable files';
}
