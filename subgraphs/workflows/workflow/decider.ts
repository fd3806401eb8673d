/** The workflow aggregate as a Decider for `handleCommand` (eventstore/command.ts). */
import type { Decider } from '../../../eventstore/index.ts';
import type { WorkflowCommand } from './commands.ts';
import { decideWorkflow } from './decide.ts';
import type { WorkflowEvent } from './events.ts';
import { evolveWorkflow, initialWorkflowState, type WorkflowState } from './evolve.ts';

/** `{ initialState, evolve, decide }` of the workflow aggregate (stream `workflow-<id>`). */
export const workflowDecider: Decider<WorkflowState, WorkflowCommand, WorkflowEvent> = {
  initialState: initialWorkflowState,
  evolve: evolveWorkflow,
  decide: decideWorkflow,
};
