import { describe, expect, it } from 'vitest';
import { parseKnowledgeSettings } from './knowledgeConfig.ts';

describe('parseKnowledgeSettings', () => {
  it('defaults the chunk wait to 120000 ms (2 min)', () => {
    expect(parseKnowledgeSettings({})).toEqual({ chunkWaitMs: 120_000 });
    expect(parseKnowledgeSettings({ KNOWLEDGE_CHUNK_WAIT_MS: '' })).toEqual({ chunkWaitMs: 120_000 });
  });

  it('reads KNOWLEDGE_CHUNK_WAIT_MS', () => {
    expect(parseKnowledgeSettings({ KNOWLEDGE_CHUNK_WAIT_MS: '5000' })).toEqual({ chunkWaitMs: 5000 });
  });

  it.each([
    ['abc', 'expected number'],
    ['0', 'must be at least 100 ms'],
    ['1.5', 'expected int'],
    ['86400001', 'must be at most 86400000 ms (24 h)'],
  ])('fails fast on %j, naming the variable, the rule and the value', (value, rule) => {
    expect(() => parseKnowledgeSettings({ KNOWLEDGE_CHUNK_WAIT_MS: value })).toThrow(`Invalid knowledge configuration: KNOWLEDGE_CHUNK_WAIT_MS`);
    expect(() => parseKnowledgeSettings({ KNOWLEDGE_CHUNK_WAIT_MS: value })).toThrow(rule);
    expect(() => parseKnowledgeSettings({ KNOWLEDGE_CHUNK_WAIT_MS: value })).toThrow(`(got ${JSON.stringify(value)})`);
  });
});
