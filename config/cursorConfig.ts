/**
 * Subscription cursor settings (DESIGN.md, "Cursors"; issue 6): the HMAC keys every service
 * signs and verifies its cursors with, and the resume window. Every instance of a service must
 * hold the same keys, or a client reconnecting to another instance (or after a restart) gets
 * INVALID_CURSOR.
 */
import { z } from 'zod';
import { createCursorCodec, DEFAULT_RESUME_WINDOW_MS, parseCursorKeys, type CursorCodec } from '../federation/live/cursor.ts';
import { loadOrCreateSecret } from '../db/secrets.ts';
import { ConfigError, parseEnv } from './env.ts';

/** Key of the generated development cursor key in `<FLOWGRAPH_DATA_DIR>/secrets.json`. */
export const CURSOR_SECRET_KEY = 'subscription-cursor-key';

/** What the environment says about cursors. */
export interface CursorConfig {
  /**
   * `FLOWGRAPH_CURSOR_SECRET`: comma-separated keys, each base64 or hex of at least 32 bytes; the
   * first signs, all verify (add the new key first, drop the old one after the resume window).
   * Undefined when unset.
   */
  keys: Buffer[] | undefined;
  /** `FLOWGRAPH_CURSOR_RESUME_WINDOW_MS`: how old a cursor may be and still resume, in ms; 0 = no limit. @default 86_400_000 (24 h) */
  resumeWindowMs: number;
}

const windowVar = z.preprocess(
  (value) => (value === '' ? undefined : value),
  z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(DEFAULT_RESUME_WINDOW_MS),
);

/**
 * Parses `FLOWGRAPH_CURSOR_SECRET` and `FLOWGRAPH_CURSOR_RESUME_WINDOW_MS`.
 * @throws ConfigError naming the variable (never quoting key material)
 */
export function parseCursorConfig(env: NodeJS.ProcessEnv): CursorConfig {
  const { FLOWGRAPH_CURSOR_RESUME_WINDOW_MS: resumeWindowMs } = parseEnv(env, { FLOWGRAPH_CURSOR_RESUME_WINDOW_MS: windowVar });
  const text = env.FLOWGRAPH_CURSOR_SECRET;
  if (text === undefined || text === '') return { keys: undefined, resumeWindowMs };
  try {
    return { keys: parseCursorKeys(text), resumeWindowMs };
  } catch (error) {
    throw new ConfigError(`invalid configuration:\n  FLOWGRAPH_CURSOR_SECRET: ${(error as Error).message} (got a value that is not shown)`);
  }
}

/**
 * The codec of a process. With keys configured, those; else, when `secretsFile` is given
 * (`npm start`), a 32-byte development key generated once and kept there (mode 600) so cursors
 * survive restarts of that machine's `npm start`.
 * @throws ConfigError when no key is configured and no secrets file may be used (a service run
 *   alone: every instance must share the key, so it must come from the configuration)
 */
export async function cursorCodecFor(config: CursorConfig, secretsFile: string | undefined, what: string): Promise<CursorCodec> {
  let keys = config.keys;
  if (!keys) {
    if (secretsFile === undefined) {
      throw new ConfigError(
        `invalid configuration:\n  FLOWGRAPH_CURSOR_SECRET: required to run ${what} (got unset); every instance of a service signs and verifies subscription cursors with it ` +
          '(e.g. `openssl rand -base64 32`)',
      );
    }
    keys = [Buffer.from(await loadOrCreateSecret(secretsFile, CURSOR_SECRET_KEY, 32), 'base64url')];
  }
  return createCursorCodec({ keys, resumeWindowMs: config.resumeWindowMs });
}
