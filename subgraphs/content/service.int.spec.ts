/**
 * The content subgraph over HTTP against a fresh PostgreSQL database, with the in-process
 * transport: ingestion from the corpus and inline text, the chunking rule end to end, typed
 * rejections with nothing stored, pagination, full-text search, the relay of public events.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInProcessTransport } from '../../broker/in-process.ts';
import type { TestDatabase } from '../../db/testing.ts';
import { requireCorpus } from '../../config/corpus.ts';
import { DEFAULT_MAX_EVENT_BYTES, type IntegrationEvent, type IntegrationTransport } from '../../eventstore/index.ts';
import { APPEND_BATCH_SIZE } from './commandHandlers.ts';
import { startContentService, type ContentService } from './service.ts';
import { startContentFixture, type ContentFixture } from './testing/contentFixture.ts';
import { eventually, mustGraphQL, postGraphQL, testLogger } from '../../federation/testing/graphqlClient.ts';
import { CHUNKING_RULE, chunkText } from './text/chunkText.ts';
import { decodeText } from './text/decodeText.ts';

/** FLOWGRAPH_CORPUS_DIR or ../shared/corpus; a missing corpus fails this file with one message. */
const CORPUS_DIR = requireCorpus();
const DOC_FIELDS = 'id title status source corpusFile sizeBytes charCount chunkCount runId stepName failure { code reason } createdAt updatedAt';

let fx: ContentFixture;
let db: TestDatabase;
let transport: IntegrationTransport;
let service: ContentService;
const published: IntegrationEvent[] = [];
const gql = <T = any>(query: string, variables?: Record<string, unknown>) => mustGraphQL<T>(service.url, query, variables);
const ingest = (variables: { title: string; text?: string | null; corpusFile?: string | null }) =>
  postGraphQL(service.url, `mutation($title: String!, $text: String, $corpusFile: String) { ingestDocument(title: $title, text: $text, corpusFile: $corpusFile) { ${DOC_FIELDS} } }`, variables);
const count = async (sql: string) => Number((await db.pool.query(sql)).rows[0].n);
const normalisedCorpusText = (file: string) => decodeText(readFileSync(path.join(CORPUS_DIR, file))).text;

/** Every chunk of a document through `Document.chunks`, page by page (100 per page). */
async function allChunks(documentId: string) {
  const chunks: { id: string; index: number; text: string; startOffset: number; endOffset: number }[] = [];
  let after: string | null = null;
  for (;;) {
    const data: any = await gql(`query($id: ID!, $after: String) { document(id: $id) { chunks(first: 100, after: $after) { totalCount edges { cursor node { id index text startOffset endOffset } } pageInfo { hasNextPage endCursor } } } }`, {
      id: documentId,
      after,
    });
    const page = data.document.chunks;
    chunks.push(...page.edges.map((e: any) => e.node));
    if (!page.pageInfo.hasNextPage) return chunks;
    after = page.pageInfo.endCursor;
  }
}

beforeAll(async () => {
  fx = await startContentFixture('content_service', [{ consumer: 'test-from-content', source: 'content', handler: async (e) => void published.push(e) }]);
  ({ db, transport, service } = fx);
});

afterAll(() => fx?.close());

