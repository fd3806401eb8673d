/**
 * What a subgraph declares to serve a subscription field from its event store (DESIGN.md,
 * "Subscriptions through the gateway"): which events can update it, where a subscription
 * without a cursor starts, and how an event becomes the update a client receives.
 *
 * ```ts
 * const runUpdated: LiveField<{ runId: string }> = {
 *   name: 'runUpdated',
 *   start: 'stream',
 *   types: RUN_EVENT_TYPES,
 *   normalize: (args) => ({ runId: requireId(args.runId) }),
 *   streamId: (args) => runStreamId(args.runId),
 *   createProjector: (args) => runProjector(store, args),
 * };
 * ```
 */
import type { RecordedEvent } from '../../eventstore/index.ts';

/**
 * Where a subscription given no `after` cursor starts:
 * - `'stream'`: before the first event of the field's stream (entity-scoped fields such as
 *   `runUpdated(runId)` replay the entity's whole history, then go live);
 * - `'head'`: at the log's head when it subscribes (feeds such as `runs(filter)`: live from now).
 */
export type LiveStart = 'stream' | 'head';

/**
 * The fields of one update, without the three every update carries (the serving layer adds
 * `cursor`, `eventType` and `occurredAt`). The values are what the field's GraphQL type
 * resolves from, e.g. `{ run: RunRow }`.
 */
export type LiveUpdate = Record<string, unknown>;

/** Turns events into updates, in log order, for one set of arguments. */
export interface LiveProjector {
  /**
   * The update `event` makes to this subscription, carrying the entity as of that event (its
   * state folded up to and including it, never a later read-model row), or `null` when the event
   * does not concern it. Called once per event in `(transaction_id, global_position)` order; may
   * read the event store (e.g. the entity's stream up to the event). A thrown error is retried
   * for the same event with backoff, so it must not have side effects.
   */
  project(event: RecordedEvent): Promise<LiveUpdate | null> | LiveUpdate | null;
}

/** A subscription field served from the subgraph's event store. */
export interface LiveField<TArgs extends Record<string, unknown> = Record<string, unknown>> {
  /** The field of the subgraph's `Subscription` type, e.g. `runUpdated`. */
  readonly name: string;
  /** Where a subscription without `after` starts (see {@link LiveStart}). */
  readonly start: LiveStart;
  /** Event types that can produce an update: replays read only these. */
  readonly types: readonly string[];
  /**
   * Checks and normalises the field's coerced arguments, `after` excluded (e.g. trims, fills
   * defaults). Equal results share one feed and bind cursors, so it must be deterministic.
   * @throws the subgraph's deliberate error (`BAD_USER_INPUT`) for arguments it refuses
   */
  normalize(args: Readonly<Record<string, unknown>>): TArgs;
  /**
   * The one stream every update of these arguments comes from, when there is one (replays then
   * read that stream only). Required when `start` is `'stream'`.
   */
  streamId?(args: TArgs): string;
  /** A fresh projector for these arguments (one per feed and one per replaying client). */
  createProjector(args: TArgs): LiveProjector;
}
