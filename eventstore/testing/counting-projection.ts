/**
 * A projection for tests: records every applied event as a row of `applied` (no unique key,
 * so an event applied twice shows up as a duplicate row).
 */
import type { ClientBase } from 'pg';
import type { Projection } from '../types.ts';

export const APPLIED_TABLE_SQL = `CREATE TABLE IF NOT EXISTS applied (
  event_id uuid NOT NULL, stream_id text NOT NULL, stream_position bigint NOT NULL, consumer text NOT NULL
)`;

export function countingProjection(name: string, consumer: string, handles: readonly string[]): Projection {
  return {
    name,
    handles,
    async apply(events, client: ClientBase) {
      await client.query(
        `INSERT INTO applied (event_id, stream_id, stream_position, consumer)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::text[])`,
        [events.map((e) => e.eventId), events.map((e) => e.streamId), events.map((e) => e.streamPosition), events.map(() => consumer)],
      );
    },
    async reset(client: ClientBase) {
      await client.query('DELETE FROM applied');
    },
  };
}
