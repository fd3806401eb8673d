/**
 * Extraction on real text from the shared corpus (read from /work/shared/corpus, not pasted):
 * the NLP package finds the people, places and organisations; the generic normalisation rules
 * hold; document-level resolution merges one-word names and relates co-occurring entities.
 */
import { describe, expect, it } from 'vitest';
import { chunkText, readCorpusFile } from '../testing/chunkText.ts';
import { entityId } from './entityId.ts';
import { blankHeadings, extractEntities, normaliseWord } from './extractEntities.ts';
import { extractDocument, resolveDocument } from './extractDocument.ts';

const book = readCorpusFile('sign-of-the-four.txt');
/** Chapter I of the book: from its first "Chapter I" heading, 20 000 characters. */
const chapterOne = book.slice(book.indexOf('Chapter I\n'), book.indexOf('Chapter I\n') + 20_000);

describe('extractEntities on a corpus excerpt', () => {
  const chunks = chunkText(chapterOne);
  const found = chunks.flatMap((c) => extractEntities(c.text));

  it('finds people, places with clean names', () => {
    expect(chunks.length).toBeGreaterThanOrEqual(10);
    const people = new Set(found.filter((e) => e.kind === 'PERSON').map((e) => e.name));
    expect(people.has('Sherlock Holmes')).toBe(true);
    expect(found.some((e) => e.kind === 'PLACE')).toBe(true);
    for (const e of found) {
      expect(e.count).toBeGreaterThanOrEqual(1);
      // rules 1–4: no honorific first, no possessive, no punctuation, every word capitalised
      expect(e.name).not.toMatch(/^(Mr|Mrs|Dr|Miss)\b/);
      expect(e.name).not.toMatch(/['’]s$|[,;:!?"]/);
      for (const word of e.name.split(' ')) expect(word).toMatch(/^\p{Lu}/u);
    }
  });

  it('is deterministic', () => {
    expect(extractEntities(chunks[0]!.text)).toEqual(extractEntities(chunks[0]!.text));
  });
});

describe('normalisation rules', () => {
  it('trims punctuation and possessives and title-cases ALL CAPS', () => {
    expect(normaliseWord("Holmes's")).toBe('Holmes');
    expect(normaliseWord('"Watson,')).toBe('Watson');
    expect(normaliseWord('HOLMES')).toBe('Holmes');
    expect(normaliseWord('St.')).toBe('St.');
  });

  it('blanks heading lines without moving offsets', () => {
    const text = 'Chapter VI\n\nSherlock Holmes Gives a Demonstration\n\nHolmes was silent for a while.';
    const blanked = blankHeadings(text);
    expect(blanked).toHaveLength(text.length);
    expect(blanked).not.toContain('Gives');
    expect(blanked).toContain('Holmes was silent');
  });
});

describe('resolveDocument', () => {
  it('merges a one-word person into the only longer name it belongs to, and relates co-occurring entities', () => {
    const result = resolveDocument([
      { chunkIndex: 0, found: [{ name: 'Ada Lovelace', kind: 'PERSON', count: 1 }, { name: 'London', kind: 'PLACE', count: 2 }] },
      { chunkIndex: 1, found: [{ name: 'Lovelace', kind: 'PERSON', count: 3 }, { name: 'London', kind: 'PERSON', count: 1 }] },
    ]);
    const ada = entityId('PERSON', 'Ada Lovelace');
    const london = entityId('PLACE', 'London');
    expect(result.entities).toEqual([
      { id: ada, name: 'Ada Lovelace', kind: 'PERSON', mentionCount: 4 },
      { id: london, name: 'London', kind: 'PLACE', mentionCount: 3 },
    ]);
    expect(result.relationCount).toBe(1);
    const pair = [ada, london].sort();
    expect(result.chunks[1]!.relations).toEqual([{ fromEntityId: pair[0], toEntityId: pair[1], weight: 1 }]);
  });

  it('keeps an ambiguous one-word name on its own', () => {
    const result = resolveDocument([
      { chunkIndex: 0, found: [{ name: 'Ann Smith', kind: 'PERSON', count: 1 }, { name: 'Bob Smith', kind: 'PERSON', count: 1 }, { name: 'Smith', kind: 'PERSON', count: 1 }] },
    ]);
    expect(result.entities.map((e) => e.name).sort()).toEqual(['Ann Smith', 'Bob Smith', 'Smith']);
    expect(result.relationCount).toBe(3);
  });

  it('entity ids depend on kind and case-insensitive name only', () => {
    expect(entityId('PERSON', 'Sherlock  Holmes')).toBe(entityId('PERSON', 'sherlock holmes'));
    expect(entityId('PERSON', 'London')).not.toBe(entityId('PLACE', 'London'));
    expect(entityId('PERSON', 'x')).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  });
});

describe('extractDocument on a whole corpus file', () => {
  it('relates Sherlock Holmes and Watson in sign-of-the-four.txt', async () => {
    const result = await extractDocument(chunkText(book));
    const holmes = result.entities.find((e) => e.name === 'Sherlock Holmes' && e.kind === 'PERSON');
    const watson = result.entities.find((e) => /Watson/.test(e.name) && e.kind === 'PERSON');
    expect(holmes).toBeDefined();
    expect(watson).toBeDefined();
    expect(result.entities[0]).toBe(holmes); // the most mentioned
    const pair = [holmes!.id, watson!.id].sort();
    const shared = result.chunks.filter((c) => c.relations.some((r) => r.fromEntityId === pair[0] && r.toEntityId === pair[1]));
    expect(shared.length).toBeGreaterThanOrEqual(5);
  });
});
