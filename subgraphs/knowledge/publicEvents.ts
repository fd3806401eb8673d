/**
 * The knowledge service's integration events (issue-3 contract, schema version 1): what other
 * services may depend on. Published by the relay (`startRelay`) to subjects
 * `knowledge.<EventType>`. `ExtractionRequested` and `ExtractionCancelled` stay private.
 */
import { z } from 'zod';
import type { PublicEvents } from '../../eventstore/index.ts';

/** Name of the service: the `source` of its integration events. */
export const KNOWLEDGE_SOURCE = 'knowledge';

const entityKind = z.enum(['PERSON', 'PLACE', 'ORGANIZATION']);
const id = z.string().min(1);

/** Public payload schemas by event type. */
export const knowledgePublicEvents: PublicEvents = {
  EntityDiscovered: { version: 1, schema: z.object({ entityId: id, name: z.string().min(1), kind: entityKind }) },
  EntityMentioned: {
    version: 1,
    schema: z.object({ entityId: id, documentId: id, chunkIndex: z.number().int().nonnegative(), count: z.number().int().positive() }),
  },
  RelationObserved: {
    version: 1,
    schema: z.object({
      fromEntityId: id,
      toEntityId: id,
      documentId: id,
      chunkIndex: z.number().int().nonnegative(),
      weight: z.number().int().positive(),
    }),
  },
  DocumentEntitiesExtracted: {
    version: 1,
    schema: z.object({
      documentId: id,
      runId: z.string().optional(),
      stepName: z.string().optional(),
      entityCount: z.number().int().nonnegative(),
      relationCount: z.number().int().nonnegative(),
    }),
    toPublic: (event) => {
      const { chunkCount: _private, ...rest } = event.data as Record<string, unknown>;
      return rest;
    },
  },
  ExtractionFailed: {
    version: 1,
    schema: z.object({ documentId: z.string(), runId: z.string().optional(), stepName: z.string().optional(), reason: z.string() }),
  },
};
