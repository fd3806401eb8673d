/**
 * Parity of the in-memory fold (runSnapshot.ts) with the SQL runs projection: after every
 * command of real runs (complete, fail, policy and manual retries, timeouts, scheduled retries,
 * cancellation), folding the run's whole stream gives the read model's row, field by field; the
 * migration's backfill of `step_runs.document_id` agrees with the projection.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTENT_SOURCE, KNOWLEDGE_SOURCE, API_SOURCE } from './decide.ts';
import { foldRunSnapshot, type RunSnapshot } from './runSnapshot.ts';
import { openRunFixture, type RunFixture } from '../testing/runFixture.ts';

let fx: RunFixture;

beforeAll(async () => {
  fx = await openRunFixture('workflows_snapshot');
  await fx.define('pipeline', [
    ['ingest', 'INGEST'],
    ['extract', 'EXTRACT', 2, 0],
    ['review', 'EXTERNAL', 3, 60_000, 1_000],
  ]);
  await fx.define('manual', [
    ['first', 'EXTERNAL'],
    ['second', 'EXTERNAL'],
    ['third', 'EXTERNAL'],
  ]);
  await fx.define('extract-only', [['extract', 'EXTRACT']]);
});
afterAll(async () => {
  await fx?.close();
});

/** The fold over the whole stream, without the two as-of fields the read model has not got. */
async function folded(runId: string): Promise<Omit<RunSnapshot, 'asOfVersion' | 'asOfPublishedVersion'>> {
  const events = await fx.history(runId);
  const snapshot = foldRunSnapshot(events);
  expect(snapshot).not.toBeNull();
  const { asOfVersion, asOfPublishedVersion, ...row } = snapshot!;
  expect(asOfVersion).toBe(events.at(-1)!.streamPosition);
  expect(row.version).toBe(asOfVersion);
  expect(asOfPublishedVersion).toBeLessThanOrEqual(asOfVersion);
  return row;
}

/** Asserts parity now and returns the row. */
async function expectParity(runId: string) {
  const row = await fx.readModel.run(runId);
  expect(row).not.toBeNull();
  expect(await folded(runId)).toEqual(row);
  return row!;
}

describe('foldRunSnapshot equals the runs projection', () => {
  it('through completions, a failed attempt retried at once, a retry with backoff, a timeout and the run completing', async () => {
    const runId = await fx.commands.startRun('pipeline', { corpusFile: 'a.txt', nested: { list: [1, 2.5, 'x'] } }, 'key-1', fx.meta);
    expect((await expectParity(runId)).steps[0]!.status).toBe('RUNNING');
    fx.advance(10);
    await fx.commands.completeStep(runId, 'ingest', { documentId: 'doc-1', chunkCount: 3 }, CONTENT_SOURCE, fx.meta);
    let row = await expectParity(runId);
    expect(row.steps.map((s) => s.documentId)).toEqual(['doc-1', 'doc-1', null]);
    fx.advance(10);
    await fx.commands.failStep(runId, 'extract', 'NLP crashed', KNOWLEDGE_SOURCE, fx.meta); // StepFailed, StepRetried, StepStarted
    row = await expectParity(runId);
    expect(row.steps[1]).toMatchObject({ status: 'RUNNING', attempt: 2, error: null });
    fx.advance(10);
    await fx.commands.completeStep(runId, 'extract', { entityCount: 4, relationCount: 2 }, KNOWLEDGE_SOURCE, fx.meta);
    await expectParity(runId);
    fx.advance(10);
    await fx.commands.failStep(runId, 'review', 'not yet', API_SOURCE, fx.meta); // StepFailed, StepRetried (backoff 60 s)
    row = await expectParity(runId);
    expect(row.steps[2]).toMatchObject({ status: 'RETRY_SCHEDULED', error: { message: 'not yet' } });
    fx.advance(60_000);
    await fx.commands.startScheduledRetry(runId, 'review', 2, fx.meta);
    await expectParity(runId);
    fx.advance(1_001);
    await fx.commands.timeoutStep(runId, 'review', 2, fx.meta); // StepTimedOut, StepRetried
    row = await expectParity(runId);
    expect(row.steps[2]!.error).toEqual({ message: expect.stringMatching(/^Attempt 2 timed out at /) });
    fx.advance(60_000);
    await fx.commands.startScheduledRetry(runId, 'review', 3, fx.meta);
    fx.advance(10);
    await fx.commands.completeStep(runId, 'review', null, API_SOURCE, fx.meta); // StepCompleted, RunCompleted
    row = await expectParity(runId);
    expect(row).toMatchObject({ status: 'COMPLETED', output: null, currentStep: null });
    expect((await fx.history(runId)).map((e) => e.type)).toEqual([
      'RunStarted', 'StepStarted', 'StepCompleted', 'StepStarted', 'StepFailed', 'StepRetried', 'StepStarted', 'StepCompleted', 'StepStarted',
      'StepFailed', 'StepRetried', 'StepStarted', 'StepTimedOut', 'StepRetried', 'StepStarted', 'StepCompleted', 'RunCompleted',
    ]);
  });

  it('through a failed run, its manual retry and a cancellation with pending steps', async () => {
    const runId = await fx.commands.startRun('manual', {}, null, fx.meta);
    fx.advance(5);
    await fx.commands.completeStep(runId, 'first', { ok: true }, API_SOURCE, fx.meta);
    fx.advance(5);
    await fx.commands.failStep(runId, 'second', 'broken', API_SOURCE, fx.meta); // StepFailed, RunFailed
    expect(await expectParity(runId)).toMatchObject({ status: 'FAILED', error: { stepName: 'second', message: 'broken' } });
    fx.advance(5);
    await fx.commands.retryStep(runId, 'second', fx.meta); // StepRetried (reopens), StepStarted
    expect(await expectParity(runId)).toMatchObject({ status: 'RUNNING', error: null, endedAt: null });
    fx.advance(5);
    await fx.commands.cancelRun(runId, 'changed my mind', fx.meta);
    const row = await expectParity(runId);
    expect(row.steps.map((s) => [s.status, s.endedAt === null])).toEqual([
      ['COMPLETED', false],
      ['CANCELLED', false],
      ['CANCELLED', true],
    ]);
  });

  it('an EXTRACT step names the run input’s document; a run cancelled while the step runs', async () => {
    const runId = await fx.commands.startRun('extract-only', { documentId: 'doc-from-input' }, null, fx.meta);
    expect((await expectParity(runId)).steps[0]!.documentId).toBe('doc-from-input');
    await fx.commands.cancelRun(runId, null, fx.meta);
    expect(await expectParity(runId)).toMatchObject({ status: 'CANCELLED', cancelReason: null });
  });

  it('the migration that added step_runs.document_id fills rows projected before it as the projection does', async () => {
    const projected = (await fx.db.pool.query('SELECT run_id, name, document_id FROM step_runs ORDER BY run_id, position')).rows;
    expect(projected.filter((r) => r.document_id !== null).length).toBeGreaterThanOrEqual(3);
    const sql = readFileSync(new URL('../../../prisma/workflows/migrations/20250601000000_step_run_document/migration.sql', import.meta.url), 'utf8');
    const backfill = sql.slice(sql.indexOf('-- Backfill'));
    await fx.db.pool.query('UPDATE step_runs SET document_id = NULL');
    await fx.db.pool.query(backfill);
    expect((await fx.db.pool.query('SELECT run_id, name, document_id FROM step_runs ORDER BY run_id, position')).rows).toEqual(projected);
  });

  it('gives null for an empty stream', () => {
    expect(foldRunSnapshot([])).toBeNull();
  });
});
