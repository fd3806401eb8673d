/**
 * Extraction of a whole document: entities per chunk (`extractEntities`), then document-level
 * resolution with generic rules (README.md, "Extraction rules"):
 *
 * 5. one kind per name in a document: the kind compromise gave it most often (ties: PERSON,
 *    PLACE, ORGANIZATION), compared case-insensitively;
 * 6. a one-word PERSON name that is the first or last word of exactly one longer PERSON name of
 *    the same document is that person ("Holmes" → "Sherlock Holmes" when no other "… Holmes");
 * 7. relations are co-occurrences: every pair of distinct entities mentioned in the same chunk,
 *    weight 1 per chunk (a document's relation weight = the number of chunks they share).
 */
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { entityId } from './entityId.ts';
import { ENTITY_KINDS, extractEntities, type ChunkEntity, type EntityKind } from './extractEntities.ts';

/** An entity of a document after resolution. */
export interface DocumentEntity {
  id: string;
  name: string;
  kind: EntityKind;
  /** Occurrences in the whole document. */
  mentionCount: number;
}

/** What one chunk contributes. */
export interface ChunkExtraction {
  chunkIndex: number;
  /** Entities mentioned in the chunk, with occurrence counts (≥ 1), by entity id. */
  mentions: { entityId: string; count: number }[];
  /** Co-occurrence pairs of the chunk; `fromEntityId < toEntityId`; weight 1. */
  relations: { fromEntityId: string; toEntityId: string; weight: number }[];
}

/** Result of `extractDocument`. */
export interface DocumentExtraction {
  /** Entities by descending mention count, then name. */
  entities: DocumentEntity[];
  /** Chunks in index order (chunks without entities included, with empty lists). */
  chunks: ChunkExtraction[];
  /** Distinct related pairs in the document. */
  relationCount: number;
}

/** Options of `extractDocument`. */
export interface ExtractDocumentOptions {
  /**
   * Yield to the event loop between chunks (compromise is synchronous: ~40 ms per 2000-character
   * chunk), so that a service stays responsive while it extracts a book. @default true
   */
  yieldBetweenChunks?: boolean;
}

/**
 * Extracts the entities and co-occurrence relations of a document given as its chunks.
 * Deterministic: the same chunks give the same result.
 */
export async function extractDocument(
  chunks: readonly { chunkIndex: number; text: string }[],
  options: ExtractDocumentOptions = {},
): Promise<DocumentExtraction> {
  const ordered = [...chunks].sort((a, b) => a.chunkIndex - b.chunkIndex);
  const raw: { chunkIndex: number; found: ChunkEntity[] }[] = [];
  for (const chunk of ordered) {
    raw.push({ chunkIndex: chunk.chunkIndex, found: extractEntities(chunk.text) });
    if (options.yieldBetweenChunks ?? true) await yieldToEventLoop();
  }
  return resolveDocument(raw);
}

/** Rules 5–7 on per-chunk raw extractions. Pure; exported for the unit tests. */
export function resolveDocument(raw: readonly { chunkIndex: number; found: readonly ChunkEntity[] }[]): DocumentExtraction {
  // Rule 5: one kind per case-insensitive name; the display name is the most frequent spelling.
  const byName = new Map<string, { kinds: Map<EntityKind, number>; spellings: Map<string, number> }>();
  for (const { found } of raw) {
    for (const e of found) {
      const key = e.name.toLowerCase();
      let entry = byName.get(key);
      if (!entry) byName.set(key, (entry = { kinds: new Map(), spellings: new Map() }));
      entry.kinds.set(e.kind, (entry.kinds.get(e.kind) ?? 0) + e.count);
      entry.spellings.set(e.name, (entry.spellings.get(e.name) ?? 0) + e.count);
    }
  }
  const canonical = new Map<string, { name: string; kind: EntityKind }>();
  for (const [key, entry] of byName) {
    const kind = ENTITY_KINDS.reduce((best, k) => ((entry.kinds.get(k) ?? 0) > (entry.kinds.get(best) ?? 0) ? k : best), ENTITY_KINDS[0]!);
    const name = [...entry.spellings].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))[0]![0];
    canonical.set(key, { name, kind });
  }
  // Rule 6: one-word person names that name exactly one longer person name.
  const longPersons = [...canonical.entries()].filter(([key, c]) => c.kind === 'PERSON' && key.includes(' '));
  for (const [key, c] of canonical) {
    if (c.kind !== 'PERSON' || key.includes(' ')) continue;
    const owners = longPersons.filter(([longKey]) => {
      const words = longKey.split(' ');
      return words[0] === key || words[words.length - 1] === key;
    });
    if (owners.length === 1) canonical.set(key, owners[0]![1]);
  }

  const entities = new Map<string, DocumentEntity>();
  const chunks: ChunkExtraction[] = [];
  const pairs = new Set<string>();
  for (const { chunkIndex, found } of raw) {
    const counts = new Map<string, number>();
    for (const e of found) {
      const c = canonical.get(e.name.toLowerCase())!;
      const id = entityId(c.kind, c.name);
      counts.set(id, (counts.get(id) ?? 0) + e.count);
      const entity = entities.get(id);
      if (entity) entity.mentionCount += e.count;
      else entities.set(id, { id, name: c.name, kind: c.kind, mentionCount: e.count });
    }
    const ids = [...counts.keys()].sort();
    const relations: ChunkExtraction['relations'] = [];
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        relations.push({ fromEntityId: ids[i]!, toEntityId: ids[j]!, weight: 1 });
        pairs.add(`${ids[i]} ${ids[j]}`);
      }
    }
    chunks.push({ chunkIndex, mentions: [...counts].map(([entityId, count]) => ({ entityId, count })), relations });
  }
  return {
    entities: [...entities.values()].sort((a, b) => b.mentionCount - a.mentionCount || a.name.localeCompare(b.name)),
    chunks,
    relationCount: pairs.size,
  };
}
