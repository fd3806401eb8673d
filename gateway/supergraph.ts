/**
 * Reading a composed supergraph: the SDL and the subgraphs it names, with the URLs it records
 * (`enum join__Graph { WORKFLOWS @join__graph(name: "workflows", url: "...") }`).
 */
import { readFile } from 'node:fs/promises';
import { Kind, parse, type ConstValueNode } from 'graphql';

/** A subgraph recorded in a supergraph. */
export interface SupergraphSubgraph {
  /** The subgraph's name, e.g. `workflows`. */
  name: string;
  /** The URL the supergraph records for it. */
  url: string;
}

/** A supergraph file that cannot be used: missing, not GraphQL, or not a Federation 2 supergraph. */
export class InvalidSupergraphError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'InvalidSupergraphError';
  }
}

/**
 * The subgraphs a supergraph SDL names, in the order of its `join__Graph` enum.
 * @throws InvalidSupergraphError when the SDL does not parse or has no `join__Graph` enum
 */
export function supergraphSubgraphs(supergraphSdl: string): SupergraphSubgraph[] {
  let document;
  try {
    document = parse(supergraphSdl);
  } catch (error) {
    throw new InvalidSupergraphError(`Supergraph is not valid GraphQL: ${(error as Error).message}`, { cause: error });
  }
  const graphEnum = document.definitions.find(
    (definition) => definition.kind === Kind.ENUM_TYPE_DEFINITION && definition.name.value === 'join__Graph',
  );
  if (!graphEnum || graphEnum.kind !== Kind.ENUM_TYPE_DEFINITION) {
    throw new InvalidSupergraphError('Supergraph has no `enum join__Graph`: is it a composed Federation 2 supergraph?');
  }
  return (graphEnum.values ?? []).map((value) => {
    const directive = value.directives?.find((d) => d.name.value === 'join__graph');
    const argument = (name: string) => stringValue(directive?.arguments?.find((a) => a.name.value === name)?.value);
    const name = argument('name');
    const url = argument('url');
    if (name === undefined || url === undefined) {
      throw new InvalidSupergraphError(`Supergraph graph ${value.name.value} lacks @join__graph(name:, url:)`);
    }
    return { name, url };
  });
}

/**
 * Reads a supergraph file and lists its subgraphs.
 * @param file path of the supergraph SDL (e.g. `./supergraph.graphql`)
 * @throws InvalidSupergraphError when the file cannot be read or is not a supergraph
 */
export async function readSupergraph(file: string): Promise<{ supergraphSdl: string; subgraphs: SupergraphSubgraph[] }> {
  let supergraphSdl: string;
  try {
    supergraphSdl = await readFile(file, 'utf8');
  } catch (error) {
    throw new InvalidSupergraphError(`Cannot read supergraph file ${file} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { cause: error });
  }
  return { supergraphSdl, subgraphs: supergraphSubgraphs(supergraphSdl) };
}

function stringValue(node: ConstValueNode | undefined): string | undefined {
  return node?.kind === Kind.STRING ? node.value : undefined;
}
