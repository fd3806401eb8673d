/**
 * `npm run compose`: composes `subgraphs/<name>/schema.graphql` of every service in
 * `config/services.ts` (each with its default URL `http://127.0.0.1:<port>/graphql`) with
 * `@apollo/composition` and writes the supergraph to `supergraph.graphql` at the repository
 * root (or to the path given as first argument). Exits 1 listing every composition error.
 *
 * The file is checked in; `gateway/supergraph.unit.spec.ts` fails when it is stale.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { composeSupergraph, readSubgraphSources, SupergraphCompositionError } from '../gateway/composeSupergraph.ts';
import { configOrExit, parseCommonEnv } from '../config/env.ts';

// The variables every command checks (LOG_LEVEL...): a bad one gets its message, exit 2.
await configOrExit(() => parseCommonEnv(process.env));

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const target = path.resolve(process.argv[2] ?? path.join(root, 'supergraph.graphql'));

try {
  const sources = readSubgraphSources(root);
  const supergraphSdl = composeSupergraph(sources);
  await writeFile(target, supergraphSdl);
  console.log(`composed ${sources.map((s) => `${s.name} (${s.url})`).join(', ')} into ${path.relative(process.cwd(), target) || target}`);
} catch (error) {
  if (!(error instanceof SupergraphCompositionError)) throw error;
  console.error(error.message);
  process.exitCode = 1;
}
