#!/usr/bin/env node
// `npm install` postinstall: generates the Prisma Client of every prisma/<service>/schema.prisma
// into prisma/<service>/generated (gitignored). Offline-safe: PRISMA_SCHEMA_ENGINE_BINARY=/bin/false
// stops the CLI from downloading a schema engine, which `generate` does not need.
// Plain JavaScript (not tsx) so that it runs before anything else is usable; does nothing when
// there is no schema yet or when the Prisma CLI is not installed (production install without
// dev dependencies, where the generated client must be shipped), and in a production tree of
// `npm run build` (bin/build.mjs), which ships every generated client transpiled to `.js`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prismaDir = path.join(root, 'prisma');
const cli = path.join(root, 'node_modules', 'prisma', 'build', 'index.js');

const schemas = existsSync(prismaDir)
  ? readdirSync(prismaDir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => path.join('prisma', e.name, 'schema.prisma'))
    .filter((file) => existsSync(path.join(root, file)))
    .sort()
  : [];

if (schemas.length === 0) {
  console.log('prisma-generate: no prisma/*/schema.prisma yet, nothing to generate');
  process.exit(0);
}
const built = schemas.every((schema) => {
  const generated = path.join(root, path.dirname(schema), 'generated');
  return existsSync(path.join(generated, 'client.js')) && !existsSync(path.join(generated, 'client.ts'));
});
if (built) {
  console.log('prisma-generate: a built tree (npm run build) ships its generated clients, nothing to generate');
  process.exit(0);
}
if (!existsSync(cli)) {
  console.log('prisma-generate: the prisma CLI is not installed (dev dependencies omitted), skipping');
  process.exit(0);
}
for (const schema of schemas) {
  const r = spawnSync(process.execPath, [cli, 'generate', '--schema', schema], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, PRISMA_SCHEMA_ENGINE_BINARY: '/bin/false', PRISMA_HIDE_UPDATE_MESSAGE: '1', CHECKPOINT_DISABLE: '1' },
  });
  if (r.status !== 0) {
    console.error(`prisma-generate: prisma generate --schema ${schema} failed (exit ${r.status ?? r.signal})`);
    process.exit(r.status ?? 1);
  }
}
