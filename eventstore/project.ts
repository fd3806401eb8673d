/**
 * Projections (DESIGN.md, "Projections"). Inline projections are passed to
 * `createEventStore({ inlineProjections })` and run in the append's transaction. Async
 * projections run as a subscription named after the projection: read-model writes and the
 * checkpoint commit in one transaction, so a crash never applies an event twice. Any
 * projection can be rebuilt from position zero.
 */
import cliProgress from 'cli-progress';
import { LOG_START } from './cursor.ts';
import { readAll } from './read.ts';
import { ADVISORY_LOCK } from './schema.ts';
import type { EventStore } from './store.ts';
import type { Subscription, SubscriptionOptions } from './subscribe.ts';
import type { Projection } from './types.ts';

/**
 * Runs `projection` asynchronously as subscription `projection.name` (only its `handles`
 * types are read).
 */
export function startProjection(
  store: EventStore,
  projection: Projection,
  options: Omit<SubscriptionOptions, 'name' | 'handler' | 'types'> = {},
): Subscription {
  return store.subscribe({
    ...options,
    name: projection.name,
    types: projection.handles,
    handler: (events, { client }) => projection.apply(events, client),
  });
}

/** Options of `rebuildProjection`. */
export interface RebuildOptions {
  /** Show a progress bar (events done / total) on stderr. @default process.stderr.isTTY */
  progress?: boolean;
  /** Events per transaction while replaying. @default 1000 */
  batchSize?: number;
  /**
   * `'inline'` blocks appends while it replays (one transaction holding the appenders lock
   * exclusively), so no append applies an event twice or in the wrong order. `'async'`
   * resets the projection's checkpoint and lets its subscription catch up, committing each
   * batch with the checkpoint; the running consumer must be stopped first (the rebuild takes
   * the subscription's lock and fails when it cannot).
   */
  mode: 'inline' | 'async';
}

/**
 * Deletes what `projection` wrote and replays every event it handles from the start of the log.
 * @returns the number of events replayed
 * @throws Error when mode is 'async' and another consumer holds the subscription
 */
export async function rebuildProjection(store: EventStore, projection: Projection, options: RebuildOptions): Promise<{ events: number }> {
  const batchSize = options.batchSize ?? 1000;
  const showProgress = options.progress ?? Boolean(process.stderr.isTTY);
  const client = await store.pool.connect();
  let bar: cliProgress.SingleBar | undefined;
  let done = 0;
  try {
    const { rows } = await client.query<{ total: string }>('SELECT count(*) AS total FROM eventstore.events WHERE type = ANY ($1::text[])', [
      projection.handles,
    ]);
    const total = Number(rows[0]?.total ?? 0);
    if (showProgress) {
      bar = new cliProgress.SingleBar(
        { format: `rebuild ${projection.name} [{bar}] {percentage}% | {value}/{total} events | {duration_formatted}`, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
    }
    if (options.mode === 'inline') {
      await client.query('BEGIN');
      // Exclusive against every append's shared lock: no append runs while the read model is rebuilt.
      await client.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.appenders]);
      await projection.reset(client);
      let position = LOG_START;
      for (;;) {
        const page = await readAll(client, store.upcasters, { after: position, count: batchSize, types: projection.handles });
        if (page.events.length > 0) await projection.apply(page.events, client);
        done += page.events.length;
        bar?.update(done);
        position = page.position;
        if (page.caughtUp) break;
      }
      await client.query('COMMIT');
    } else {
      const { rows: lock } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1, hashtext($2)) AS locked', [
        ADVISORY_LOCK.subscriptionsNamespace,
        projection.name,
      ]);
      if (!lock[0]?.locked) throw new Error(`projection "${projection.name}" is being consumed by a running subscription; stop it before rebuilding`);
      try {
        await client.query('BEGIN');
        await projection.reset(client);
        await client.query('DELETE FROM eventstore.checkpoints WHERE subscription_name = $1', [projection.name]);
        await client.query('COMMIT');
        let position = LOG_START;
        for (;;) {
          const page = await readAll(client, store.upcasters, { after: position, count: batchSize, types: projection.handles });
          const last = page.events.at(-1);
          if (last) {
            const next = { transactionId: last.transactionId, globalPosition: last.globalPosition };
            await client.query('BEGIN');
            await projection.apply(page.events, client);
            await client.query(
              `INSERT INTO eventstore.checkpoints (subscription_name, transaction_id, global_position) VALUES ($1, $2::xid8, $3)
               ON CONFLICT (subscription_name) DO UPDATE SET transaction_id = EXCLUDED.transaction_id,
                 global_position = EXCLUDED.global_position, updated_at = now()`,
              [projection.name, next.transactionId, next.globalPosition],
            );
            await client.query('COMMIT');
          }
          done += page.events.length;
          bar?.update(done);
          position = page.position;
          if (page.caughtUp) break;
        }
      } finally {
        await client.query('SELECT pg_advisory_unlock($1, hashtext($2))', [ADVISORY_LOCK.subscriptionsNamespace, projection.name]).catch(() => {});
      }
    }
    return { events: done };
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    bar?.stop();
    client.release();
  }
}
