/**
 * Composition of the supergraph from the subgraphs' SDL files with `@apollo/composition`
 * (Federation 2). `npm run compose` writes the result to `supergraph.graphql`; a unit test
 * recomposes in memory and fails when the checked-in file is stale.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { composeServices } from '@apollo/composition';
import { parse } from 'graphql';
import { SERVICES, defaultSubgraphUrl } from '../config/services.ts';

/** One subgraph as composition sees it. */
export interface SubgraphSource {
  /** Subgraph name (the service name, e.g. `workflows`). */
  name: string;
  /** The URL the supergraph records for it (the gateway may override it at run time). */
  url: string;
  /** The subgraph's SDL text. */
  sdl: string;
}

/** Composition failed; `errors` are composition's messages, each prefixed with its code. */
export class SupergraphCompositionError extends Error {
  constructor(readonly errors: readonly string[]) {
    super(`Supergraph composition failed with ${errors.length} error(s):\n${errors.map((e) => `  - ${e}`).join('\n')}`);
    this.name = 'SupergraphCompositionError';
  }
}

/**
 * Reads `subgraphs/<name>/schema.graphql` for every service of `config/services.ts` whose file
 * exists under `rootDir`, each with its default URL (`http://127.0.0.1:<defaultPort>/graphql`).
 * @param rootDir the repository root (default: the current directory)
 */
export function readSubgraphSources(rootDir = process.cwd()): SubgraphSource[] {
  const sources: SubgraphSource[] = [];
  for (const service of SERVICES) {
    const file = path.join(rootDir, 'subgraphs', service.name, 'schema.graphql');
    if (!existsSync(file)) continue;
    sources.push({ name: service.name, url: defaultSubgraphUrl(service), sdl: readFileSync(file, 'utf8') });
  }
  return sources;
}

/**
 * Composes `subgraphs` into a supergraph SDL (Federation 2 `@join__*` form), ending with one
 * newline.
 * @throws SupergraphCompositionError when there is no subgraph, an SDL does not parse, or
 *   composition reports errors (all of them listed)
 */
export function composeSupergraph(subgraphs: readonly SubgraphSource[]): string {
  if (subgraphs.length === 0) {
    throw new SupergraphCompositionError(['NO_SUBGRAPHS: no subgraphs/<name>/schema.graphql found']);
  }
  const services = subgraphs.map((subgraph) => {
    try {
      return { name: subgraph.name, url: subgraph.url, typeDefs: parse(subgraph.sdl) };
    } catch (error) {
      throw new SupergraphCompositionError([`INVALID_GRAPHQL: subgraph "${subgraph.name}": ${(error as Error).message}`]);
    }
  });
  const result = composeServices(services);
  if (result.errors) {
    throw new SupergraphCompositionError(
      result.errors.map((error) => `${String(error.extensions.code ?? 'COMPOSITION_ERROR')}: ${error.message}`),
    );
  }
  return result.supergraphSdl.endsWith('\n') ? result.supergraphSdl : `${result.supergraphSdl}\n`;
}
