#!/usr/bin/env node
// `npm run build:web [-- --if-stale]`: builds the gateway's browser pages (issue 8) with Vite:
// `web/monitor` (the live monitoring page, Preact) and `web/graphiql` (GraphiQL), each to
// `web/dist/<page>/`, served by the gateway at `/<page>/` (gateway/webAssets.ts).
//
// Each page is built into a temporary folder beside its target and then renamed into place, so a
// running gateway never serves a half-written page. `web/dist/.stamp` records a SHA-256 of the
// inputs (every file under `web/` but `web/dist/`, and `package-lock.json`); `--if-stale` builds
// only when it differs (what `npm start`, `npm run start:service gateway` and the test setup do).
//
// Plain JavaScript (no loader). Needs the dev dependencies (vite, preact, graphiql...); exits 1
// naming the page when a build fails. Exported for bin/start.ts and the tests: ensureWebBuilt().
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** The pages, by folder name under `web/` (also their URL prefix). */
export const PAGES = ['monitor', 'graphiql'];
const WEB = path.join(ROOT, 'web');
const DIST = path.join(WEB, 'dist');
const STAMP = path.join(DIST, '.stamp');

/** SHA-256 (hex) of the build's inputs: every file under web/ but web/dist, and package-lock.json. */
export async function inputsHash() {
  const hash = createHash('sha256');
  const files = [];
  const walk = async (dir) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (full === DIST || entry.name === 'node_modules') continue;
      if (entry.isDirectory()) await walk(full);
      else if (entry.isFile()) files.push(full);
    }
  };
  await walk(WEB);
  files.sort();
  for (const file of files) {
    hash.update(path.relative(ROOT, file)).update('\0').update(await readFile(file)).update('\0');
  }
  const lock = path.join(ROOT, 'package-lock.json');
  if (existsSync(lock)) hash.update(await readFile(lock));
  return hash.digest('hex');
}

/** Whether web/dist holds every page built from the current inputs. */
export async function isWebBuilt() {
  if (!existsSync(STAMP) || PAGES.some((page) => !existsSync(path.join(DIST, page, 'index.html')))) return false;
  // A tree without the sources (npm run build's dist/, the Docker image) serves what it was given.
  if (!existsSync(path.join(WEB, PAGES[0], 'index.html'))) return true;
  return (await readFile(STAMP, 'utf8')).trim() === (await inputsHash());
}

/**
 * Builds every page (Vite's JS API), each into a temporary folder then renamed to web/dist/<page>.
 * @throws Error naming the page when Vite fails
 */
export async function buildWeb({ quiet = false } = {}) {
  const { build } = await import('vite');
  const hash = await inputsHash();
  await mkdir(DIST, { recursive: true });
  for (const page of PAGES) {
    const target = path.join(DIST, page);
    const temporary = path.join(DIST, `.${page}-${process.pid}`);
    const started = Date.now();
    try {
      await build({
        configFile: path.join(WEB, page, 'vite.config.ts'),
        logLevel: quiet ? 'error' : 'warn',
        build: { outDir: temporary, emptyOutDir: true },
      });
    } catch (error) {
      await rm(temporary, { recursive: true, force: true });
      throw new Error(`building web/${page} failed: ${error instanceof Error ? error.message : String(error)}`);
    }
    const old = path.join(DIST, `.${page}-old-${process.pid}`);
    // Another build (a second `npm start` of the same tree) may move the target at the same
    // time: whichever build lands last is served; both are of the same inputs.
    await rename(target, old).catch(() => {});
    await rename(temporary, target).catch(async () => {
      await rm(temporary, { recursive: true, force: true });
    });
    await rm(old, { recursive: true, force: true });
    if (!quiet) console.log(`build-web: web/${page} → web/dist/${page} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  await writeFile(STAMP, `${hash}\n`);
}

/**
 * Builds the pages when web/dist is missing or stale, in a child process (Vite stays out of the
 * caller's memory). Without the dev dependencies (a production install) it does not build and
 * returns false: the gateway then answers 503 for the pages, naming `npm run build:web`.
 * @param log called with a line to print (default console.error)
 * @returns true when the pages are built and current
 * @throws Error when the build fails
 */
export async function ensureWebBuilt(log = (line) => console.error(line)) {
  if (await isWebBuilt()) return true;
  if (!existsSync(path.join(ROOT, 'node_modules', 'vite')) || !existsSync(path.join(WEB, PAGES[0], 'index.html'))) {
    log('build-web: the /monitor/ and /graphiql/ pages are not built and cannot be here (no dev dependencies): run `npm run build:web` where they are installed');
    return false;
  }
  log('build-web: building the /monitor/ and /graphiql/ pages (web/ changed or was never built)…');
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--quiet'], { cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit'] });
  const code = await new Promise((resolve) => child.once('exit', (status, signal) => resolve(status ?? signal)));
  if (code !== 0) throw new Error(`npm run build:web failed (${code}): see its output above`);
  return true;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const unknown = args.filter((a) => a !== '--if-stale' && a !== '--quiet');
  if (unknown.length > 0) {
    console.error(`build-web: unknown argument ${unknown[0]} (usage: npm run build:web [-- --if-stale])`);
    process.exit(2);
  }
  try {
    if (args.includes('--if-stale') && (await isWebBuilt())) {
      console.log('build-web: web/dist is up to date');
    } else {
      await buildWeb({ quiet: args.includes('--quiet') });
    }
  } catch (error) {
    console.error(`build-web: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  }
}
