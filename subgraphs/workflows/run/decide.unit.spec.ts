import { describe, expect, it } from 'vitest';
import { BadUserInputError, IdempotencyConflictError, IllegalTransitionError, NotFoundError } from '../errors.ts';
import { deciderSpec } from '../testing/deciderSpec.ts';
import type { StepDefinition } from '../workflow/events.ts';
import type { WorkflowSnapshot } from './commands.ts';
import { runDecider } from './decider.ts';
import type { RunEvent } from './events.ts';
import { runIdFor } from './runId.ts';

const t0 = new Date('2025-01-01T00:00:00.000Z');
const at = (ms: number) => new Date(t0.getTime() + ms);
const iso = (ms: number) => at(ms).toISOString();
const steps: StepDefinition[] = [
  { name: 'ingest', kind: 'INGEST', retryPolicy: { maxAttempts: 1, backoffMs: 0 }, timeoutMs: 1000 },
  { name: 'extract', kind: 'EXTRACT', retryPolicy: { maxAttempts: 2, backoffMs: 0 }, timeoutMs: 2000 },
  { name: 'review', kind: 'EXTERNAL', retryPolicy: { maxAttempts: 3, backoffMs: 500 }, timeoutMs: 10_000 },
];
const workflow: WorkflowSnapshot = { workflowId: 'w1', revision: 1, steps };
const runId = 'r1';
const spec = deciderSpec(runDecider);

const runStarted: RunEvent = {
  type: 'RunStarted',
  data: { runId, workflowId: 'w1', workflowRevision: 1, input: { doc: 'a' }, idempotencyKey: 'k1', steps, startedAt: iso(0) },
};
const kindOf = (stepName: string) => steps.find((s) => s.name === stepName)!.kind;
/** The source allowed to report a step: content (INGEST), knowledge (EXTRACT), api (EXTERNAL). */
const sourceOf = (stepName: string) => ({ INGEST: 'content', EXTRACT: 'knowledge', EXTERNAL: 'api' })[kindOf(stepName)];
const started = (stepName: string, attempt: number, ms: number, timeoutMs: number, documentId?: string): RunEvent => ({
  type: 'StepStarted',
  data: {
    runId,
    workflowId: 'w1',
    stepName,
    kind: kindOf(stepName),
    attempt,
    startedAt: iso(ms),
    deadline: iso(ms + timeoutMs),
    runInput: { doc: 'a' },
    ...(documentId ? { documentId } : {}),
  },
});
const completed = (stepName: string, attempt: number, ms: number, output: unknown = { ok: true }): RunEvent => ({
  type: 'StepCompleted',
  data: { runId, stepName, attempt, output, source: sourceOf(stepName), completedAt: iso(ms) },
});
const failed = (stepName: string, attempt: number, ms: number, message = 'boom'): RunEvent => ({
  type: 'StepFailed',
  data: { runId, stepName, attempt, error: { message }, source: sourceOf(stepName), failedAt: iso(ms) },
});
/** What content completes an INGEST step with. */
const ingested = { documentId: 'doc-1', chunkCount: 3 };
const retried = (stepName: string, attempt: number, retryAtMs: number, reason: 'POLICY' | 'MANUAL' = 'POLICY'): RunEvent => ({
  type: 'StepRetried',
  data: { runId, stepName, attempt, retryAt: iso(retryAtMs), reason },
});
/** A run whose first two steps completed and whose `review` step runs attempt 1 (started at 20). */
const atReview: RunEvent[] = [
  runStarted,
  started('ingest', 1, 0, 1000),
  completed('ingest', 1, 10, ingested),
  started('extract', 1, 10, 2000, 'doc-1'),
  completed('extract', 1, 20),
  started('review', 1, 20, 10_000),
];

