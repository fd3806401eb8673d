import { describe, expect, it } from 'vitest';
import { BadUserInputError } from '../errors.ts';
import type { IngestDocument, RecordIngestionFailure } from './commands.ts';
import { decideDocument } from './decide.ts';
import { documentDecider } from './decider.ts';
import type { DocumentEvent } from './events.ts';

const now = new Date('2025-03-01T00:00:00.000Z');
const decide = (command: IngestDocument | RecordIngestionFailure, given: DocumentEvent[] = []): DocumentEvent[] =>
  decideDocument(command, given.reduce(documentDecider.evolve, documentDecider.initialState()));
const ingest = (patch: Partial<IngestDocument> = {}): IngestDocument => ({
  type: 'IngestDocument',
  documentId: 'd1',
  title: ' A title ',
  input: '\uFEFFFirst paragraph.\r\n\r\nSecond one.\r\n',
  source: 'TEXT',
  corpusFile: null,
  step: null,
  now,
  ...patch,
});

describe('document decider', () => {
  it('ingests a text: DocumentIngested, one DocumentChunked per chunk, DocumentProcessed', () => {
    const events = decide(ingest());
    expect(events).toEqual([
      {
        type: 'DocumentIngested',
        data: {
          documentId: 'd1',
          title: 'A title',
          source: 'TEXT',
          corpusFile: null,
          sizeBytes: 36,
          charCount: 30,
          chunkCount: 1,
          runId: null,
          stepName: null,
          ingestedAt: now.toISOString(),
        },
      },
      { type: 'DocumentChunked', data: { documentId: 'd1', chunkIndex: 0, chunkCount: 1, text: 'First paragraph.\n\nSecond one.\n', startOffset: 0, endOffset: 30 } },
      { type: 'DocumentProcessed', data: { documentId: 'd1', chunkCount: 1, runId: null, stepName: null, processedAt: now.toISOString() } },
    ]);
  });

  it('splits a long text into many chunk events, each ≤ 4000 characters, with the step reference', () => {
    const text = Array.from({ length: 200 }, (_, i) => `Paragraph ${i} ${'lorem ipsum '.repeat(20)}`).join('\n\n');
    const events = decide(ingest({ input: text, step: { runId: 'r1', stepName: 'ingest' } }));
    const chunked = events.filter((e) => e.type === 'DocumentChunked');
    expect(chunked.length).toBeGreaterThan(10);
    expect(chunked.every((e) => e.type === 'DocumentChunked' && e.data.text.length <= 4000 && e.data.chunkCount === chunked.length)).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'DocumentProcessed', data: { runId: 'r1', stepName: 'ingest', chunkCount: chunked.length } });
  });

  it('does nothing for a document that already exists (a retried command)', () => {
    const first = decide(ingest());
    expect(decide(ingest(), first)).toEqual([]);
  });

  it.each([
    ['an empty title', { title: '   ' }, 'INVALID_TITLE'],
    ['an empty text', { input: '\r\n \r\n' }, 'EMPTY_DOCUMENT'],
    ['binary bytes', { input: new Uint8Array([1, 0, 2]) }, 'BINARY_CONTENT'],
    ['invalid UTF-8', { input: new Uint8Array([0xff, 0xfe, 0x41]) }, 'INVALID_UTF8'],
  ])('rejects %s with BAD_USER_INPUT %s', (_label, patch, reason) => {
    let caught: unknown;
    try {
      decide(ingest(patch as Partial<IngestDocument>));
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(BadUserInputError);
    expect((caught as BadUserInputError).reason).toBe(reason);
  });

  it('records a rejected saga ingestion as DocumentFailed', () => {
    const failure: RecordIngestionFailure = {
      type: 'RecordIngestionFailure',
      documentId: 'd2',
      title: 'x.txt',
      source: 'CORPUS_FILE',
      corpusFile: 'x.txt',
      sizeBytes: 0,
      step: { runId: 'r1', stepName: 'ingest' },
      code: 'CORPUS_FILE_NOT_FOUND',
      reason: 'The corpus has no file named "x.txt"',
      now,
    };
    expect(decide(failure)).toEqual([
      {
        type: 'DocumentFailed',
        data: {
          documentId: 'd2',
          title: 'x.txt',
          source: 'CORPUS_FILE',
          corpusFile: 'x.txt',
          sizeBytes: 0,
          runId: 'r1',
          stepName: 'ingest',
          code: 'CORPUS_FILE_NOT_FOUND',
          reason: 'The corpus has no file named "x.txt"',
          failedAt: now.toISOString(),
        },
      },
    ]);
  });
});