describe('ingestDocument from the corpus', () => {
  let id: string;

  it('ingests sign-of-the-four.txt by corpusFile: PROCESSED, chunk count per the chunking rule', async () => {
    const result = await ingest({ title: 'The Sign of the Four', corpusFile: 'sign-of-the-four.txt' });
    expect(result.errors).toBeUndefined();
    const doc = result.data!.ingestDocument;
    id = doc.id;
    const text = normalisedCorpusText('sign-of-the-four.txt');
    const expected = chunkText(text);
    expect(doc).toMatchObject({
      title: 'The Sign of the Four',
      status: 'PROCESSED',
      source: 'CORPUS_FILE',
      corpusFile: 'sign-of-the-four.txt',
      sizeBytes: 257665,
      charCount: text.length,
      chunkCount: expected.length,
      runId: null,
      failure: null,
    });
    expect(doc.chunkCount).toBe(150);
  });

  it('serves chunks that cover the normalised text exactly (no BOM, no CR), none over 4000 characters', async () => {
    const chunks = await allChunks(id);
    const text = normalisedCorpusText('sign-of-the-four.txt');
    expect(chunks).toHaveLength(150);
    const { document } = await gql(`query($id: ID!) { document(id: $id) { chunks(first: 2) { totalCount edges { node { index } } } } }`, { id });
    expect(document.chunks).toEqual({ totalCount: 150, edges: [{ node: { index: 0 } }, { node: { index: 1 } }] });
    expect(chunks.map((c) => c.text).join('')).toBe(text);
    expect(chunks.map((c) => c.index)).toEqual(chunks.map((_, i) => i));
    expect(chunks.every((c) => c.text.length <= CHUNKING_RULE.maxChars && c.text === text.slice(c.startOffset, c.endOffset))).toBe(true);
    expect(chunks[0]!.id).toBe(`${id}:0`);
    expect(text.includes('\r') || text.startsWith('\uFEFF')).toBe(false);
  });

  it('stores one DocumentChunked event per chunk in stream document-<id>, in one transaction', async () => {
    const { rows } = await db.pool.query(
      `SELECT type, count(*)::int AS n, count(DISTINCT transaction_id)::int AS txs, max(octet_length(data::text))::int AS largest
         FROM eventstore.events WHERE stream_id = $1 GROUP BY type ORDER BY type`,
      [`document-${id}`],
    );
    expect(rows.map((r) => [r.type, r.n])).toEqual([
      ['DocumentChunked', 150],
      ['DocumentIngested', 1],
      ['DocumentProcessed', 1],
    ]);
    expect(await count(`SELECT count(DISTINCT transaction_id)::int AS n FROM eventstore.events WHERE stream_id = 'document-${id}'`)).toBe(1);
    expect(Math.max(...rows.map((r) => r.largest))).toBeLessThan(20_000);
  });

  it('finds "Sherlock Holmes" with searchChunks: ranked hits with highlighted headlines', async () => {
    const data = await gql(`{ searchChunks(query: "Sherlock Holmes", first: 5) { rank headline chunk { id index text document { id title } } } }`);
    const hits = data.searchChunks;
    expect(hits).toHaveLength(5);
    for (const hit of hits) {
      expect(hit.chunk.document.id).toBe(id);
      expect(hit.chunk.text).toMatch(/Sherlock/);
      expect(hit.headline).toMatch(/<b>Sherlock<\/b>/);
    }
    const ranks = hits.map((h: any) => h.rank);
    expect([...ranks].sort((a, b) => b - a)).toEqual(ranks);
    expect(ranks[0]).toBeGreaterThan(0);
  });

  it('search understands web syntax and stemming, and finds nothing for absent words', async () => {
    const phrase = await gql(`{ searchChunks(query: "\\"Jonathan Small\\" -Sherlock", first: 100) { chunk { text } } }`);
    expect(phrase.searchChunks.length).toBeGreaterThan(0);
    for (const hit of phrase.searchChunks) {
      expect(hit.chunk.text).toMatch(/Jonathan\s+Small/);
      expect(hit.chunk.text).not.toMatch(/Sherlock/);
    }
    const stemmed = await gql(`{ searchChunks(query: "treasures", first: 1) { chunk { text } } }`);
    expect(stemmed.searchChunks[0].chunk.text).toMatch(/treasure/i);
    expect((await gql(`{ searchChunks(query: "xylophonequux") { rank } }`)).searchChunks).toEqual([]);
  });

  it('rejects an empty search query with BAD_USER_INPUT INVALID_QUERY', async () => {
    const result = await postGraphQL(service.url, `{ searchChunks(query: "   ") { rank } }`);
    expect(result.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_QUERY' });
  });

  it('splits an 880 KB book (dracula.txt) into hundreds of chunk events, appended 50 per append, relayed one by one', async () => {
    const result = await ingest({ title: 'Dracula', corpusFile: 'dracula.txt' });
    expect(result.errors).toBeUndefined();
    const doc = result.data!.ingestDocument;
    const expected = chunkText(normalisedCorpusText('dracula.txt')).length;
    expect(doc).toMatchObject({ status: 'PROCESSED', sizeBytes: 883160, chunkCount: expected });
    expect(expected).toBe(527);
    const largest = await count(`SELECT max(octet_length(data::text))::int AS n FROM eventstore.events WHERE stream_id = 'document-${doc.id}'`);
    expect(largest).toBeLessThan(DEFAULT_MAX_EVENT_BYTES / 10);
    // The relay publishes every public event: DocumentIngested, 527 × DocumentChunked, DocumentProcessed.
    const mine = await eventually(() => {
      const events = published.filter((e) => (e.data as { documentId?: string }).documentId === doc.id);
      return events.length === expected + 2 ? events : undefined;
    });
    expect(mine[0]).toMatchObject({ source: 'content', type: 'DocumentIngested', schemaVersion: 1, data: { documentId: doc.id, title: 'Dracula', sizeBytes: 883160 } });
    expect(mine[0]!.data).not.toHaveProperty('runId');
    const chunkEvents = mine.filter((e) => e.type === 'DocumentChunked');
    expect(chunkEvents.map((e) => (e.data as { chunkIndex: number }).chunkIndex)).toEqual([...Array(expected).keys()]);
    expect(chunkEvents.every((e) => (e.data as { chunkCount: number }).chunkCount === expected)).toBe(true);
    expect(mine.at(-1)).toMatchObject({ type: 'DocumentProcessed', data: { documentId: doc.id, chunkCount: expected } });
    expect(Math.ceil((expected + 2) / APPEND_BATCH_SIZE)).toBe(11);
  });
});

describe('ingestDocument from inline text', () => {
  it('decodes a BOM and CRLF text, with the size of the input as sent', async () => {
    const text = '\uFEFFTitle line\r\n\r\nSecond paragraph, about Watson.\r\n';
    const result = await ingest({ title: '  Small  ', text });
    const doc = result.data!.ingestDocument;
    expect(doc).toMatchObject({ title: 'Small', status: 'PROCESSED', source: 'TEXT', corpusFile: null, sizeBytes: Buffer.byteLength(text), chunkCount: 1 });
    const chunks = await allChunks(doc.id);
    expect(chunks.map((c) => c.text)).toEqual(['Title line\n\nSecond paragraph, about Watson.\n']);
    expect(doc.charCount).toBe(chunks[0]!.text.length);
  });

  it('records the request metadata on the events (verified actor and role, correlation id)', async () => {
    const result = await postGraphQL(service.url, `mutation { ingestDocument(title: "Meta", text: "Some words.") { id } }`, {}, {
      identity: { subject: 'alice', role: 'operator' },
      headers: { 'x-correlation-id': 'corr-123' },
    });
    const id = result.data!.ingestDocument.id;
    const { rows } = await db.pool.query(`SELECT metadata FROM eventstore.events WHERE stream_id = $1`, [`document-${id}`]);
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row.metadata).toMatchObject({ actor: 'alice', actorRole: 'operator', correlationId: 'corr-123' });
  });
});