describe('run decider: starting', () => {
  it('starts a run and its first step with deadline = now + timeoutMs', () => {
    spec
      .given([])
      .when({ type: 'StartRun', runId, workflowId: 'w1', workflow, input: { doc: 'a' }, idempotencyKey: 'k1', now: t0 })
      .then([runStarted, started('ingest', 1, 0, 1000)]);
  });

  it('returns no events for a repeated start with the same idempotency key and input', () => {
    spec
      .given([runStarted])
      .when({ type: 'StartRun', runId, workflowId: 'w1', workflow, input: { doc: 'a' }, idempotencyKey: 'k1', now: at(5) })
      .then([]);
  });

  it('rejects the same idempotency key with a different input: IDEMPOTENCY_CONFLICT', () => {
    spec
      .given([runStarted])
      .when({ type: 'StartRun', runId, workflowId: 'w1', workflow, input: { doc: 'b' }, idempotencyKey: 'k1', now: at(5) })
      .thenThrows(IdempotencyConflictError, 'IDEMPOTENCY_CONFLICT');
  });

  it('rejects a run of an unknown workflow: NOT_FOUND', () => {
    spec
      .given([])
      .when({ type: 'StartRun', runId, workflowId: 'nope', workflow: null, input: {}, idempotencyKey: null, now: t0 })
      .thenThrows(NotFoundError, 'NOT_FOUND');
  });

  it('derives the same run id from the same workflow and key, a different one otherwise', () => {
    expect(runIdFor('w1', 'k')).toBe(runIdFor('w1', 'k'));
    expect(runIdFor('w1', 'k')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(runIdFor('w1', 'k')).not.toBe(runIdFor('w2', 'k'));
    expect(runIdFor('w1', null)).not.toBe(runIdFor('w1', null));
  });
});

describe('run decider: completing steps', () => {
  it('completes a step and starts the next one; an EXTRACT step gets the document the INGEST step produced', () => {
    spec
      .given([runStarted, started('ingest', 1, 0, 1000)])
      .when({ type: 'CompleteStep', runId, stepName: 'ingest', output: ingested, source: 'content', now: at(10) })
      .then([completed('ingest', 1, 10, ingested), started('extract', 1, 10, 2000, 'doc-1')]);
  });

  it('takes an EXTRACT step\'s document from the run input when no INGEST step produced one, else leaves it out', () => {
    const extractOnly: StepDefinition[] = [{ name: 'extract', kind: 'EXTRACT', retryPolicy: { maxAttempts: 1, backoffMs: 0 }, timeoutMs: 100 }];
    const start = (input: unknown) =>
      runDecider.decide({ type: 'StartRun', runId, workflowId: 'w2', workflow: { workflowId: 'w2', revision: 1, steps: extractOnly }, input, idempotencyKey: null, now: t0 }, runDecider.initialState());
    expect(start({ documentId: 'doc-9' })[1]?.data).toMatchObject({ kind: 'EXTRACT', documentId: 'doc-9', runInput: { documentId: 'doc-9' } });
    expect(start({ text: 'x' })[1]?.data).not.toHaveProperty('documentId');
    // An INGEST step completed without a document id: no documentId either.
    spec
      .given([runStarted, started('ingest', 1, 0, 1000)])
      .when({ type: 'CompleteStep', runId, stepName: 'ingest', output: null, source: 'content', now: at(10) })
      .then([completed('ingest', 1, 10, null), started('extract', 1, 10, 2000)]);
  });

  it('lets only the owning service complete or fail INGEST and EXTRACT steps, and only the API EXTERNAL ones: ILLEGAL_TRANSITION', () => {
    const atIngest = [runStarted, started('ingest', 1, 0, 1000)];
    const viaApi = spec.given(atIngest).when({ type: 'CompleteStep', runId, stepName: 'ingest', output: ingested, source: 'api', now: at(10) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
    expect(viaApi.details).toMatchObject({ stepName: 'ingest', stepKind: 'INGEST', source: 'api', allowedSources: ['content'], stepStatus: 'RUNNING' });
    expect(viaApi.message).toContain('not through the API');
    spec.given(atIngest).when({ type: 'FailStep', runId, stepName: 'ingest', error: 'no', source: 'api', now: at(10) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
    spec.given(atIngest).when({ type: 'CompleteStep', runId, stepName: 'ingest', output: null, source: 'knowledge', now: at(10) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
    const atExtract = atReview.slice(0, 4);
    spec.given(atExtract).when({ type: 'CompleteStep', runId, stepName: 'extract', output: null, source: 'api', now: at(15) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
    spec.given(atExtract).when({ type: 'FailStep', runId, stepName: 'extract', error: 'no', source: 'content', now: at(15) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
    spec.given(atReview).when({ type: 'CompleteStep', runId, stepName: 'review', output: null, source: 'content', now: at(30) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
  });

  it('completes the run after the last step, with its output', () => {
    spec
      .given(atReview)
      .when({ type: 'CompleteStep', runId, stepName: 'review', output: { approved: true }, source: 'api', now: at(30) })
      .then([completed('review', 1, 30, { approved: true }), { type: 'RunCompleted', data: { runId, output: { approved: true }, completedAt: iso(30) } }]);
  });

  it('rejects completing a step that is not running: ILLEGAL_TRANSITION', () => {
    spec
      .given([runStarted, started('ingest', 1, 0, 1000)])
      .when({ type: 'CompleteStep', runId, stepName: 'extract', output: null, source: 'knowledge', now: at(10) })
      .thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
  });

  it('rejects completing a step of a cancelled run: ILLEGAL_TRANSITION', () => {
    const cancelled: RunEvent = { type: 'RunCancelled', data: { runId, reason: 'stop', cancelledAt: iso(5) } };
    const error = spec
      .given([runStarted, started('ingest', 1, 0, 1000), cancelled])
      .when({ type: 'CompleteStep', runId, stepName: 'ingest', output: null, source: 'content', now: at(10) })
      .thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
    expect(error.details).toMatchObject({ runStatus: 'CANCELLED', command: 'CompleteStep' });
  });

  it('rejects a stale attempt number: ILLEGAL_TRANSITION', () => {
    spec
      .given([...atReview.slice(0, 3), started('extract', 1, 10, 2000, 'doc-1'), failed('extract', 1, 15), retried('extract', 2, 15), started('extract', 2, 15, 2000, 'doc-1')])
      .when({ type: 'CompleteStep', runId, stepName: 'extract', output: null, source: 'knowledge', attempt: 1, now: at(16) })
      .thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
  });

  it('rejects an unknown step name or run: NOT_FOUND', () => {
    spec.given(atReview).when({ type: 'CompleteStep', runId, stepName: 'nope', output: null, source: 'api', now: at(30) }).thenThrows(NotFoundError, 'NOT_FOUND');
    spec.given([]).when({ type: 'CompleteStep', runId, stepName: 'ingest', output: null, source: 'content', now: at(30) }).thenThrows(NotFoundError, 'NOT_FOUND');
  });
});

describe('run decider: failures and the retry policy', () => {
  it('fails the run when a step with maxAttempts 1 fails', () => {
    spec
      .given([runStarted, started('ingest', 1, 0, 1000)])
      .when({ type: 'FailStep', runId, stepName: 'ingest', error: 'boom', source: 'content', now: at(10) })
      .then([failed('ingest', 1, 10), { type: 'RunFailed', data: { runId, stepName: 'ingest', error: { message: 'boom' }, failedAt: iso(10) } }]);
  });

  it('retries at once when attempts remain and backoffMs is 0', () => {
    spec
      .given(atReview.slice(0, 4))
      .when({ type: 'FailStep', runId, stepName: 'extract', error: 'boom', source: 'knowledge', now: at(15) })
      .then([failed('extract', 1, 15), retried('extract', 2, 15), started('extract', 2, 15, 2000, 'doc-1')]);
  });

  it('schedules the retry after backoffMs when backoffMs > 0', () => {
    spec
      .given(atReview)
      .when({ type: 'FailStep', runId, stepName: 'review', error: 'boom', source: 'api', now: at(30) })
      .then([failed('review', 1, 30), retried('review', 2, 530)]);
  });

  it('starts a scheduled retry once due, and not before', () => {
    const given = [...atReview, failed('review', 1, 30), retried('review', 2, 530)];
    spec.given(given).when({ type: 'StartScheduledRetry', runId, stepName: 'review', attempt: 2, now: at(529) }).then([]);
    spec.given(given).when({ type: 'StartScheduledRetry', runId, stepName: 'review', attempt: 2, now: at(530) }).then([started('review', 2, 530, 10_000)]);
  });

  it('fails the run when the last attempt fails', () => {
    spec
      .given([...atReview.slice(0, 4), failed('extract', 1, 15), retried('extract', 2, 15), started('extract', 2, 15, 2000, 'doc-1')])
      .when({ type: 'FailStep', runId, stepName: 'extract', error: 'again', source: 'knowledge', now: at(16) })
      .then([failed('extract', 2, 16, 'again'), { type: 'RunFailed', data: { runId, stepName: 'extract', error: { message: 'again' }, failedAt: iso(16) } }]);
  });

  it('rejects an empty failure message: BAD_USER_INPUT', () => {
    spec.given(atReview).when({ type: 'FailStep', runId, stepName: 'review', error: '  ', source: 'api', now: at(30) }).thenThrows(BadUserInputError, 'BAD_USER_INPUT');
  });
});

describe('run decider: deadlines', () => {
  it('times out a running attempt past its deadline, then applies the retry policy', () => {
    spec
      .given(atReview)
      .when({ type: 'TimeoutStep', runId, stepName: 'review', attempt: 1, now: at(10_020) })
      .then([
        { type: 'StepTimedOut', data: { runId, stepName: 'review', attempt: 1, deadline: iso(10_020), timedOutAt: iso(10_020) } },
        retried('review', 2, 10_520),
      ]);
  });

  it('ignores a stale timer: before the deadline, another attempt, or an ended step', () => {
    spec.given(atReview).when({ type: 'TimeoutStep', runId, stepName: 'review', attempt: 1, now: at(10_019) }).then([]);
    spec.given(atReview).when({ type: 'TimeoutStep', runId, stepName: 'review', attempt: 2, now: at(99_999) }).then([]);
    spec.given(atReview).when({ type: 'TimeoutStep', runId, stepName: 'ingest', attempt: 1, now: at(99_999) }).then([]);
    spec.given([]).when({ type: 'TimeoutStep', runId, stepName: 'ingest', attempt: 1, now: at(99_999) }).then([]);
  });

  it('fails the run when the timed-out attempt was the last', () => {
    spec
      .given([runStarted, started('ingest', 1, 0, 1000)])
      .when({ type: 'TimeoutStep', runId, stepName: 'ingest', attempt: 1, now: at(1000) })
      .then([
        { type: 'StepTimedOut', data: { runId, stepName: 'ingest', attempt: 1, deadline: iso(1000), timedOutAt: iso(1000) } },
        { type: 'RunFailed', data: { runId, stepName: 'ingest', error: { message: 'Attempt 1 timed out after 1000 ms' }, failedAt: iso(1000) } },
      ]);
  });
});

describe('run decider: manual retry and cancel', () => {
  const failedRun: RunEvent[] = [
    runStarted,
    started('ingest', 1, 0, 1000),
    failed('ingest', 1, 10),
    { type: 'RunFailed', data: { runId, stepName: 'ingest', error: { message: 'boom' }, failedAt: iso(10) } },
  ];

  it('reopens a failed run by retrying the step that failed it, with a fresh attempt budget', () => {
    spec.given(failedRun).when({ type: 'RetryStep', runId, stepName: 'ingest', now: at(50) }).then([retried('ingest', 2, 50, 'MANUAL'), started('ingest', 2, 50, 1000)]);
    // The fresh budget: attempt 2 (maxAttempts 1) may fail once more before the run fails again.
    spec
      .given([...failedRun, retried('ingest', 2, 50, 'MANUAL'), started('ingest', 2, 50, 1000)])
      .when({ type: 'CompleteStep', runId, stepName: 'ingest', output: null, source: 'content', now: at(60) })
      .then([completed('ingest', 2, 60, null), started('extract', 1, 60, 2000)]);
  });

  it('starts a step waiting for its backoff at once', () => {
    spec
      .given([...atReview, failed('review', 1, 30), retried('review', 2, 530)])
      .when({ type: 'RetryStep', runId, stepName: 'review', now: at(40) })
      .then([started('review', 2, 40, 10_000)]);
  });

  it('rejects retrying a running or completed step: ILLEGAL_TRANSITION', () => {
    spec.given(atReview).when({ type: 'RetryStep', runId, stepName: 'review', now: at(40) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
    spec.given(atReview).when({ type: 'RetryStep', runId, stepName: 'ingest', now: at(40) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
  });

  it('cancels a running run, and rejects cancelling it twice', () => {
    const cancelled: RunEvent = { type: 'RunCancelled', data: { runId, reason: 'no longer needed', cancelledAt: iso(40) } };
    spec.given(atReview).when({ type: 'CancelRun', runId, reason: 'no longer needed', now: at(40) }).then([cancelled]);
    spec.given([...atReview, cancelled]).when({ type: 'CancelRun', runId, reason: null, now: at(41) }).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
  });

  it('ignores timers of a cancelled run', () => {
    const cancelled: RunEvent = { type: 'RunCancelled', data: { runId, reason: null, cancelledAt: iso(40) } };
    spec.given([...atReview, cancelled]).when({ type: 'TimeoutStep', runId, stepName: 'review', attempt: 1, now: at(99_999) }).then([]);
  });
});
