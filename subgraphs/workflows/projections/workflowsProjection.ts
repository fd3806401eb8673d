/**
 * Inline projection of workflow streams into `workflows` and `workflow_steps`
 * (prisma/workflows/schema.prisma). Runs in the append's transaction, so a mutation reads its
 * own write.
 */
import type { ClientBase } from 'pg';
import type { Projection, RecordedEvent } from '../../../eventstore/index.ts';
import { WORKFLOW_EVENT_TYPES, type StepDefinition, type WorkflowEvent } from '../workflow/events.ts';

/** Projection `workflows.workflows`: handles WorkflowDefined and WorkflowRevised. */
export const workflowsProjection: Projection = {
  name: 'workflows.workflows',
  handles: WORKFLOW_EVENT_TYPES,
  async apply(events, client) {
    for (const recorded of events) await applyOne(recorded, client);
  },
  async reset(client) {
    await client.query('TRUNCATE workflow_steps, workflows');
  },
};

async function applyOne(recorded: RecordedEvent, client: ClientBase): Promise<void> {
  const event = recorded as unknown as WorkflowEvent;
  switch (event.type) {
    case 'WorkflowDefined': {
      const d = event.data;
      await client.query(
        `INSERT INTO workflows (id, name, revision, version, created_at, updated_at) VALUES ($1, $2, 1, $3, $4::timestamptz, $4::timestamptz)`,
        [d.workflowId, d.name, recorded.streamPosition, d.definedAt],
      );
      await insertSteps(client, d.workflowId, d.steps);
      return;
    }
    case 'WorkflowRevised': {
      const d = event.data;
      await client.query(`UPDATE workflows SET name = $2, revision = $3, version = $4, updated_at = $5::timestamptz WHERE id = $1`, [
        d.workflowId,
        d.name,
        d.revision,
        recorded.streamPosition,
        d.revisedAt,
      ]);
      await client.query('DELETE FROM workflow_steps WHERE workflow_id = $1', [d.workflowId]);
      await insertSteps(client, d.workflowId, d.steps);
      return;
    }
  }
}

async function insertSteps(client: ClientBase, workflowId: string, steps: readonly StepDefinition[]): Promise<void> {
  await client.query(
    `INSERT INTO workflow_steps (workflow_id, position, name, kind, max_attempts, backoff_ms, timeout_ms)
     SELECT $1, s.ord - 1, s.step->>'name', s.step->>'kind', (s.step->>'max_attempts')::int,
            (s.step->>'backoff_ms')::int, (s.step->>'timeout_ms')::int
       FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS s(step, ord)`,
    [workflowId, JSON.stringify(steps.map(stepRow))],
  );
}

/** A step as the columns of `workflow_steps` / `step_runs` name it. */
export function stepRow(step: StepDefinition): Record<string, unknown> {
  return {
    name: step.name,
    kind: step.kind,
    max_attempts: step.retryPolicy.maxAttempts,
    backoff_ms: step.retryPolicy.backoffMs,
    timeout_ms: step.timeoutMs,
  };
}
