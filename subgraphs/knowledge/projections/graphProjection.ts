/**
 * Inline projection of the entity graph into `entities`, `entity_mentions` and `relations`
 * (prisma/knowledge/schema.prisma). Runs in the append's transaction; a batch (one chunk's
 * mentions and relations) is written with one statement per table.
 */
import type { ClientBase } from 'pg';
import type { Projection, RecordedEvent } from '../../../eventstore/index.ts';
import type { EntityDiscoveredData, EntityMentionedData, RelationObservedData } from '../events.ts';

/** Projection `knowledge.graph`. */
export const graphProjection: Projection = {
  name: 'knowledge.graph',
  handles: ['EntityDiscovered', 'EntityMentioned', 'RelationObserved'],
  async apply(events, client) {
    const of = <T>(type: string) => events.filter((e) => e.type === type) as RecordedEvent<string, T>[];
    await discovered(of<EntityDiscoveredData>('EntityDiscovered'), client);
    await mentioned(of<EntityMentionedData>('EntityMentioned'), client);
    await related(of<RelationObservedData>('RelationObserved'), client);
  },
  async reset(client) {
    await client.query('TRUNCATE entities, entity_mentions, relations');
  },
};

async function discovered(events: RecordedEvent<string, EntityDiscoveredData>[], client: ClientBase): Promise<void> {
  if (events.length === 0) return;
  await client.query(
    `INSERT INTO entities (id, name, kind, mention_count, created_at)
     SELECT id, name, kind, 0, at FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[]) AS t(id, name, kind, at)
     ON CONFLICT (id) DO NOTHING`,
    [events.map((e) => e.data.entityId), events.map((e) => e.data.name), events.map((e) => e.data.kind), events.map((e) => e.recordedAt)],
  );
}

async function mentioned(events: RecordedEvent<string, EntityMentionedData>[], client: ClientBase): Promise<void> {
  if (events.length === 0) return;
  // Only newly inserted mentions move the entity's total (a rebuild replays each event once anyway).
  // The row keeps the log position of the event that inserted it: mentionCount as of an event
  // (live/knowledgeLiveFields.ts) sums the rows at or before that position.
  await client.query(
    `WITH inserted AS (
       INSERT INTO entity_mentions (entity_id, document_id, chunk_index, count, log_transaction_id, log_position)
       SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[], $6::bigint[])
       ON CONFLICT DO NOTHING
       RETURNING entity_id, count)
     UPDATE entities e SET mention_count = e.mention_count + s.total
       FROM (SELECT entity_id, sum(count)::int AS total FROM inserted GROUP BY entity_id) s
      WHERE e.id = s.entity_id`,
    [
      events.map((e) => e.data.entityId),
      events.map((e) => e.data.documentId),
      events.map((e) => e.data.chunkIndex),
      events.map((e) => e.data.count),
      events.map((e) => e.transactionId),
      events.map((e) => e.globalPosition),
    ],
  );
}

async function related(events: RecordedEvent<string, RelationObservedData>[], client: ClientBase): Promise<void> {
  if (events.length === 0) return;
  await client.query(
    `INSERT INTO relations (from_entity_id, to_entity_id, document_id, weight)
     SELECT from_id, to_id, doc, sum(w)::int FROM unnest($1::text[], $2::text[], $3::text[], $4::int[]) AS t(from_id, to_id, doc, w)
      GROUP BY from_id, to_id, doc
     ON CONFLICT (from_entity_id, to_entity_id, document_id) DO UPDATE SET weight = relations.weight + EXCLUDED.weight`,
    [
      events.map((e) => e.data.fromEntityId),
      events.map((e) => e.data.toEntityId),
      events.map((e) => e.data.documentId),
      events.map((e) => e.data.weight),
    ],
  );
}
