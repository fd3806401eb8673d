/** Decisions of the workflow aggregate. Pure: the clock arrives in the command. */
import { AlreadyExistsError, NotFoundError } from '../errors.ts';
import type { WorkflowCommand } from './commands.ts';
import type { StepDefinition, WorkflowEvent } from './events.ts';
import type { WorkflowState } from './evolve.ts';
import { validateWorkflowDefinition } from './validate.ts';

/**
 * Turns a command into events.
 * - DefineWorkflow → [WorkflowDefined]; [] when the workflow already exists with the same
 *   name and steps (a retried request).
 * - ReviseWorkflow → [WorkflowRevised] with revision + 1; [] when nothing changes.
 * @throws BadUserInputError for an invalid definition (see `validateWorkflowDefinition`)
 * @throws AlreadyExistsError when DefineWorkflow names an existing workflow with other content
 * @throws NotFoundError when ReviseWorkflow names a workflow that does not exist
 */
export function decideWorkflow(command: WorkflowCommand, state: WorkflowState): WorkflowEvent[] {
  validateWorkflowDefinition(command.name, command.steps);
  const name = command.name.trim();
  switch (command.type) {
    case 'DefineWorkflow': {
      if (state.exists) {
        if (sameDefinition(state, name, command.steps)) return [];
        throw new AlreadyExistsError(`Workflow ${command.workflowId} already exists with a different definition: use reviseWorkflow to change it`, {
          workflowId: command.workflowId,
        });
      }
      return [
        { type: 'WorkflowDefined', data: { workflowId: command.workflowId, name, steps: command.steps, definedAt: command.now.toISOString() } },
      ];
    }
    case 'ReviseWorkflow': {
      if (!state.exists) throw new NotFoundError(`Workflow ${command.workflowId} does not exist`, { workflowId: command.workflowId });
      if (sameDefinition(state, name, command.steps)) return [];
      return [
        {
          type: 'WorkflowRevised',
          data: { workflowId: command.workflowId, revision: state.revision + 1, name, steps: command.steps, revisedAt: command.now.toISOString() },
        },
      ];
    }
  }
}

function sameDefinition(state: Extract<WorkflowState, { exists: true }>, name: string, steps: readonly StepDefinition[]): boolean {
  return state.name === name && JSON.stringify(normalize(state.steps)) === JSON.stringify(normalize(steps));
}

function normalize(steps: readonly StepDefinition[]): unknown {
  return steps.map((s) => [s.name, s.kind, s.retryPolicy.maxAttempts, s.retryPolicy.backoffMs, s.timeoutMs]);
}
