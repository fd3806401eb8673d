/**
 * Named-entity extraction of one chunk of English text with `compromise` (its lexicon and
 * tagger ship inside the npm package: no model is downloaded). The package decides what is a
 * person, a place or an organisation (`people()`, `places()`, `organizations()`); this file
 * only normalises the spans it returns, with generic rules (README.md, "Extraction rules"):
 *
 * 0. heading lines are not analysed: a paragraph of one line, at most 80 characters, whose
 *    words of 4+ letters all start upper-case ("Sherlock Holmes Gives a Demonstration");
 * 1. leading honorifics are dropped: terms compromise tags `#Honorific` in context, or whose word
 *    compromise's lexicon tags `#Honorific` on its own ("Dr" is sometimes a first name in
 *    context): "Mr. Sherlock Holmes" → "Sherlock Holmes";
 * 1b. leading and trailing closed-class words (compromise's lexicon tags the lower-case word on
 *    its own as a conjunction, preposition, determiner or pronoun: "And", "We") are dropped;
 * 2. possessives are trimmed: "Holmes's" → "Holmes";
 * 3. punctuation around words is dropped and ALL-CAPS words are title-cased ("HOLMES" → "Holmes");
 * 4. a span is kept only when every remaining word starts with an upper-case letter and is made
 *    of letters (plus inner `'`, `-`, `.`), which drops lower-case junk such as "sir" or "o'clock".
 */
import nlp from 'compromise';

/** Kinds of entities, as in the public events (`EntityDiscovered.kind`). */
export type EntityKind = 'PERSON' | 'PLACE' | 'ORGANIZATION';
/** Every kind, in tie-break order (README.md, "Extraction rules"). */
export const ENTITY_KINDS: readonly EntityKind[] = ['PERSON', 'PLACE', 'ORGANIZATION'];

/** One distinct (name, kind) found in a chunk. */
export interface ChunkEntity {
  /** Normalised display name, e.g. `Sherlock Holmes`. */
  name: string;
  kind: EntityKind;
  /** Occurrences in the chunk, ≥ 1. */
  count: number;
}

/** A term as compromise's `termList()` returns it (the fields used here). */
interface Term {
  text: string;
  tags: Set<string>;
}
interface Matches {
  forEach(callback: (match: { termList(): Term[] }) => void): void;
}

const WORD = /^\p{Lu}[\p{L}'’.-]*$/u;
const POSSESSIVE = /['’]s?$/u;
/** Longest name kept, in characters (longer spans are tagger run-ons). */
export const MAX_NAME_LENGTH = 80;

/** Normalises one word: trims punctuation around it and a possessive, title-cases ALL CAPS. `''` when nothing is left. */
export function normaliseWord(raw: string): string {
  let word = raw.replace(/^[^\p{L}]+/u, '').replace(/[^\p{L}.'’]+$/u, '');
  word = word.replace(/\.+$/u, (dots) => (word.length - dots.length <= 2 ? dots.slice(0, 1) : ''));
  if (POSSESSIVE.test(word) && word.length > 2) word = word.replace(POSSESSIVE, '');
  if (word.length > 1 && word === word.toUpperCase() && /\p{Lu}{2}/u.test(word)) word = word[0] + word.slice(1).toLowerCase();
  return word;
}

/**
 * The normalised name of a span of terms, or `undefined` when the rules above reject it.
 * Exported for the unit tests.
 */
export function normaliseSpan(terms: readonly Term[]): string | undefined {
  let start = 0;
  let end = terms.length;
  const honorific = (t: Term) => t.tags.has('Honorific') || lexiconHas(t.text, 'Honorific');
  while (start < end && (honorific(terms[start]!) || closedClass(terms[start]!.text))) start++;
  while (end > start && closedClass(terms[end - 1]!.text)) end--;
  const words: string[] = [];
  for (const term of terms.slice(start, end)) {
    const word = normaliseWord(term.text);
    if (word === '') continue;
    if (!WORD.test(word)) return undefined;
    words.push(word);
  }
  const name = words.join(' ');
  if (name.replace(/[^\p{L}]/gu, '').length < 2 || name.length > MAX_NAME_LENGTH) return undefined;
  return name;
}

const lexiconCache = new Map<string, Set<string>>();
/** Tags compromise gives `word` alone, lower-cased (its lexicon's view of the word). Cached. */
function lexiconTags(word: string): Set<string> {
  const key = word.toLowerCase().replace(/[^\p{L}'’-]/gu, '');
  let tags = lexiconCache.get(key);
  if (!tags) {
    tags = new Set(key === '' ? [] : ((nlp(key).termList()[0] as Term | undefined)?.tags ?? []));
    if (lexiconCache.size < 10_000) lexiconCache.set(key, tags);
  }
  return tags;
}
const lexiconHas = (word: string, tag: string) => lexiconTags(word).has(tag);
const CLOSED_CLASS = ['Conjunction', 'Preposition', 'Determiner', 'Pronoun'];
const closedClass = (word: string) => CLOSED_CLASS.some((tag) => lexiconHas(word, tag));

/** Longest line treated as a heading, in characters. */
export const MAX_HEADING_LENGTH = 80;

/** Rule 0: blanks heading lines out of `text` (same length, so offsets keep their meaning). */
export function blankHeadings(text: string): string {
  return text.replace(/(^|\n\n)([^\n]+)(?=\n\n|$)/g, (whole, lead: string, line: string) => {
    const trimmed = line.trim();
    if (trimmed.length === 0 || trimmed.length > MAX_HEADING_LENGTH) return whole;
    const long = trimmed.split(/\s+/).map((w) => w.replace(/[^\p{L}]/gu, '')).filter((w) => w.length >= 4);
    if (long.length === 0 || !long.every((w) => /^\p{Lu}/u.test(w))) return whole;
    return lead + ' '.repeat(line.length);
  });
}

/**
 * Extracts the people, places and organisations of `text` (one chunk, any length; ~2000
 * characters takes ~40 ms on this machine). Pure and deterministic.
 * @returns distinct (name, kind) pairs with their counts: people, then places, then organisations, each in order of first appearance
 */
export function extractEntities(text: string): ChunkEntity[] {
  const doc = nlp(blankHeadings(text));
  const found = new Map<string, ChunkEntity>();
  const collect = (matches: Matches, kind: EntityKind) =>
    matches.forEach((match) => {
      const name = normaliseSpan(match.termList());
      if (name === undefined) return;
      const key = `${kind}\u0000${name}`;
      const seen = found.get(key);
      if (seen) seen.count++;
      else found.set(key, { name, kind, count: 1 });
    });
  collect(doc.people() as unknown as Matches, 'PERSON');
  collect(doc.places() as unknown as Matches, 'PLACE');
  collect(doc.organizations() as unknown as Matches, 'ORGANIZATION');
  return [...found.values()];
}
