/**
 * Building blocks of the process configuration: zod schemas for the shared variables (README,
 * "Configuration") and {@link parseEnv}, which turns `process.env` into a typed object or fails
 * with one message naming every bad variable.
 */
import { z } from 'zod';

/** The configuration is invalid; `message` lists every offending variable and what was expected. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
/** A pino level name. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Treats an empty variable as unset, so `FOO= npm start` means "default". */
const unsetIfEmpty = (value: unknown) => (value === '' ? undefined : value);

/** A TCP port 0..65535 (0 = any free port) defaulting to `defaultPort`. */
export const portVar = (defaultPort: number) =>
  z.preprocess(unsetIfEmpty, z.coerce.number().int().min(0).max(65535).default(defaultPort));

/** `HOST`: the interface every server of the process binds. @default '127.0.0.1' */
export const hostVar = z.preprocess(unsetIfEmpty, z.string().min(1).default('127.0.0.1'));

/** `LOG_LEVEL`: pino level. @default 'info' */
export const logLevelVar = z.preprocess(unsetIfEmpty, z.enum(LOG_LEVELS).default('info'));

/** `NODE_ENV`: any string; only `production` changes behaviour. @default 'development' */
export const nodeEnvVar = z.preprocess(unsetIfEmpty, z.string().default('development'));

/** An http(s) URL, e.g. a subgraph endpoint. */
export const httpUrlVar = z.string().refine((value) => {
  try {
    return ['http:', 'https:'].includes(new URL(value).protocol);
  } catch {
    return false;
  }
}, 'expected an http:// or https:// URL');

/** An optional http(s) URL (empty = unset). */
export const optionalHttpUrlVar = z.preprocess(unsetIfEmpty, httpUrlVar.optional());

/** A file path (empty = `defaultPath`). */
export const pathVar = (defaultPath: string) => z.preprocess(unsetIfEmpty, z.string().default(defaultPath));

/**
 * Parses `env` against `shape` (one zod schema per variable name).
 * @throws ConfigError listing each bad variable as `NAME: problem (got "value")`; values of
 *   variables whose name ends in `_URL` are not echoed (they may hold credentials).
 */
export function parseEnv<Shape extends z.ZodRawShape>(env: NodeJS.ProcessEnv, shape: Shape): z.infer<z.ZodObject<Shape>> {
  const parsed = z.object(shape).safeParse(env);
  if (parsed.success) return parsed.data;
  const lines = parsed.error.issues.map((issue) => {
    const name = String(issue.path[0]);
    const value = env[name];
    const shown = value === undefined ? 'unset' : name.endsWith('_URL') ? 'a value that is not shown' : JSON.stringify(value);
    return `  ${name}: ${issue.message} (got ${shown})`;
  });
  throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
}

/**
 * The environment variable that overrides subgraph `name`'s URL at the gateway:
 * `<NAME>_URL`, the name upper-cased with every other character than A-Z and 0-9 as `_`
 * (`workflows` → `WORKFLOWS_URL`, `my-reviews` → `MY_REVIEWS_URL`).
 */
export function subgraphUrlVariable(name: string): string {
  return `${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_URL`;
}

/**
 * The `<NAME>_URL` overrides `env` sets for the given subgraph names.
 * @throws ConfigError when one is not an http(s) URL
 */
export function subgraphUrlOverridesFromEnv(env: NodeJS.ProcessEnv, names: readonly string[]): Record<string, string> {
  const shape = Object.fromEntries(names.map((name) => [subgraphUrlVariable(name), optionalHttpUrlVar]));
  const parsed = parseEnv(env, shape) as Record<string, string | undefined>;
  const overrides: Record<string, string> = {};
  for (const name of names) {
    const url = parsed[subgraphUrlVariable(name)];
    if (url !== undefined) overrides[name] = url;
  }
  return overrides;
}

/** Names of the errors a configuration parser throws for bad variables (this module's and config/database.ts's). */
const CONFIG_ERROR_NAMES = new Set(['ConfigError', 'DatabaseConfigError']);

/**
 * The variables every command validates first, whatever else it reads: `LOG_LEVEL` (and
 * `NODE_ENV`), so that a bad value gets the same message from `npm start`, `start:service`,
 * `db:migrate`, `rebuild`, `compose` and `demo`.
 * @throws ConfigError naming the bad variable
 */
export function parseCommonEnv(env: NodeJS.ProcessEnv): { logLevel: LogLevel; nodeEnv: string } {
  const v = parseEnv(env, { LOG_LEVEL: logLevelVar, NODE_ENV: nodeEnvVar });
  return { logLevel: v.LOG_LEVEL, nodeEnv: v.NODE_ENV };
}

/**
 * A command's configuration step: returns what `parse` returns, or, when it throws a
 * configuration error (`ConfigError`, `DatabaseConfigError`), prints its message (one line per
 * bad variable, no stack) and `usage` if given to stderr and exits with code 2 before anything
 * started. Any other error is rethrown (a bug, not a bad variable).
 */
export async function configOrExit<T>(parse: () => T | Promise<T>, usage?: string): Promise<T> {
  try {
    return await parse();
  } catch (error) {
    if (!(error instanceof Error) || !CONFIG_ERROR_NAMES.has(error.name)) throw error;
    console.error(usage ? `${error.message}\n${usage}` : error.message);
    process.exit(2);
  }
}
