/** The run aggregate as a Decider for `handleCommand` (eventstore/command.ts). */
import type { Decider } from '../../../eventstore/index.ts';
import type { RunCommand } from './commands.ts';
import { decideRun } from './decide.ts';
import type { RunEvent } from './events.ts';
import { evolveRun, initialRunState, type RunState } from './evolve.ts';

/** `{ initialState, evolve, decide }` of the run aggregate (stream `run-<id>`). */
export const runDecider: Decider<RunState, RunCommand, RunEvent> = {
  initialState: initialRunState,
  evolve: evolveRun,
  decide: decideRun,
};
