/** Settings of the content service read from the environment (README, "Configuration"). */
import { resolveCorpusDir } from './corpus.ts';

/** Content-specific settings. */
export interface ContentSettings {
  /**
   * `FLOWGRAPH_CORPUS_DIR`: where `corpusFile` names are looked up, absolute (rule and default
   * `<repo>/../shared/corpus`: config/corpus.ts). Not checked here: the service warns at start
   * when the directory is missing or empty.
   */
  corpusDir: string;
}

/** @throws ConfigError naming the bad variable */
export function parseContentSettings(env: NodeJS.ProcessEnv): ContentSettings {
  return { corpusDir: resolveCorpusDir(env) };
}
