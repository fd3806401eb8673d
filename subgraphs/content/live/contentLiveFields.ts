/**
 * The content subgraph's subscription field (schema.graphql `Subscription`), served from its
 * event store by federation/live/ (DESIGN.md, "Subscriptions through the gateway"):
 * `documentProgress(documentId)`, every event of stream `document-<documentId>` from its first
 * one without `after`. Each update is `{ document, chunksStored, chunk }`: the document as of
 * the event ({@link DocumentSnapshot}), how many chunks were stored by then, and the chunk a
 * DocumentChunked stored.
 *
 * ```ts
 * serveSubgraph({ ..., live: { store, fields: createContentLiveFields({ store }), codec } });
 * ```
 */
import type { EventStore, RecordedEvent } from '../../../eventstore/index.ts';
import type { LiveField, LiveProjector } from '../../../federation/live/liveField.ts';
import { DOCUMENT_EVENT_TYPES, documentStreamId, type DocumentChunked } from '../document/events.ts';
import { evolveDocumentSnapshot, foldDocumentSnapshot, type DocumentSnapshot } from '../document/documentSnapshot.ts';
import { BadUserInputError, ContentRejectionReason } from '../errors.ts';
import type { ChunkRow } from '../readModel.ts';

/** Longest id accepted by the subscription arguments, in characters. */
export const MAX_LIVE_ID_LENGTH = 200;

/** Arguments of `documentProgress`, normalised. */
export type DocumentProgressArgs = { documentId: string };

/** The update of `documentProgress` (the serving layer adds cursor, eventType, occurredAt). */
export interface DocumentProgressValue {
  [key: string]: unknown;
  document: DocumentSnapshot;
  /** DocumentChunked events of the document up to and including this event. */
  chunksStored: number;
  /** The chunk a DocumentChunked stored (its `document` is the document as of this event), else null. */
  chunk: (ChunkRow & { asOfDocument: DocumentSnapshot }) | null;
}

/** What the fields need. */
export interface ContentLiveDeps {
  store: EventStore;
}

/** The subscription fields of the content subgraph. */
export function createContentLiveFields({ store }: ContentLiveDeps): LiveField<any>[] {
  const documentProgress: LiveField<DocumentProgressArgs> = {
    name: 'documentProgress',
    start: 'stream',
    types: DOCUMENT_EVENT_TYPES,
    normalize: (args) => ({ documentId: requireId(args.documentId, 'documentId') }),
    streamId: (args) => documentStreamId(args.documentId),
    createProjector(args): LiveProjector {
      const streamId = documentStreamId(args.documentId);
      // The document as of the last event projected: the next one folds onto it.
      let last: DocumentSnapshot | null = null;
      return {
        async project(event) {
          if (event.streamId !== streamId) return null;
          let document: DocumentSnapshot | null;
          if (last !== null && last.version === event.streamPosition) {
            document = last; // the same event again
          } else {
            const before =
              last !== null && last.version + 1 === event.streamPosition
                ? last
                : event.streamPosition === 0
                  ? null
                  : foldDocumentSnapshot(await store.readStream(streamId, { count: event.streamPosition }));
            document = evolveDocumentSnapshot(before, event);
          }
          last = document;
          return document === null ? null : update(document, event);
        },
      };
    },
  };
  return [documentProgress];
}

function update(document: DocumentSnapshot, event: RecordedEvent): DocumentProgressValue {
  let chunk: DocumentProgressValue['chunk'] = null;
  if (event.type === 'DocumentChunked') {
    const d = (event as unknown as DocumentChunked).data;
    chunk = { documentId: d.documentId, chunkIndex: d.chunkIndex, text: d.text, startOffset: d.startOffset, endOffset: d.endOffset, asOfDocument: document };
  }
  return { document, chunksStored: document.asOfChunks, chunk };
}

/**
 * An id argument: 1..200 characters, no U+0000, no unpaired surrogate (the event store refuses it as a stream id).
 * @throws BadUserInputError reason INVALID_ID (`field` names the argument)
 */
export function requireId(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_LIVE_ID_LENGTH || value.includes('\u0000') || !value.isWellFormed()) {
    throw new BadUserInputError(ContentRejectionReason.InvalidId, `${field} must be 1..${MAX_LIVE_ID_LENGTH} characters of valid Unicode without U+0000`, { field });
  }
  return value;
}
