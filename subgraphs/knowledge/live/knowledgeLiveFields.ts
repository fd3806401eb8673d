/**
 * The knowledge subgraph's subscription field (schema.graphql `Subscription`), served from its
 * event store by federation/live/ (DESIGN.md, "Subscriptions through the gateway"):
 * `entityDiscovered(documentId)`, from the EntityMentioned events of stream
 * `extraction-<documentId>` (from its first event without `after`): one update per entity, the
 * first time the document mentions it. Later mentions of the same entity in the document, and a
 * second extraction of the document, send nothing. Each update is `{ documentId, chunkIndex,
 * entity }`: the chunk of that first mention and the entity as of the event (its mentionCount
 * over every document, counting mentions up to and including the event's log position).
 *
 * ```ts
 * serveSubgraph({ ..., live: { store, fields: createKnowledgeLiveFields({ store, readModel }), codec } });
 * ```
 */
import type { EventStore } from '../../../eventstore/index.ts';
import type { LiveField, LiveProjector } from '../../../federation/live/liveField.ts';
import { BadUserInputError } from '../errors.ts';
import { extractionStreamId, type EntityMentionedData } from '../events.ts';
import type { EntityRow, ReadModel } from '../readModel.ts';

/** Longest id accepted by the subscription arguments, in characters. */
export const MAX_LIVE_ID_LENGTH = 200;

/** `extensions.reason` of the subscription arguments' BAD_USER_INPUT errors. */
export const LiveInputReason = {
  /** An id that is not 1..200 characters, or holds U+0000 or an unpaired surrogate. */
  InvalidId: 'INVALID_ID',
} as const;

/** Arguments of `entityDiscovered`, normalised. */
export type EntityDiscoveredArgs = { documentId: string };

/** The update of `entityDiscovered` (the serving layer adds cursor, eventType, occurredAt). */
export interface EntityDiscoveryValue {
  [key: string]: unknown;
  documentId: string;
  /** The chunk of the document's first mention of the entity. */
  chunkIndex: number;
  /** The entity as of the event. */
  entity: EntityRow;
}

/** What the fields need. */
export interface KnowledgeLiveDeps {
  store: EventStore;
  readModel: Pick<ReadModel, 'entityAsOf'>;
}

const MENTIONED = 'EntityMentioned';

/** The subscription fields of the knowledge subgraph. */
export function createKnowledgeLiveFields({ store, readModel }: KnowledgeLiveDeps): LiveField<any>[] {
  const entityDiscovered: LiveField<EntityDiscoveredArgs> = {
    name: 'entityDiscovered',
    start: 'stream',
    types: [MENTIONED],
    normalize: (args) => ({ documentId: requireId(args.documentId, 'documentId') }),
    streamId: (args) => extractionStreamId(args.documentId),
    createProjector(args): LiveProjector {
      const streamId = extractionStreamId(args.documentId);
      // Entities the document mentioned before `through` (the stream position of the last event
      // projected). Called on every EntityMentioned in order, so only the first call (a replay can
      // start mid-stream) or a repeated one needs to read the stream before the event.
      let seen: Set<string> | null = null;
      let through = -1;
      return {
        async project(event) {
          if (event.streamId !== streamId || event.type !== MENTIONED) return null;
          let known = seen;
          if (known === null || event.streamPosition <= through) {
            const before = event.streamPosition === 0 ? [] : await store.readStream(streamId, { count: event.streamPosition });
            known = new Set(before.filter((e) => e.type === MENTIONED).map((e) => (e.data as EntityMentionedData).entityId));
          }
          const d = event.data as EntityMentionedData;
          const first = !known.has(d.entityId);
          // Read before changing any state: a failed read is retried for the same event.
          const entity = first ? await readModel.entityAsOf(d.entityId, { transactionId: event.transactionId, globalPosition: event.globalPosition }) : null;
          known.add(d.entityId);
          seen = known;
          through = event.streamPosition;
          // EntityDiscovered commits with the first mentions, so the entity exists; null only guards a broken log.
          return entity === null ? null : { documentId: d.documentId, chunkIndex: d.chunkIndex, entity };
        },
      };
    },
  };
  return [entityDiscovered];
}

/**
 * An id argument: 1..200 characters, no U+0000, no unpaired surrogate (the event store refuses it as a stream id).
 * @throws BadUserInputError reason INVALID_ID (`field` names the argument)
 */
export function requireId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LIVE_ID_LENGTH || value.includes('\u0000') || !value.isWellFormed()) {
    throw new BadUserInputError(`${field} must be 1..${MAX_LIVE_ID_LENGTH} characters of valid Unicode without U+0000`, { field, reason: LiveInputReason.InvalidId });
  }
  return value;
}
