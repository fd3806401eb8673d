/**
 * Inline projection of run streams into `workflow_runs`, `step_runs`, `run_deadlines` and
 * `idempotency_keys` (prisma/workflows/schema.prisma). Runs in the append's transaction, so a
 * mutation reads its own write and a deadline row exists exactly when its events committed.
 */
import type { ClientBase } from 'pg';
import type { Projection, RecordedEvent } from '../../../eventstore/index.ts';
import { RUN_EVENT_TYPES, type RunEvent } from '../run/events.ts';
import { producedDocumentId } from '../run/runSnapshot.ts';
import { stepRow } from './workflowsProjection.ts';

/** Kinds of rows in `run_deadlines`. */
export type DeadlineKind = 'STEP_TIMEOUT' | 'RETRY';

/** Projection `workflows.runs`: handles every run event. */
export const runsProjection: Projection = {
  name: 'workflows.runs',
  handles: RUN_EVENT_TYPES,
  async apply(events, client) {
    for (const recorded of events) await applyOne(recorded, client);
  },
  async reset(client) {
    await client.query('TRUNCATE run_deadlines, idempotency_keys, step_runs, workflow_runs');
  },
};

async function applyOne(recorded: RecordedEvent, client: ClientBase): Promise<void> {
  const event = recorded as unknown as RunEvent;
  const runId = event.data.runId;
  if (event.type === 'RunStarted') {
    const d = event.data;
    await client.query(
      `INSERT INTO workflow_runs (id, workflow_id, workflow_revision, status, input, idempotency_key, seq, version, started_at, updated_at)
       VALUES ($1, $2, $3, 'RUNNING', $4::jsonb, $5, $6, $7, $8::timestamptz, $9)`,
      [runId, d.workflowId, d.workflowRevision, JSON.stringify(d.input), d.idempotencyKey, recorded.globalPosition, recorded.streamPosition, d.startedAt, recorded.recordedAt],
    );
    await client.query(
      `INSERT INTO step_runs (run_id, position, name, kind, status, attempt, max_attempts, backoff_ms, timeout_ms)
       SELECT $1, s.ord - 1, s.step->>'name', s.step->>'kind', 'PENDING', 0, (s.step->>'max_attempts')::int,
              (s.step->>'backoff_ms')::int, (s.step->>'timeout_ms')::int
         FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS s(step, ord)`,
      [runId, JSON.stringify(d.steps.map(stepRow))],
    );
    if (d.idempotencyKey !== null) {
      await client.query(`INSERT INTO idempotency_keys (workflow_id, key, run_id, created_at) VALUES ($1, $2, $3, $4::timestamptz)`, [
        d.workflowId,
        d.idempotencyKey,
        runId,
        d.startedAt,
      ]);
    }
    return;
  }

  // Every later event moves the run's version.
  await client.query('UPDATE workflow_runs SET version = $2, updated_at = $3 WHERE id = $1', [runId, recorded.streamPosition, recorded.recordedAt]);
  switch (event.type) {
    case 'StepStarted': {
      const d = event.data;
      // An EXTRACT attempt names the document it works on (absent when the run has none).
      await client.query(
        `UPDATE step_runs SET status = 'RUNNING', attempt = $3, deadline = $4::timestamptz, retry_at = NULL, error = NULL,
                started_at = $5::timestamptz, ended_at = NULL,
                document_id = CASE WHEN kind = 'EXTRACT' THEN $6 ELSE document_id END
          WHERE run_id = $1 AND name = $2`,
        [runId, d.stepName, d.attempt, d.deadline, d.startedAt, d.documentId ?? null],
      );
      await client.query('UPDATE workflow_runs SET current_step = $2 WHERE id = $1', [runId, d.stepName]);
      await setDeadline(client, recorded, d.stepName, d.attempt, 'STEP_TIMEOUT', d.deadline);
      return;
    }
    case 'StepCompleted': {
      const d = event.data;
      await endStep(client, runId, d.stepName, 'COMPLETED', d.completedAt, { output: d.output });
      // An INGEST step's output names the document it produced.
      await client.query(`UPDATE step_runs SET document_id = $3 WHERE run_id = $1 AND name = $2 AND kind = 'INGEST'`, [
        runId,
        d.stepName,
        producedDocumentId(d.output),
      ]);
      await clearDeadline(client, runId);
      return;
    }
    case 'StepFailed': {
      const d = event.data;
      await endStep(client, runId, d.stepName, 'FAILED', d.failedAt, { error: d.error });
      await clearDeadline(client, runId);
      return;
    }
    case 'StepTimedOut': {
      const d = event.data;
      await endStep(client, runId, d.stepName, 'TIMED_OUT', d.timedOutAt, { error: { message: `Attempt ${d.attempt} timed out at ${d.deadline}` } });
      await clearDeadline(client, runId);
      return;
    }
    case 'StepRetried': {
      const d = event.data;
      await client.query(`UPDATE step_runs SET status = 'RETRY_SCHEDULED', retry_at = $3::timestamptz WHERE run_id = $1 AND name = $2`, [
        runId,
        d.stepName,
        d.retryAt,
      ]);
      // A manual retry reopens a FAILED run.
      await client.query(
        `UPDATE workflow_runs SET status = 'RUNNING', current_step = $2, error = NULL, ended_at = NULL WHERE id = $1`,
        [runId, d.stepName],
      );
      await setDeadline(client, recorded, d.stepName, d.attempt, 'RETRY', d.retryAt);
      return;
    }
    case 'RunCompleted': {
      const d = event.data;
      await client.query(
        `UPDATE workflow_runs SET status = 'COMPLETED', output = $2::jsonb, current_step = NULL, ended_at = $3::timestamptz WHERE id = $1`,
        [runId, JSON.stringify(d.output), d.completedAt],
      );
      await clearDeadline(client, runId);
      return;
    }
    case 'RunFailed': {
      const d = event.data;
      await client.query(
        `UPDATE workflow_runs SET status = 'FAILED', error = $2::jsonb, current_step = NULL, ended_at = $3::timestamptz WHERE id = $1`,
        [runId, JSON.stringify({ stepName: d.stepName, message: d.error.message }), d.failedAt],
      );
      await clearDeadline(client, runId);
      return;
    }
    case 'RunCancelled': {
      const d = event.data;
      await client.query(
        `UPDATE workflow_runs SET status = 'CANCELLED', cancel_reason = $2, current_step = NULL, ended_at = $3::timestamptz WHERE id = $1`,
        [runId, d.reason, d.cancelledAt],
      );
      await client.query(
        `UPDATE step_runs SET status = 'CANCELLED', deadline = NULL, retry_at = NULL,
                ended_at = CASE WHEN status = 'PENDING' THEN NULL ELSE $2::timestamptz END
          WHERE run_id = $1 AND status IN ('PENDING', 'RUNNING', 'RETRY_SCHEDULED')`,
        [runId, d.cancelledAt],
      );
      await clearDeadline(client, runId);
      return;
    }
  }
}

