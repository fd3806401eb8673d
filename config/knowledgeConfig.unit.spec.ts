import { availableParallelism } from 'node:os';
import { describe, expect, it } from 'vitest';
import { parseKnowledgeSettings } from './knowledgeConfig.ts';

const cores = availableParallelism();

describe('parseKnowledgeSettings', () => {
  it('defaults the chunk wait to 120000 ms (2 min) and the extraction workers to the cores', () => {
    expect(parseKnowledgeSettings({})).toEqual({ chunkWaitMs: 120_000, extractionWorkers: cores });
    expect(parseKnowledgeSettings({ KNOWLEDGE_CHUNK_WAIT_MS: '', KNOWLEDGE_EXTRACTION_WORKERS: '' })).toEqual({ chunkWaitMs: 120_000, extractionWorkers: cores });
  });

  it('reads KNOWLEDGE_CHUNK_WAIT_MS and KNOWLEDGE_EXTRACTION_WORKERS', () => {
    expect(parseKnowledgeSettings({ KNOWLEDGE_CHUNK_WAIT_MS: '5000' })).toEqual({ chunkWaitMs: 5000, extractionWorkers: cores });
    expect(parseKnowledgeSettings({ KNOWLEDGE_EXTRACTION_WORKERS: '3' })).toEqual({ chunkWaitMs: 120_000, extractionWorkers: 3 });
  });

  it.each([
    ['KNOWLEDGE_CHUNK_WAIT_MS', 'abc', 'expected number'],
    ['KNOWLEDGE_CHUNK_WAIT_MS', '0', 'must be at least 100 ms'],
    ['KNOWLEDGE_CHUNK_WAIT_MS', '1.5', 'expected int'],
    ['KNOWLEDGE_CHUNK_WAIT_MS', '86400001', 'must be at most 86400000 ms (24 h)'],
    ['KNOWLEDGE_EXTRACTION_WORKERS', 'many', 'expected number'],
    ['KNOWLEDGE_EXTRACTION_WORKERS', '0', 'must be at least 1'],
    ['KNOWLEDGE_EXTRACTION_WORKERS', '-2', 'must be at least 1'],
    ['KNOWLEDGE_EXTRACTION_WORKERS', '2.5', 'expected int'],
    ['KNOWLEDGE_EXTRACTION_WORKERS', '65', 'must be at most 64'],
  ])('fails fast on %s=%j, naming the variable, the rule and the value', (name, value, rule) => {
    expect(() => parseKnowledgeSettings({ [name]: value })).toThrow(`Invalid knowledge configuration: ${name}`);
    expect(() => parseKnowledgeSettings({ [name]: value })).toThrow(rule);
    expect(() => parseKnowledgeSettings({ [name]: value })).toThrow(`(got ${JSON.stringify(value)})`);
  });
});
