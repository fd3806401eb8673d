/**
 * Events of the workflow aggregate (stream `workflow-<id>`). Times are ISO-8601 UTC strings.
 */

/** What a step does; issue 3 drives INGEST and EXTRACT from other services' events. */
export type StepKind = 'INGEST' | 'EXTRACT' | 'EXTERNAL';
export const STEP_KINDS: readonly StepKind[] = ['INGEST', 'EXTRACT', 'EXTERNAL'];

/** How a failed or timed-out step is retried. */
export interface RetryPolicy {
  /** Attempts in total, first one included (≥ 1; 1 = never retried automatically). */
  maxAttempts: number;
  /** Wait between a failure and the next attempt, in ms (≥ 0; 0 = start it at once). */
  backoffMs: number;
}

/** A step of a workflow definition. */
export interface StepDefinition {
  /** Unique within the workflow, 1..100 characters. */
  name: string;
  kind: StepKind;
  retryPolicy: RetryPolicy;
  /** Time an attempt may run before StepTimedOut, in ms (> 0). */
  timeoutMs: number;
}

/** A workflow was defined (the stream's first event). Its revision is 1. */
export interface WorkflowDefined {
  type: 'WorkflowDefined';
  data: { workflowId: string; name: string; steps: StepDefinition[]; definedAt: string };
}

/** A workflow's name or steps changed; `revision` is the new revision (≥ 2). Running runs keep their pinned steps. */
export interface WorkflowRevised {
  type: 'WorkflowRevised';
  data: { workflowId: string; revision: number; name: string; steps: StepDefinition[]; revisedAt: string };
}

export type WorkflowEvent = WorkflowDefined | WorkflowRevised;
export const WORKFLOW_EVENT_TYPES: readonly WorkflowEvent['type'][] = ['WorkflowDefined', 'WorkflowRevised'];

/** Stream id of a workflow. */
export function workflowStreamId(workflowId: string): string {
  return `workflow-${workflowId}`;
}
