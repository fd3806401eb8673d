/**
 * given(events).when(command).then(events | error) for Deciders (Emmett's DeciderSpecification
 * style). For unit tests only: it asserts with vitest's `expect`.
 *
 * ```ts
 * const spec = deciderSpec(runDecider);
 * spec.given([started]).when(cancel).then([cancelled]);
 * spec.given([started, cancelled]).when(complete).thenThrows(IllegalTransitionError, 'ILLEGAL_TRANSITION');
 * ```
 */
import { expect } from 'vitest';
import type { Decider } from '../../../eventstore/index.ts';
import type { WorkflowsError } from '../errors.ts';

export interface DeciderSpec<C, E> {
  given(events: E[]): {
    when(command: C): {
      /** Asserts the events decided (deep equality, in order). */
      then(expected: E[]): void;
      /** Asserts decide threw an instance of `errorClass` with `code`, and returns it. */
      thenThrows<T extends WorkflowsError>(errorClass: new (...args: any[]) => T, code: string): T;
    };
  };
}

export function deciderSpec<S, C, E extends { type: string; data: unknown }>(decider: Decider<S, C, E>): DeciderSpec<C, E> {
  return {
    given(events) {
      return {
        when(command) {
          const run = () => decider.decide(command, events.reduce(decider.evolve, decider.initialState()));
          return {
            then(expected) {
              expect(run()).toEqual(expected);
            },
            thenThrows<T extends WorkflowsError>(errorClass: new (...args: any[]) => T, code: string): T {
              let caught: unknown;
              try {
                run();
              } catch (e) {
                caught = e;
              }
              expect(caught).toBeInstanceOf(errorClass);
              expect((caught as WorkflowsError).code).toBe(code);
              return caught as T;
            },
          };
        },
      };
    },
  };
}
