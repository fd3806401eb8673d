/**
 * Command handling with the decide/evolve pattern: load the stream, fold it into state,
 * decide the new events, append them at the exact version that was read, and retry a bounded
 * number of times when a concurrent writer got there first.
 */
import { CommandRetriesExhaustedError, WrongExpectedVersionError } from './errors.ts';
import type { EventStore } from './store.ts';
import type { AppendResult, EventMetadata, NewEvent, RecordedEvent } from './types.ts';

/**
 * An aggregate's logic, pure: `decide` throws a typed domain error for an illegal command (and
 * nothing is appended) or returns the events that record it; `evolve` applies one event.
 */
export interface Decider<State, Command, Event extends { type: string; data: unknown }> {
  initialState(): State;
  evolve(state: State, event: Event): State;
  decide(command: Command, state: State): Event[] | NewEvent[];
}

/** Options of `handleCommand`. */
export interface HandleCommandOptions<State, Command, Event extends { type: string; data: unknown }> {
  streamId: string;
  decider: Decider<State, Command, Event>;
  command: Command;
  /** Metadata for every appended event (correlation, causation, actor...). */
  metadata?: EventMetadata;
  /** Attempts before giving up on conflicts (≥ 1). @default 3 */
  maxAttempts?: number;
}

/** Outcome of a handled command. */
export interface HandleCommandResult<State> {
  /** State after the new events. */
  state: State;
  /** Events appended by this command (`[]` when decide returned none). */
  newEvents: RecordedEvent[];
  /** The append's result, `null` when nothing was appended. */
  result: AppendResult | null;
}

/**
 * Loads, decides, appends; retries on `WrongExpectedVersionError`.
 * @throws whatever `decide` throws (nothing appended); CommandRetriesExhaustedError after `maxAttempts` conflicts
 */
export async function handleCommand<State, Command, Event extends { type: string; data: unknown }>(
  store: EventStore,
  options: HandleCommandOptions<State, Command, Event>,
): Promise<HandleCommandResult<State>> {
  const { streamId, decider, command } = options;
  const maxAttempts = Math.max(1, options.maxAttempts ?? 3);
  let lastConflict: unknown;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const history = await store.readStream(streamId);
    let state = decider.initialState();
    for (const event of history) state = decider.evolve(state, event as unknown as Event);
    const decided = decider.decide(command, state) as NewEvent[];
    if (decided.length === 0) return { state, newEvents: [], result: null };
    const expectedVersion = history.length === 0 ? 'no_stream' : history.length - 1;
    try {
      const result = await store.appendToStream(streamId, decided, { expectedVersion, metadata: options.metadata });
      const newEvents = await store.readStream(streamId, { from: result.nextExpectedVersion - decided.length + 1, count: decided.length });
      for (const event of newEvents) state = decider.evolve(state, event as unknown as Event);
      return { state, newEvents, result };
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      lastConflict = error;
    }
  }
  throw new CommandRetriesExhaustedError(streamId, maxAttempts, lastConflict);
}
