/**
 * flowgraph's event store: append-only streams in PostgreSQL with optimistic concurrency,
 * gap-safe global reads, catch-up subscriptions with one active consumer per name, non-durable
 * followers for ephemeral readers (live subscription fields), inline and
 * async projections, upcasting and command handling. DESIGN.md, "Event store semantics".
 *
 * Usage:
 * ```ts
 * const pool = new pg.Pool({ connectionString });
 * await migrateEventStore(pool);
 * const store = createEventStore({ pool });
 * await store.appendToStream('run-1', [{ type: 'RunStarted', data: {} }], { expectedVersion: 'no_stream' });
 * ```
 */
export * from './errors.ts';
export * from './types.ts';
export { type Logger, type BriefError, briefError, silentLogger } from './logger.ts';
export { migrateEventStore, EVENTSTORE_SCHEMA, EVENTSTORE_SCHEMA_VERSION } from './schema.ts';
export { createEventStore, type EventStore, type EventStoreOptions, type EventStoreTransaction, DEFAULT_MAX_EVENT_BYTES } from './store.ts';
export { LOG_BOUND_CTE, headPosition, MAX_GLOBAL_POSITION } from './read.ts';
export { isExactNumberText, findInexactNumber, parseJsonExactly, formatJsonPath, describeInexactNumber, inexactNumberRefusal, shortNumberText, type InexactNumber, type InexactNumberRefusal } from './jsonNumbers.ts';
export { MAX_JSON_DEPTH, MAX_METADATA_BYTES, MAX_STREAM_ID_LENGTH } from './validate.ts';
export { encodeCursor, decodeCursor, compareLogPositions, formatPosition, parsePosition, checkLogPosition, LOG_START } from './cursor.ts';
export { type Subscription, type SubscriptionOptions, type SubscriptionHandlerContext } from './subscribe.ts';
export { type LogFollower, type FollowOptions } from './follow.ts';
export { startProjection, rebuildProjection, type RebuildOptions } from './project.ts';
export { startRelay, type RelayOptions } from './relay.ts';
export { handleOnce, handleBatchOnce, DuplicateDeliveryError, type InboxOutcome } from './inbox.ts';
export * from './integration.ts';
export { handleCommand, type Decider, type HandleCommandOptions, type HandleCommandResult } from './command.ts';
