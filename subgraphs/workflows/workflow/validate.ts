/** Validation rules of workflow definitions, shared by define and revise. */
import { BadUserInputError } from '../errors.ts';
import { STEP_KINDS, type StepDefinition } from './events.ts';

/** Limits of a workflow definition. */
export const WORKFLOW_LIMITS = {
  /** Characters in a workflow name. */
  maxNameLength: 200,
  /** Characters in a step name. */
  maxStepNameLength: 100,
  /** Steps in one workflow. */
  maxSteps: 100,
  /** Attempts per step (maxAttempts). */
  maxAttempts: 100,
  /** Backoff and timeout upper bound, in ms (24 days: fits a 32-bit INTEGER column and a JS timer). */
  maxDurationMs: 2_000_000_000,
} as const;

/**
 * Checks a workflow's name and steps.
 * @throws BadUserInputError (`details.field` names the field) when the name is empty or longer
 *   than 200 characters, there are 0 or more than 100 steps, a step name is empty, longer than
 *   100 characters or used twice, a kind is unknown, `maxAttempts` is not an integer in 1..100,
 *   `backoffMs` is not an integer in 0..2e9 or `timeoutMs` not an integer in 1..2e9.
 */
export function validateWorkflowDefinition(name: string, steps: readonly StepDefinition[]): void {
  const trimmed = name.trim();
  if (trimmed.length === 0 || trimmed.length > WORKFLOW_LIMITS.maxNameLength) {
    throw new BadUserInputError(`Workflow name must have 1..${WORKFLOW_LIMITS.maxNameLength} characters`, { field: 'name' });
  }
  if (steps.length === 0 || steps.length > WORKFLOW_LIMITS.maxSteps) {
    throw new BadUserInputError(`A workflow needs 1..${WORKFLOW_LIMITS.maxSteps} steps, got ${steps.length}`, { field: 'steps' });
  }
  const seen = new Set<string>();
  steps.forEach((step, i) => {
    const field = `steps[${i}]`;
    if (step.name.trim().length === 0 || step.name.length > WORKFLOW_LIMITS.maxStepNameLength) {
      throw new BadUserInputError(`Step name must have 1..${WORKFLOW_LIMITS.maxStepNameLength} characters`, { field: `${field}.name` });
    }
    if (seen.has(step.name)) {
      throw new BadUserInputError(`Step name "${step.name}" is used twice: step names must be unique within a workflow`, { field: `${field}.name` });
    }
    seen.add(step.name);
    if (!STEP_KINDS.includes(step.kind)) {
      throw new BadUserInputError(`Step kind must be one of ${STEP_KINDS.join(', ')}, got ${JSON.stringify(step.kind)}`, { field: `${field}.kind` });
    }
    checkInt(step.retryPolicy.maxAttempts, 1, WORKFLOW_LIMITS.maxAttempts, `${field}.retryPolicy.maxAttempts`);
    checkInt(step.retryPolicy.backoffMs, 0, WORKFLOW_LIMITS.maxDurationMs, `${field}.retryPolicy.backoffMs`);
    checkInt(step.timeoutMs, 1, WORKFLOW_LIMITS.maxDurationMs, `${field}.timeoutMs`);
  });
}

function checkInt(value: number, min: number, max: number, field: string): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BadUserInputError(`${field} must be an integer in ${min}..${max}, got ${value}`, { field });
  }
}
