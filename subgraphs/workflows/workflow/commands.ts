/** Commands of the workflow aggregate. `now` is injected by the caller (never read inside decide). */
import type { StepDefinition } from './events.ts';

/** Define a new workflow. Re-defining the same id with identical content is a no-op. */
export interface DefineWorkflow {
  type: 'DefineWorkflow';
  workflowId: string;
  name: string;
  steps: StepDefinition[];
  now: Date;
}

/** Replace a workflow's name and steps (a new revision). Identical content is a no-op. */
export interface ReviseWorkflow {
  type: 'ReviseWorkflow';
  workflowId: string;
  name: string;
  steps: StepDefinition[];
  now: Date;
}

export type WorkflowCommand = DefineWorkflow | ReviseWorkflow;