async function endStep(
  client: ClientBase,
  runId: string,
  stepName: string,
  status: string,
  at: string,
  result: { output?: unknown; error?: unknown },
): Promise<void> {
  await client.query(
    `UPDATE step_runs SET status = $3, deadline = NULL, ended_at = $4::timestamptz,
            output = COALESCE($5::jsonb, output), error = $6::jsonb
      WHERE run_id = $1 AND name = $2`,
    [
      runId,
      stepName,
      status,
      at,
      result.output === undefined ? null : JSON.stringify(result.output),
      result.error === undefined ? null : JSON.stringify(result.error),
    ],
  );
}

/** A run has at most one pending timer (steps run one at a time): upsert it. */
async function setDeadline(client: ClientBase, recorded: RecordedEvent, stepName: string, attempt: number, kind: DeadlineKind, dueAt: string): Promise<void> {
  await client.query(
    `INSERT INTO run_deadlines (run_id, step_name, attempt, kind, due_at, causation_id, correlation_id)
     VALUES ($1, $2, $3, $4, $5::timestamptz, $6, $7)
     ON CONFLICT (run_id) DO UPDATE SET step_name = EXCLUDED.step_name, attempt = EXCLUDED.attempt, kind = EXCLUDED.kind,
       due_at = EXCLUDED.due_at, causation_id = EXCLUDED.causation_id, correlation_id = EXCLUDED.correlation_id`,
    [
      (recorded.data as { runId: string }).runId,
      stepName,
      attempt,
      kind,
      dueAt,
      recorded.eventId,
      typeof recorded.metadata.correlationId === 'string' ? recorded.metadata.correlationId : null,
    ],
  );
}

async function clearDeadline(client: ClientBase, runId: string): Promise<void> {
  await client.query('DELETE FROM run_deadlines WHERE run_id = $1', [runId]);
}
