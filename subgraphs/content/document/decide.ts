/** Decisions of the document aggregate. Pure: the clock and the input bytes arrive in the command. */
import { chunkText } from '../text/chunkText.ts';
import { decodeText } from '../text/decodeText.ts';
import type { DocumentCommand } from './commands.ts';
import type { DocumentEvent } from './events.ts';
import type { DocumentState } from './evolve.ts';
import { validateTitle } from './validate.ts';

/**
 * Turns a command into events.
 * - IngestDocument on a new stream → [DocumentIngested, DocumentChunked × chunkCount (index
 *   order), DocumentProcessed]; [] when the document already exists (a retried command).
 * - RecordIngestionFailure on a new stream → [DocumentFailed]; [] when the stream exists.
 * @throws BadUserInputError (nothing to append) for IngestDocument with an invalid title
 *   (INVALID_TITLE) or text (DOCUMENT_TOO_LARGE, BINARY_CONTENT, INVALID_UTF8, EMPTY_DOCUMENT:
 *   see text/decodeText.ts)
 */
export function decideDocument(command: DocumentCommand, state: DocumentState): DocumentEvent[] {
  switch (command.type) {
    case 'IngestDocument': {
      const title = validateTitle(command.title);
      const { text, sizeBytes } = decodeText(command.input, command.source === 'CORPUS_FILE' ? 'corpusFile' : 'text');
      if (state.status !== 'NONE') return [];
      const chunks = chunkText(text);
      const { documentId } = command;
      const at = command.now.toISOString();
      return [
        {
          type: 'DocumentIngested',
          data: {
            documentId,
            title,
            source: command.source,
            corpusFile: command.corpusFile,
            sizeBytes,
            charCount: text.length,
            chunkCount: chunks.length,
            runId: command.step?.runId ?? null,
            stepName: command.step?.stepName ?? null,
            ingestedAt: at,
          },
        },
        ...chunks.map((c): DocumentEvent => ({
          type: 'DocumentChunked',
          data: { documentId, chunkIndex: c.index, chunkCount: chunks.length, text: c.text, startOffset: c.startOffset, endOffset: c.endOffset },
        })),
        {
          type: 'DocumentProcessed',
          data: { documentId, chunkCount: chunks.length, runId: command.step?.runId ?? null, stepName: command.step?.stepName ?? null, processedAt: at },
        },
      ];
    }
    case 'RecordIngestionFailure': {
      if (state.status !== 'NONE') return [];
      return [
        {
          type: 'DocumentFailed',
          data: {
            documentId: command.documentId,
            title: command.title,
            source: command.source,
            corpusFile: command.corpusFile,
            sizeBytes: command.sizeBytes,
            runId: command.step.runId,
            stepName: command.step.stepName,
            code: command.code,
            reason: command.reason,
            failedAt: command.now.toISOString(),
          },
        },
      ];
    }
  }
}
