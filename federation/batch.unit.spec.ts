/** federation/batch.ts: one call of the batch function per tick of loads, split, deduplicated, errors per key. */
import { describe, expect, it } from 'vitest';
import { createBatcher, perRequest, representationId } from './batch.ts';

function recording(answer: (key: string) => string | Error = (key) => key.toUpperCase(), maxBatchSize?: number) {
  const calls: string[][] = [];
  const batcher = createBatcher<string, string>({
    load: async (keys) => {
      calls.push([...keys]);
      return keys.map(answer);
    },
    maxBatchSize,
  });
  return { batcher, calls };
}

describe('createBatcher', () => {
  it('answers the loads of one tick with one call, equal keys once, each load its own value', async () => {
    const { batcher, calls } = recording();
    expect(await Promise.all(['a', 'b', 'a', 'c'].map((k) => batcher.load(k)))).toEqual(['A', 'B', 'A', 'C']);
    expect(calls).toEqual([['a', 'b', 'c']]);
  });

  it('gathers loads made from promise jobs of the same tick (graphql-js completing list items)', async () => {
    const { batcher, calls } = recording();
    const items = [1, 2, 3].map((i) => Promise.resolve(i).then((n) => Promise.resolve(n)).then((n) => batcher.load(`k${n}`)));
    expect(await Promise.all(items)).toEqual(['K1', 'K2', 'K3']);
    expect(calls).toEqual([['k1', 'k2', 'k3']]);
  });

  it('a later tick is a new batch (nothing is cached)', async () => {
    const { batcher, calls } = recording();
    await batcher.load('a');
    await batcher.load('a');
    expect(calls).toEqual([['a'], ['a']]);
  });

  it('splits a batch at maxBatchSize', async () => {
    const { batcher, calls } = recording(undefined, 2);
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((k) => batcher.load(k)));
    expect(calls).toEqual([['a', 'b'], ['c', 'd'], ['e']]);
  });

  it('an Error value rejects its key only; a failed batch rejects every load of it', async () => {
    const { batcher } = recording((key) => (key === 'bad' ? new Error('no bad') : key));
    const results = await Promise.allSettled(['ok', 'bad'].map((k) => batcher.load(k)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected']);
    const failing = createBatcher<string, string>({ load: async () => Promise.reject(new Error('database down')) });
    const both = await Promise.allSettled([failing.load('x'), failing.load('y')]);
    expect(both.map((r) => (r as PromiseRejectedResult).reason.message)).toEqual(['database down', 'database down']);
    const short = createBatcher<string, string>({ load: async () => [] });
    await expect(short.load('x')).rejects.toThrow(/answered 0 values for 1 keys/);
  });
});

describe('perRequest', () => {
  it('one batcher per context object and name; none shared without a context', () => {
    const make = () => createBatcher<string, string>({ load: async (k) => k });
    const ctx = {};
    expect(perRequest(ctx, 'a', make)).toBe(perRequest(ctx, 'a', make));
    expect(perRequest(ctx, 'a', make)).not.toBe(perRequest(ctx, 'b', make));
    expect(perRequest({}, 'a', make)).not.toBe(perRequest(ctx, 'a', make));
    expect(perRequest(undefined, 'a', make)).not.toBe(perRequest(undefined, 'a', make));
  });
});

describe('representationId', () => {
  const invalid = (message: string) => new Error(message);
  it('returns a usable id and refuses anything else', () => {
    expect(representationId({ __typename: 'T', id: 'run-1' }, 'T', invalid)).toBe('run-1');
    for (const ref of [{}, { id: 1 }, { id: '' }, { id: 'x'.repeat(501) }, { id: 'a\u0000b' }, { id: ['a'] }, null]) {
      expect(() => representationId(ref, 'T', invalid)).toThrow(/A T representation needs an id key/);
    }
  });
});
