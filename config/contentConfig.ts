/** Settings of the content service read from the environment (README, "Configuration"). */
import path from 'node:path';
import { parseEnv, pathVar } from './env.ts';

/** Content-specific settings. */
export interface ContentSettings {
  /** `FLOWGRAPH_CORPUS_DIR`: where `corpusFile` names are looked up. Unset: `<repo>/../shared/corpus`. */
  corpusDir?: string;
}

/** @throws ConfigError naming the bad variable */
export function parseContentSettings(env: NodeJS.ProcessEnv): ContentSettings {
  const v = parseEnv(env, { FLOWGRAPH_CORPUS_DIR: pathVar('') });
  return v.FLOWGRAPH_CORPUS_DIR ? { corpusDir: path.resolve(v.FLOWGRAPH_CORPUS_DIR) } : {};
}
