/**
 * The checked-in `supergraph.graphql` must be what `npm run compose` produces from the current
 * subgraph schemas; and composition must refuse broken input with every error listed.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { composeSupergraph, readSubgraphSources, SupergraphCompositionError } from './composeSupergraph.ts';
import { supergraphSubgraphs, InvalidSupergraphError } from './supergraph.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('supergraph.graphql', () => {
  it('is up to date with subgraphs/*/schema.graphql (run `npm run compose` when this fails)', () => {
    const checkedIn = readFileSync(path.join(root, 'supergraph.graphql'), 'utf8');
    expect(checkedIn).toBe(composeSupergraph(readSubgraphSources(root)));
  });

  it('names every subgraph with a schema, at its default URL', () => {
    const subgraphs = supergraphSubgraphs(readFileSync(path.join(root, 'supergraph.graphql'), 'utf8'));
    expect(subgraphs).toContainEqual({ name: 'workflows', url: 'http://127.0.0.1:4001/graphql' });
    expect(subgraphs.map((s) => s.name).sort()).toEqual(readSubgraphSources(root).map((s) => s.name).sort());
  });
});

describe('composeSupergraph', () => {
  const a = {
    name: 'a',
    url: 'http://127.0.0.1:4901/graphql',
    sdl: 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"]) type Query { x: Int } type T @key(fields: "id") { id: ID! n: Int }',
  };

  it('lists every composition error', () => {
    const b = {
      name: 'b',
      url: 'http://127.0.0.1:4902/graphql',
      // `n` is Int in a and String in b, and neither declares its fields @shareable: two errors.
      sdl: 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"]) type Query { x: Int } type T @key(fields: "id") { id: ID! n: String }',
    };
    let error: unknown;
    try {
      composeSupergraph([a, b]);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(SupergraphCompositionError);
    const { errors, message } = error as SupergraphCompositionError;
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors.some((e) => e.startsWith('FIELD_TYPE_MISMATCH:'))).toBe(true);
    expect(errors.some((e) => e.startsWith('INVALID_FIELD_SHARING:'))).toBe(true);
    expect(message).toContain('Supergraph composition failed with');
  });

  it('refuses an empty subgraph list and SDL that does not parse', () => {
    expect(() => composeSupergraph([])).toThrow(/NO_SUBGRAPHS/);
    expect(() => composeSupergraph([{ ...a, sdl: 'type Query {' }])).toThrow(/INVALID_GRAPHQL: subgraph "a"/);
  });

  it('records each subgraph URL, which supergraphSubgraphs reads back', () => {
    expect(supergraphSubgraphs(composeSupergraph([a]))).toEqual([{ name: 'a', url: a.url }]);
  });

  it('supergraphSubgraphs refuses SDL that is not a supergraph', () => {
    expect(() => supergraphSubgraphs('type Query { x: Int }')).toThrow(InvalidSupergraphError);
    expect(() => supergraphSubgraphs('type Query {')).toThrow(/not valid GraphQL/);
  });
});
