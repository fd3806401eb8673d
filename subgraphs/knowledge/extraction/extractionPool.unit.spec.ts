/**
 * The warm extraction pool (issue 13): results equal `extractDocument` on the main thread, at
 * most `size` extractions run at once and the rest queue, a failing extraction rejects with its
 * own error and the pool goes on, `close()` rejects what is queued, a bad size is refused.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { requireCorpus } from '../../../config/corpus.ts';
import { testLogger } from '../../../federation/testing/graphqlClient.ts';
import { extractDocument } from './extractDocument.ts';
import { createExtractionPool, type ExtractionPool } from './extractionPool.ts';

const text = readFileSync(path.join(requireCorpus(), 'jekyll-and-hyde.txt'), 'utf8');
/** Four small documents of three 2000-character chunks each, from the corpus. */
const documents = [0, 1, 2, 3].map((d) => [0, 1, 2].map((c) => ({ chunkIndex: c, text: text.slice(20_000 + (d * 3 + c) * 2000, 20_000 + (d * 3 + c + 1) * 2000) })));

describe('createExtractionPool', () => {
  let pool: ExtractionPool | undefined;
  afterEach(async () => {
    await pool?.close();
    pool = undefined;
  });

  it('extracts several documents at once on warm workers, with the main thread’s results', async () => {
    pool = createExtractionPool({ size: 2, logger: testLogger });
    expect(pool.size).toBe(2);
    const results = await Promise.all(documents.map((chunks) => pool!.extract(chunks)));
    for (const [i, chunks] of documents.entries()) expect(results[i]).toEqual(await extractDocument(chunks));
    expect(results.every((r) => r.entities.length > 0)).toBe(true);
    // The same workers serve the next round.
    expect(await pool.extract(documents[0]!)).toEqual(results[0]);
  }, 60_000);

  it('rejects an extraction with its own error and goes on with the next', async () => {
    pool = createExtractionPool({ size: 1, logger: testLogger });
    const hostile = [{ chunkIndex: 0, text: 42 as unknown as string }];
    await expect(pool.extract(hostile)).rejects.toThrow();
    expect((await pool.extract(documents[1]!)).chunks).toHaveLength(3);
  }, 60_000);

  it('rejects queued and later extractions once closed', async () => {
    pool = createExtractionPool({ size: 1, logger: testLogger });
    // The expectations are attached before close() rejects the promises (no unhandled rejection).
    const running = expect(pool.extract(documents[0]!)).rejects.toThrow('extraction pool is closed');
    const queued = expect(pool.extract(documents[1]!)).rejects.toThrow('extraction pool is closed');
    await pool.close();
    await running;
    await queued;
    await expect(pool.extract(documents[2]!)).rejects.toThrow('extraction pool is closed');
  }, 60_000);

  it.each([0, -1, 1.5, 65, Number.NaN])('refuses size %s with a RangeError', (size) => {
    expect(() => createExtractionPool({ size, logger: testLogger })).toThrow(RangeError);
    expect(() => createExtractionPool({ size, logger: testLogger })).toThrow('size must be an integer from 1 to 64');
  });
});
