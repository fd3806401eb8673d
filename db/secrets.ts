/**
 * Generated passwords kept on disk so that they stay stable across restarts: the embedded
 * PostgreSQL's superuser password and one login password per service role.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Returns the secret stored under `key` in the JSON file `file`, generating, storing and
 * returning a new one (`bytes` random bytes, base64url; 24 bytes = 32 characters by default; or
 * what `generate` returns, when given) when the key is absent.
 * The file is created with mode 600 (its folder keeps default permissions: the embedded
 * server's OS user must be able to traverse it to reach a data directory beside it) and
 * written atomically (temp file + rename), so a crash never leaves half a file.
 *
 * Not safe against two processes generating the same missing key at the same instant: the
 * callers (embedded start, provisioning) run once per process start, before anything else.
 * @throws Error when the file exists but is not a JSON object of strings.
 */
export async function loadOrCreateSecret(file: string, key: string, bytes = 24, generate?: () => string): Promise<string> {
  const secrets = await readSecrets(file);
  const existing = secrets[key];
  if (existing !== undefined) return existing;
  const created = generate ? generate() : randomBytes(bytes).toString('base64url');
  secrets[key] = created;
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(secrets, null, 2)}\n`, { mode: 0o600 });
  await chmod(tmp, 0o600);
  await rename(tmp, file);
  return created;
}

/**
 * The secret stored under `key` in `file`, or undefined when the file or the key is absent
 * (nothing is created).
 * @throws Error when the file exists but is not a JSON object of strings.
 */
export async function readSecret(file: string, key: string): Promise<string | undefined> {
  return (await readSecrets(file))[key];
}

async function readSecrets(file: string): Promise<Record<string, string>> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)
    || Object.values(parsed).some((v) => typeof v !== 'string')) {
    throw new Error(`${file} must be a JSON object whose values are strings`);
  }
  return parsed as Record<string, string>;
}
