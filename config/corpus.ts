/**
 * Where the corpus (public-domain books read by `corpusFile` names) lives — the one rule, used by
 * the composition root (config/contentConfig.ts), `npm run demo` and every test that reads it:
 *
 * `FLOWGRAPH_CORPUS_DIR`, absolute or relative to the current working directory; unset or empty:
 * `<repo>/../shared/corpus` (the repository cloned next to `shared/`, as CI does). README,
 * "Quick start" and "Configuration".
 */
import { accessSync, constants, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseEnv, pathVar } from './env.ts';

/** `FLOWGRAPH_CORPUS_DIR`'s default: `../shared/corpus` relative to the repository root (absolute). */
export const DEFAULT_CORPUS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'corpus');

/**
 * The corpus directory `env` designates (see the module comment for the rule).
 * @returns an absolute path (not checked for existence: see {@link corpusProblem})
 */
export function resolveCorpusDir(env: NodeJS.ProcessEnv): string {
  const { FLOWGRAPH_CORPUS_DIR } = parseEnv(env, { FLOWGRAPH_CORPUS_DIR: pathVar('') });
  return FLOWGRAPH_CORPUS_DIR ? path.resolve(FLOWGRAPH_CORPUS_DIR) : DEFAULT_CORPUS_DIR;
}

/**
 * What is wrong with `dir` as a corpus directory, or undefined when it is a directory holding
 * at least one readable regular file (symlinks followed).
 * @returns e.g. `'does not exist'`, `'is not a directory'`, `'has no readable files'`
 */
export function corpusProblem(dir: string): string | undefined {
  let names: string[];
  try {
    if (!statSync(dir).isDirectory()) return 'is not a directory';
    names = readdirSync(dir);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist' : `cannot be read (${(error as NodeJS.ErrnoException).code ?? String(error)})`;
  }
  const readable = names.some((name) => {
    try {
      const file = path.join(dir, name);
      accessSync(file, constants.R_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
  return readable ? undefined : 'has no readable files';
}

/** The advice given whenever the corpus is missing. */
export const CORPUS_HINT = 'clone the repository next to shared/ (the corpus is expected at ../shared/corpus) or set FLOWGRAPH_CORPUS_DIR to the corpus directory';

/**
 * For tests and tools that need the corpus: the directory `env` designates, checked.
 * @param env @default process.env
 * @returns the absolute corpus directory
 * @throws Error `corpus not found at <dir> (<problem>): clone the repository next to shared/ ...
 *   or set FLOWGRAPH_CORPUS_DIR ...` when {@link corpusProblem} finds a problem (never skip a test
 *   for it: the message is the point)
 */
export function requireCorpus(env: NodeJS.ProcessEnv = process.env): string {
  const dir = resolveCorpusDir(env);
  const problem = corpusProblem(dir);
  if (problem) throw new Error(`corpus not found at ${dir} (${problem}): ${CORPUS_HINT}`);
  return dir;
}
