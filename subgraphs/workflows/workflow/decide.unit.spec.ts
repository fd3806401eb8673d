import { describe, expect, it } from 'vitest';
import { AlreadyExistsError, BadUserInputError, NotFoundError } from '../errors.ts';
import { deciderSpec } from '../testing/deciderSpec.ts';
import { workflowDecider } from './decider.ts';
import type { StepDefinition, WorkflowEvent } from './events.ts';

const now = new Date('2025-01-01T00:00:00.000Z');
const later = new Date('2025-01-02T00:00:00.000Z');
const steps: StepDefinition[] = [
  { name: 'ingest', kind: 'INGEST', retryPolicy: { maxAttempts: 1, backoffMs: 0 }, timeoutMs: 1000 },
  { name: 'review', kind: 'EXTERNAL', retryPolicy: { maxAttempts: 3, backoffMs: 500 }, timeoutMs: 60_000 },
];
const defined: WorkflowEvent = { type: 'WorkflowDefined', data: { workflowId: 'w1', name: 'Docs', steps, definedAt: now.toISOString() } };
const spec = deciderSpec(workflowDecider);

describe('workflow decider', () => {
  it('defines a new workflow', () => {
    spec.given([]).when({ type: 'DefineWorkflow', workflowId: 'w1', name: ' Docs ', steps, now }).then([defined]);
  });

  it('treats defining the same workflow again as a no-op (retried request)', () => {
    spec.given([defined]).when({ type: 'DefineWorkflow', workflowId: 'w1', name: 'Docs', steps, now: later }).then([]);
  });

  it('rejects defining an existing id with other content: ALREADY_EXISTS', () => {
    spec.given([defined]).when({ type: 'DefineWorkflow', workflowId: 'w1', name: 'Other', steps, now }).thenThrows(AlreadyExistsError, 'ALREADY_EXISTS');
  });

  it('revises a workflow with revision + 1', () => {
    const newSteps = steps.slice(0, 1);
    spec
      .given([defined])
      .when({ type: 'ReviseWorkflow', workflowId: 'w1', name: 'Docs', steps: newSteps, now: later })
      .then([{ type: 'WorkflowRevised', data: { workflowId: 'w1', revision: 2, name: 'Docs', steps: newSteps, revisedAt: later.toISOString() } }]);
  });

  it('rejects revising an unknown workflow: NOT_FOUND', () => {
    spec.given([]).when({ type: 'ReviseWorkflow', workflowId: 'w1', name: 'Docs', steps, now }).thenThrows(NotFoundError, 'NOT_FOUND');
  });

  it.each([
    ['an empty name', { name: '  ' }, 'name'],
    ['no steps', { steps: [] }, 'steps'],
    ['duplicate step names', { steps: [steps[0]!, steps[0]!] }, 'steps[1].name'],
    ['an unknown kind', { steps: [{ ...steps[0]!, kind: 'SING' as never }] }, 'steps[0].kind'],
    ['maxAttempts 0', { steps: [{ ...steps[0]!, retryPolicy: { maxAttempts: 0, backoffMs: 0 } }] }, 'steps[0].retryPolicy.maxAttempts'],
    ['a negative backoff', { steps: [{ ...steps[0]!, retryPolicy: { maxAttempts: 1, backoffMs: -1 } }] }, 'steps[0].retryPolicy.backoffMs'],
    ['a zero timeout', { steps: [{ ...steps[0]!, timeoutMs: 0 }] }, 'steps[0].timeoutMs'],
    ['a fractional timeout', { steps: [{ ...steps[0]!, timeoutMs: 1.5 }] }, 'steps[0].timeoutMs'],
  ])('rejects %s with BAD_USER_INPUT naming the field', (_label, patch, field) => {
    const error = spec
      .given([])
      .when({ type: 'DefineWorkflow', workflowId: 'w1', name: 'Docs', steps, now, ...patch })
      .thenThrows(BadUserInputError, 'BAD_USER_INPUT');
    expect(error.details.field).toBe(field);
  });
});
