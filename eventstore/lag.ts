/**
 * Checkpoint lag of subscriptions (DESIGN.md, "Observability": every subscription, projection,
 * relay and consumer reports its lag in events and seconds), measured from the database alone,
 * so that a stopped or crashed consumer's lag keeps rising: what its stored checkpoint has not
 * reached yet.
 */
import type pg from 'pg';

/** How far one subscription's stored checkpoint is behind the log. */
export interface SubscriptionLag {
  /** The subscription (checkpoint) name. */
  name: string;
  /** Committed events of its types after its checkpoint (all of them before its first checkpoint): 0 when caught up. */
  events: number;
  /**
   * Age of the oldest of those events, in seconds (now − its `recorded_at`, both by the
   * database's clock): how long the subscription has kept an event waiting. 0 when caught up.
   */
  seconds: number;
}

/**
 * One statement for every subscription: for each, an index range scan of `events_log_order_idx`
 * after its checkpoint (so the cost grows with the lag itself, not with the log; a caught-up
 * subscription costs one index probe).
 */
const LAG_SQL = `SELECT s.name, l.events::text AS events, l.seconds
  FROM unnest($1::text[], $2::jsonb[]) AS s(name, types)
  LEFT JOIN eventstore.checkpoints c ON c.subscription_name = s.name
  CROSS JOIN LATERAL (
    SELECT count(*) AS events,
           coalesce(extract(epoch FROM clock_timestamp() - min(e.recorded_at)), 0)::float8 AS seconds
      FROM eventstore.events e
     WHERE (e.transaction_id, e.global_position) > (coalesce(c.transaction_id, '0'::xid8), coalesce(c.global_position, 0))
       AND (s.types IS NULL OR e.type IN (SELECT jsonb_array_elements_text(s.types)))
  ) l`;

/**
 * Reads the lag of `subscriptions` (name and the event types it reads; undefined = every type).
 * @returns one entry per subscription, in the given order; `[]` without a query when none is given
 * @throws the database error when PostgreSQL cannot be reached
 */
export async function readSubscriptionLag(
  db: Pick<pg.Pool, 'query'>,
  subscriptions: readonly { name: string; types: readonly string[] | undefined }[],
): Promise<SubscriptionLag[]> {
  if (subscriptions.length === 0) return [];
  const { rows } = await db.query<{ name: string; events: string; seconds: number }>(LAG_SQL, [
    subscriptions.map((s) => s.name),
    subscriptions.map((s) => (s.types === undefined ? null : JSON.stringify(s.types))),
  ]);
  const byName = new Map(rows.map((row) => [row.name, row]));
  return subscriptions.map(({ name }) => {
    const row = byName.get(name);
    const events = Number(row?.events ?? 0);
    return { name, events, seconds: events === 0 ? 0 : Math.max(0, row?.seconds ?? 0) };
  });
}
