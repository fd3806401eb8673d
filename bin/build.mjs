#!/usr/bin/env node
// `npm run build [-- <outDir>]`: the production tree of flowgraph, run with plain `node` (no tsx,
// no TypeScript, no other dev dependency), as the Docker image runs it.
//
// <outDir> (default `dist/`, emptied first) gets the repository's runtime layout: every
// non-test `.ts` file of the runtime folders transpiled to `.js` beside where it was (relative
// `.ts` import specifiers rewritten to `.js`, dynamic ones included), every other file of those
// folders copied (GraphQL schemas, Prisma migrations, `.mjs` scripts), plus `package.json`,
// `package-lock.json` and `supergraph.graphql`. Files find their assets through
// `import.meta.url` exactly as in the source tree, so nothing else changes; and `web/dist/` (the
// gateway's /monitor/ and /graphiql/ pages, built by bin/build-web.mjs when stale). Then:
//
//   cd dist && npm ci --omit=dev && node bin/start.js   (or bin/start-service.js <name>)
//
// A `.mjs` file that registers tsx (`import ... from 'tsx/...'`) is a worker-thread bootstrap
// of its sibling `.ts` entry (a worker does not inherit the process's TypeScript loader): in
// the build it becomes `import './<name>.js'`. Such a file without a sibling `.ts` fails the build.
//
// Transpiles only (typescript's `transpileModule`, no type check: that is `npm run typecheck`);
// exits 1 on a syntax error, naming the file. Plain JavaScript so that it needs no loader; needs
// the `typescript` dev dependency (the Dockerfile builds in a stage with dev dependencies).
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { ensureWebBuilt } from './build-web.mjs';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Folders whose code the processes load (tests, benchmarks and CI scripts are left out). */
export const RUNTIME_DIRS = ['bin', 'broker', 'client', 'config', 'db', 'eventstore', 'federation', 'gateway', 'observability', 'prisma', 'subgraphs', 'ws'];
/** Files of the repository root the processes read. */
export const ROOT_FILES = ['package.json', 'package-lock.json', 'supergraph.graphql'];

const COMPILER_OPTIONS = {
  module: ts.ModuleKind.ESNext,
  target: ts.ScriptTarget.ES2023,
  verbatimModuleSyntax: true,
  allowImportingTsExtensions: true,
  rewriteRelativeImportExtensions: true,
  sourceMap: false,
};

const isTest = (name) => /\.spec\.ts$/.test(name);

async function build(outDir) {
  const out = path.resolve(outDir);
  const relative = path.relative(out, ROOT);
  // Never empty the repository, a folder above it, or one of its source folders.
  if (!relative || !relative.startsWith('..') || RUNTIME_DIRS.some((dir) => out === path.join(ROOT, dir) || out.startsWith(path.join(ROOT, dir) + path.sep))) {
    throw new Error(`refusing to build into ${out}: pick an empty folder outside the sources (default dist/)`);
  }
  await rm(out, { recursive: true, force: true });
  await mkdir(out, { recursive: true });
  for (const file of ROOT_FILES) await cp(path.join(ROOT, file), path.join(out, file));
  let transpiled = 0;
  for (const dir of RUNTIME_DIRS) transpiled += await buildDir(path.join(ROOT, dir), path.join(out, dir));
  // The gateway's /monitor/ and /graphiql/ pages, built here (Vite is a dev dependency) and
  // shipped as files: web/dist/ with its .stamp (the tree has no web/ sources to rebuild from).
  if (!(await ensureWebBuilt())) throw new Error('the web pages cannot be built here: install the dev dependencies (npm ci)');
  await cp(path.join(ROOT, 'web', 'dist'), path.join(out, 'web', 'dist'), { recursive: true, filter: (source) => !path.basename(source).startsWith('.') || path.basename(source) === '.stamp' });
  return { out, transpiled };
}

async function buildDir(from, to) {
  let transpiled = 0;
  await mkdir(to, { recursive: true });
  const entries = await readdir(from, { withFileTypes: true });
  const names = new Set(entries.map((e) => e.name));
  for (const entry of entries) {
    const source = path.join(from, entry.name);
    if (entry.isDirectory()) {
      transpiled += await buildDir(source, path.join(to, entry.name));
    } else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts')) {
      if (isTest(entry.name)) continue;
      const result = ts.transpileModule(await readFile(source, 'utf8'), { compilerOptions: COMPILER_OPTIONS, fileName: source, reportDiagnostics: true });
      const errors = (result.diagnostics ?? []).filter((d) => d.category === ts.DiagnosticCategory.Error);
      if (errors.length > 0) {
        throw new Error(`${path.relative(ROOT, source)}: ${errors.map((d) => ts.flattenDiagnosticMessageText(d.messageText, ' ')).join('; ')}`);
      }
      await writeFile(path.join(to, entry.name.replace(/\.ts$/, '.js')), result.outputText);
      transpiled++;
    } else if (entry.name.endsWith('.mjs') && /^\s*import\s[^;]*from\s+['"]tsx(\/|['"])/m.test(await readFile(source, 'utf8'))) {
      const sibling = entry.name.replace(/\.mjs$/, '.ts');
      if (!names.has(sibling)) throw new Error(`${path.relative(ROOT, source)} registers tsx but has no sibling ${sibling} to run`);
      await writeFile(path.join(to, entry.name), `// Built by bin/build.mjs: the tsx bootstrap of the sources runs the transpiled entry directly.\nimport './${sibling.replace(/\.ts$/, '.js')}';\n`);
    } else if (entry.isFile()) {
      await cp(source, path.join(to, entry.name));
    }
  }
  return transpiled;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    const { out, transpiled } = await build(process.argv[2] ?? path.join(ROOT, 'dist'));
    console.log(`built ${transpiled} modules into ${path.relative(process.cwd(), out) || out}`);
  } catch (error) {
    console.error(`build failed: ${error.message}`);
    process.exit(1);
  }
}
