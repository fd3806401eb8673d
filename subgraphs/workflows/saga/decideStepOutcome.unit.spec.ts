import { describe, expect, it } from 'vitest';
import type { RecordedEvent } from '../../../eventstore/index.ts';
import { foldRun } from '../run/handleRunCommand.ts';
import type { RunEvent } from '../run/events.ts';
import type { StepDefinition } from '../workflow/events.ts';
import { decideStepOutcome, type StepOutcome } from './decideStepOutcome.ts';

const now = new Date('2025-01-01T00:00:10.000Z');
const steps: StepDefinition[] = [
  { name: 'ingest', kind: 'INGEST', retryPolicy: { maxAttempts: 2, backoffMs: 0 }, timeoutMs: 1000 },
  { name: 'extract', kind: 'EXTRACT', retryPolicy: { maxAttempts: 1, backoffMs: 0 }, timeoutMs: 1000 },
];
let position = 0;
const recorded = (event: RunEvent, eventId = `e${position}`): RecordedEvent =>
  ({ ...event, eventId, streamId: 'run-r1', streamPosition: position++, globalPosition: '1', transactionId: '1', schemaVersion: 1, metadata: {}, recordedAt: now }) as RecordedEvent;
const started = (attempt: number, eventId: string) =>
  recorded(
    { type: 'StepStarted', data: { runId: 'r1', workflowId: 'w', stepName: 'ingest', kind: 'INGEST', attempt, startedAt: 't', deadline: 't', runInput: {} } },
    eventId,
  );
const history: RecordedEvent[] = [
  recorded({ type: 'RunStarted', data: { runId: 'r1', workflowId: 'w', workflowRevision: 1, input: {}, idempotencyKey: null, steps, startedAt: 't' } }),
  started(1, 'started-1'),
  recorded({ type: 'StepFailed', data: { runId: 'r1', stepName: 'ingest', attempt: 1, error: { message: 'x' }, source: 'content', failedAt: 't' } }),
  recorded({ type: 'StepRetried', data: { runId: 'r1', stepName: 'ingest', attempt: 2, retryAt: 't', reason: 'POLICY' } }),
  started(2, 'started-2'),
];
const state = foldRun(history);
const processed: StepOutcome = { runId: 'r1', stepName: 'ingest', kind: 'INGEST', source: 'content', result: { ok: true, output: { documentId: 'd', chunkCount: 1 } } };

describe('decideStepOutcome', () => {
  it('applies a report caused by the running attempt\'s StepStarted, or by nothing the run knows', () => {
    for (const cause of ['started-2', 'elsewhere', undefined]) {
      const decision = decideStepOutcome(state, history, processed, cause, now);
      expect(decision).toMatchObject({ apply: true, attempt: 2 });
      if (decision.apply) expect(decision.events.map((e) => e.type)).toEqual(['StepCompleted', 'StepStarted']);
    }
  });

  it('ignores a report answering an earlier attempt', () => {
    expect(decideStepOutcome(state, history, processed, 'started-1', now)).toMatchObject({ apply: false, reason: 'STALE_ATTEMPT' });
  });

  it('ignores a report about another kind of step, an unknown step or run, a finished run', () => {
    expect(decideStepOutcome(state, history, { ...processed, kind: 'EXTRACT', source: 'knowledge' }, undefined, now)).toMatchObject({ reason: 'WRONG_STEP_KIND' });
    expect(decideStepOutcome(state, history, { ...processed, stepName: 'nope' }, undefined, now)).toMatchObject({ reason: 'STEP_NOT_FOUND' });
    expect(decideStepOutcome(foldRun([]), [], processed, undefined, now)).toMatchObject({ reason: 'RUN_NOT_FOUND' });
    const cancelled = [...history, recorded({ type: 'RunCancelled', data: { runId: 'r1', reason: null, cancelledAt: 't' } })];
    expect(decideStepOutcome(foldRun(cancelled), cancelled, processed, 'started-2', now)).toMatchObject({ reason: 'RUN_NOT_RUNNING' });
    const extractReport: StepOutcome = { runId: 'r1', stepName: 'extract', kind: 'EXTRACT', source: 'knowledge', result: { ok: true, output: {} } };
    expect(decideStepOutcome(state, history, extractReport, undefined, now)).toMatchObject({ reason: 'STEP_NOT_RUNNING' });
  });

  it('turns a failure without a reason into a failure with a message (the retry policy then applies)', () => {
    const decision = decideStepOutcome(state, history, { ...processed, result: { ok: false, error: '  ' } }, 'started-2', now);
    expect(decision.apply).toBe(true);
    if (decision.apply) {
      expect(decision.events.map((e) => e.type)).toEqual(['StepFailed', 'RunFailed']);
      expect(decision.events[0]!.data).toMatchObject({ error: { message: 'content reported a failure without a reason' } });
    }
  });
});