describe('rejected input: typed errors and nothing stored', () => {
  it.each([
    ['an empty text', 'EMPTY_DOCUMENT', 'text', { title: 'x', text: '' }],
    ['a whitespace-only text with a BOM', 'EMPTY_DOCUMENT', 'text', { title: 'x', text: '\uFEFF \r\n\t\r\n' }],
    ['a text with NUL characters', 'BINARY_CONTENT', 'text', { title: 'x', text: 'PNG\u0000\u0001\u0002' }],
    ['an unpaired surrogate', 'INVALID_UTF8', 'text', { title: 'x', text: 'bad \uD800 text' }],
    ['both text and corpusFile', 'SOURCE_REQUIRED', 'corpusFile', { title: 'x', text: 'a', corpusFile: 'dracula.txt' }],
    ['neither text nor corpusFile', 'SOURCE_REQUIRED', 'text', { title: 'x' }],
    ['a path traversal', 'INVALID_CORPUS_FILE', 'corpusFile', { title: 'x', corpusFile: '../main/package.json' }],
    ['a missing corpus file', 'CORPUS_FILE_NOT_FOUND', 'corpusFile', { title: 'x', corpusFile: 'missing.txt' }],
    ['an empty title', 'INVALID_TITLE', 'title', { title: ' ', text: 'fine text' }],
  ] as const)('rejects %s: BAD_USER_INPUT %s on %s', async (_label, reason, field, variables: { title: string; text?: string; corpusFile?: string }) => {
    const before = [await count('SELECT count(*)::int AS n FROM eventstore.events'), await count('SELECT count(*)::int AS n FROM documents'), await count('SELECT count(*)::int AS n FROM chunks')];
    const result = await ingest(variables);
    expect(result.data).toEqual({ ingestDocument: null });
    expect(result.errors).toHaveLength(1);
    expect(result.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason, field });
    expect(Object.keys(result.errors![0]!.extensions!).sort()).not.toContain('stacktrace');
    expect(JSON.stringify(result)).not.toMatch(/stack|at .*\.ts:/);
    const after = [await count('SELECT count(*)::int AS n FROM eventstore.events'), await count('SELECT count(*)::int AS n FROM documents'), await count('SELECT count(*)::int AS n FROM chunks')];
    expect(after).toEqual(before);
  });

  it('rejects binary bytes sent as a corpus file (NUL bytes) and stores nothing', async () => {
    // Not in the real corpus: the service is pointed at a directory with a binary file.
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(path.join(tmpdir(), 'content-corpus-'));
    writeFileSync(path.join(dir, 'image.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00]));
    writeFileSync(path.join(dir, 'latin1.txt'), Buffer.from([0x63, 0x61, 0x66, 0xe9]));
    const other = await startContentService({ pool: db.pool, port: 0, transport: createInProcessTransport(), logger: testLogger, corpusDir: dir });
    try {
      const before = await count('SELECT count(*)::int AS n FROM eventstore.events');
      const png = await postGraphQL(other.url, `mutation { ingestDocument(title: "img", corpusFile: "image.png") { id } }`);
      expect(png.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'BINARY_CONTENT' });
      const latin1 = await postGraphQL(other.url, `mutation { ingestDocument(title: "l1", corpusFile: "latin1.txt") { id } }`);
      expect(latin1.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_UTF8' });
      expect(await count('SELECT count(*)::int AS n FROM eventstore.events')).toBe(before);
    } finally {
      await other.close();
    }
  });
});

describe('queries', () => {
  it('document(id) is null for an unknown id; documents pages newest first with opaque cursors', async () => {
    expect((await gql(`{ document(id: "nope") { id } }`)).document).toBeNull();
    const first = await gql(`{ documents(first: 2) { edges { cursor node { id title } } pageInfo { hasNextPage endCursor } } }`);
    expect(first.documents.edges).toHaveLength(2);
    expect(first.documents.pageInfo.hasNextPage).toBe(true);
    const rest = await gql(`query($after: String) { documents(first: 100, after: $after) { edges { node { id title } } pageInfo { hasNextPage } } }`, {
      after: first.documents.pageInfo.endCursor,
    });
    const titles = [...first.documents.edges, ...rest.documents.edges].map((e: any) => e.node.title);
    expect(titles.slice(0, 2)).toEqual(['Meta', 'Small']);
    expect(titles).toContain('The Sign of the Four');
    expect(rest.documents.pageInfo.hasNextPage).toBe(false);
  });

  it('rejects a forged cursor with INVALID_CURSOR and an out-of-range first with INVALID_PAGE_SIZE', async () => {
    const forged = await postGraphQL(service.url, `{ documents(after: "bm9wZQ") { edges { cursor } } }`);
    expect(forged.errors![0]!.extensions).toMatchObject({ code: 'INVALID_CURSOR' });
    const outOfRange = await postGraphQL(service.url, `query($a: String) { documents(first: 1) { edges { node { chunks(after: $a) { edges { cursor } } } } } }`, {
      a: Buffer.from('chunk:2147483648').toString('base64url'),
    });
    expect(outOfRange.errors![0]!.extensions).toMatchObject({ code: 'INVALID_CURSOR' });
    const big = await postGraphQL(service.url, `{ documents(first: 1000) { edges { cursor } } }`);
    expect(big.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'INVALID_PAGE_SIZE' });
  });

  it('resolves Document references for the gateway (_entities)', async () => {
    const { documents } = await gql(`{ documents(first: 1) { edges { node { id title } } } }`);
    const node = documents.edges[0].node;
    const data = await gql(`query($r: [_Any!]!) { _entities(representations: $r) { ... on Document { id title chunkCount } } }`, {
      r: [{ __typename: 'Document', id: node.id }],
    });
    expect(data._entities[0]).toMatchObject({ id: node.id, title: node.title });
  });
});

