/** State of the workflow aggregate and how events change it. */
import type { StepDefinition, WorkflowEvent } from './events.ts';

/** A workflow as the decider sees it; `exists: false` before WorkflowDefined. */
export type WorkflowState =
  | { exists: false }
  | { exists: true; workflowId: string; name: string; revision: number; steps: StepDefinition[] };

/** The state of a stream with no events. */
export function initialWorkflowState(): WorkflowState {
  return { exists: false };
}

/** Applies one event. Pure. */
export function evolveWorkflow(state: WorkflowState, event: WorkflowEvent): WorkflowState {
  switch (event.type) {
    case 'WorkflowDefined':
      return { exists: true, workflowId: event.data.workflowId, name: event.data.name, revision: 1, steps: event.data.steps };
    case 'WorkflowRevised':
      if (!state.exists) return state;
      return { ...state, name: event.data.name, revision: event.data.revision, steps: event.data.steps };
    default:
      return state;
  }
}
