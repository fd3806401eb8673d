/**
 * Runs a command on a run stream: load, fold, decide, append at the version read. Unlike the
 * generic `handleCommand`, it stamps every appended event with the run's correlation id (issue
 * 3: "Every event carries the run's correlation id and its cause's id"), and it also works
 * inside a transaction opened by someone else (`handleOnce` for integration events).
 */
import {
  CommandRetriesExhaustedError,
  WrongExpectedVersionError,
  type EventMetadata,
  type EventStore,
  type RecordedEvent,
} from '../../../eventstore/index.ts';
import type { EventStoreTransaction } from '../../../eventstore/index.ts';
// The store's own stream reader, run on the transaction's connection (not re-exported by the index).
import type { RunCommand } from './commands.ts';
import { decideRun } from './decide.ts';
import { runStreamId, type RunEvent } from './events.ts';
import { evolveRun, initialRunState, type RunState } from './evolve.ts';

/** Attempts of `handleRunCommand` before CommandRetriesExhaustedError. */
export const RUN_COMMAND_MAX_ATTEMPTS = 3;

/** What a run command did. */
export interface RunCommandResult {
  /** State after the new events. */
  state: RunState;
  /** Events appended (`[]` when decide returned none). */
  newEvents: RecordedEvent[];
}

/** Folds a run's history into its state. */
export function foldRun(history: readonly RecordedEvent[]): RunState {
  return history.reduce((state, event) => evolveRun(state, event as unknown as RunEvent), initialRunState());
}

/**
 * Metadata of the events a command appends to a run with `history`: the caller's metadata,
 * except that `correlationId` is the run's (the one its RunStarted carries) once the run
 * exists. When the caller's correlation id differs (a later request with its own
 * x-correlation-id), it is kept as `originCorrelationId`.
 */
export function runMetadata(history: readonly RecordedEvent[], meta: EventMetadata): EventMetadata {
  const runCorrelation = history[0]?.metadata.correlationId;
  if (typeof runCorrelation !== 'string' || runCorrelation === meta.correlationId) return meta;
  return {
    ...meta,
    correlationId: runCorrelation,
    ...(meta.correlationId !== undefined ? { originCorrelationId: meta.correlationId } : {}),
  };
}

/**
 * Handles `command` on run `runId` with the store's own transactions, retrying up to 3 times
 * when a concurrent writer appended first.
 * @throws whatever `decideRun` throws (nothing appended); CommandRetriesExhaustedError
 */
export async function handleRunCommand(store: EventStore, runId: string, command: RunCommand, meta: EventMetadata): Promise<RunCommandResult> {
  const streamId = runStreamId(runId);
  let lastConflict: unknown;
  for (let attempt = 1; attempt <= RUN_COMMAND_MAX_ATTEMPTS; attempt++) {
    const history = await store.readStream(streamId);
    const state = foldRun(history);
    const decided = decideRun(command, state);
    if (decided.length === 0) return { state, newEvents: [] };
    try {
      const result = await store.appendToStream(streamId, decided, {
        expectedVersion: history.length === 0 ? 'no_stream' : history.length - 1,
        metadata: runMetadata(history, meta),
      });
      const newEvents = await store.readStream(streamId, { from: result.nextExpectedVersion - decided.length + 1, count: decided.length });
      return { state: newEvents.reduce((s, e) => evolveRun(s, e as unknown as RunEvent), state), newEvents };
    } catch (error) {
      if (!(error instanceof WrongExpectedVersionError)) throw error;
      lastConflict = error;
    }
  }
  throw new CommandRetriesExhaustedError(streamId, RUN_COMMAND_MAX_ATTEMPTS, lastConflict);
}

/**
 * Loads run `runId` inside `tx` (on its connection), so a decision and its append commit with
 * whatever else the transaction holds (the inbox row of an integration event).
 * @returns the run's history and state
 */
export async function loadRunIn(store: EventStore, tx: EventStoreTransaction, runId: string): Promise<{ history: RecordedEvent[]; state: RunState }> {
  const history = await tx.readStream(runStreamId(runId));
  return { history, state: foldRun(history) };
}

/**
 * Appends the events `decided` for a run loaded with `loadRunIn`, inside `tx`, at the version
 * read (no retry: a concurrent writer makes the append, and so the transaction, fail).
 * @returns the number of events appended
 * @throws WrongExpectedVersionError when the run changed since it was read
 */
export async function appendRunEventsIn(
  tx: EventStoreTransaction,
  runId: string,
  history: readonly RecordedEvent[],
  decided: readonly RunEvent[],
  meta: EventMetadata,
): Promise<number> {
  if (decided.length === 0) return 0;
  await tx.appendToStream(runStreamId(runId), decided, {
    expectedVersion: history.length === 0 ? 'no_stream' : history.length - 1,
    metadata: runMetadata(history, meta),
  });
  return decided.length;
}
