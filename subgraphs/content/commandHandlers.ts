/**
 * The write side of the content subgraph: turns requests into document commands, decides them
 * with the document decider and appends the events in one transaction, in batches of
 * APPEND_BATCH_SIZE events per append (an 880 KB book is ~530 DocumentChunked events: 11
 * appends to `document-<id>`, one commit). Inline projections make the result readable at once.
 */
import { randomUUID } from 'node:crypto';
import type { AppendResult, EventMetadata, EventStore, NewEvent } from '../../eventstore/index.ts';
import type { EventStoreTransaction } from '../../eventstore/index.ts';
import { readCorpusFile } from './corpus/readCorpusFile.ts';
import { decideDocument } from './document/decide.ts';
import { documentStreamId, type DocumentEvent } from './document/events.ts';
import { initialDocumentState } from './document/evolve.ts';
import { BadUserInputError, ContentRejectionReason } from './errors.ts';

/** Events per `appendToStream` call when a document's events are stored. */
export const APPEND_BATCH_SIZE = 50;

/** Metadata of the request that causes the events (correlation, causation, actor, traceparent). */
export type RequestMetadata = EventMetadata;

/** Arguments of `ingestDocument`: exactly one of `text` and `corpusFile`. */
export interface IngestDocumentInput {
  title: string;
  text?: string | null;
  corpusFile?: string | null;
}

/** What the resolvers call. */
export interface CommandHandlers {
  /**
   * Ingests a document (see document/decide.ts and text/decodeText.ts for the rules).
   * @returns the new document's id
   * @throws BadUserInputError (nothing stored): SOURCE_REQUIRED when not exactly one of
   *   `text`/`corpusFile` is given; the reasons of readCorpusFile and decideDocument
   */
  ingestDocument(input: IngestDocumentInput, meta: RequestMetadata): Promise<string>;
}

/** Creates the command handlers on `store`. `corpusDir` is where `corpusFile` names are looked up. */
export function createCommandHandlers(store: EventStore, options: { corpusDir: string; now?: () => Date }): CommandHandlers {
  const now = options.now ?? (() => new Date());
  return {
    async ingestDocument(input, meta) {
      const hasText = input.text !== null && input.text !== undefined;
      const hasFile = input.corpusFile !== null && input.corpusFile !== undefined;
      if (hasText === hasFile) {
        throw new BadUserInputError(ContentRejectionReason.SourceRequired, 'Give exactly one of `text` and `corpusFile`', { field: hasText ? 'corpusFile' : 'text' });
      }
      const bytes = hasFile ? await readCorpusFile(options.corpusDir, input.corpusFile!) : input.text!;
      const documentId = randomUUID();
      const events = decideDocument(
        {
          type: 'IngestDocument',
          documentId,
          title: input.title,
          input: bytes,
          source: hasFile ? 'CORPUS_FILE' : 'TEXT',
          corpusFile: hasFile ? input.corpusFile! : null,
          step: null,
          now: now(),
        },
        initialDocumentState(),
      );
      await store.transaction((tx) => appendDocumentEvents(tx, documentId, events, meta));
      return documentId;
    },
  };
}

/**
 * Appends a new document's events to `document-<documentId>` inside `tx`, APPEND_BATCH_SIZE
 * events per append, each append expecting the version the previous one left (the first:
 * `no_stream`).
 * @throws WrongExpectedVersionError when the stream already exists; the store's validation errors
 */
export async function appendDocumentEvents(
  tx: EventStoreTransaction,
  documentId: string,
  events: readonly DocumentEvent[],
  metadata: EventMetadata,
): Promise<void> {
  const streamId = documentStreamId(documentId);
  let expectedVersion: 'no_stream' | number = 'no_stream';
  for (let i = 0; i < events.length; i += APPEND_BATCH_SIZE) {
    const batch = events.slice(i, i + APPEND_BATCH_SIZE) as NewEvent[];
    const result: AppendResult = await tx.appendToStream(streamId, batch, { expectedVersion, metadata });
    expectedVersion = result.nextExpectedVersion;
  }
}