describe('a missing corpus directory', () => {
  it('the service still starts, warns naming the directory and FLOWGRAPH_CORPUS_DIR, and ingests inline text', async () => {
    const warnings: { obj: object; msg: string }[] = [];
    const logger = { ...testLogger, warn: (obj: object, msg: string) => void warnings.push({ obj, msg }) };
    const corpusDir = path.join(CORPUS_DIR, 'no-such-subdirectory');
    const other = await startContentService({ pool: db.pool, port: 0, transport: createInProcessTransport(), logger, corpusDir });
    try {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]!.obj).toEqual({ corpusDir, problem: 'does not exist' });
      expect(warnings[0]!.msg).toContain(`the corpus directory ${corpusDir} does not exist`);
      expect(warnings[0]!.msg).toContain('FLOWGRAPH_CORPUS_DIR');
      const byFile = await postGraphQL(other.url, `mutation { ingestDocument(title: "x", corpusFile: "dracula.txt") { id } }`);
      expect(byFile.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'CORPUS_FILE_NOT_FOUND' });
      const byText = await mustGraphQL<any>(other.url, `mutation { ingestDocument(title: "Inline", text: "Still works.") { status chunkCount } }`);
      expect(byText.ingestDocument).toEqual({ status: 'PROCESSED', chunkCount: 1 });
    } finally {
      await other.close();
    }
  });
});
