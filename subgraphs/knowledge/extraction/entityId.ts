/**
 * Entity identity: an entity's id is derived from its kind and its name compared
 * case-insensitively, so that every process that discovers the same entity computes the same
 * id and their `EntityDiscovered` appends meet on stream `entity-<id>` with expected version
 * `no_stream` (one wins, the others see it exists).
 */
import { createHash } from 'node:crypto';
import type { EntityKind } from './extractEntities.ts';

/**
 * `entityId('PERSON', 'Sherlock Holmes')`: a UUID-shaped string (8-4-4-4-12 lower-case hex) made
 * of the first 128 bits of sha256(`<kind>:<name in lower case, whitespace collapsed>`).
 */
export function entityId(kind: EntityKind, name: string): string {
  const key = `${kind}:${name.trim().replace(/\s+/g, ' ').toLowerCase()}`;
  const hex = createHash('sha256').update(key, 'utf8').digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** Stream of one entity: `entity-<id>` (holds its `EntityDiscovered`). */
export const entityStreamId = (id: string): string => `entity-${id}`;
