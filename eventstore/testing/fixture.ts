/**
 * Test fixture: a fresh database with the event store schema, a pool and a store; `close()`
 * closes the store and drops the database.
 */
import { createTestDatabase, type TestDatabase } from '../../db/testing.ts';
import { migrateEventStore } from '../schema.ts';
import { createEventStore, type EventStore, type EventStoreOptions } from '../store.ts';

export interface StoreFixture {
  db: TestDatabase;
  store: EventStore;
  /** Another store on its own pool, as a second process would have. */
  newStore(options?: Omit<EventStoreOptions, 'pool'>): EventStore;
  close(): Promise<void>;
}

export async function createStoreFixture(label: string, options: Omit<EventStoreOptions, 'pool'> = {}): Promise<StoreFixture> {
  const db = await createTestDatabase(label);
  await migrateEventStore(db.pool);
  const stores: EventStore[] = [];
  const newStore = (o: Omit<EventStoreOptions, 'pool'> = {}) => {
    const s = createEventStore({ ...o, pool: db.pool });
    stores.push(s);
    return s;
  };
  const store = newStore(options);
  return {
    db,
    store,
    newStore,
    async close() {
      await Promise.all(stores.map((s) => s.close()));
      await db.drop();
    },
  };
}

/** Resolves after `ms` milliseconds. */
export const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 20 ms until it returns true, or fails after `timeoutMs` (default 20000). */
export async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 20_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(20);
  }
}

/** A promise with its resolve function, to hold a transaction open until the test says so. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * How many events the database holds, committed rows counted directly. Use this (not a
 * `readAll` page's length) to assert that refused input appended nothing: `readAll` stops at the
 * log's gap-safe bound, which an open transaction anywhere on the server (a concurrent test file's)
 * holds back, so two reads of it may differ with nothing appended in between.
 */
export async function countStoredEvents(pool: import('pg').Pool): Promise<number> {
  const { rows } = await pool.query<{ n: string }>('SELECT count(*) AS n FROM eventstore.events');
  return Number(rows[0]!.n);
}

/** Poisons and heals chosen events of a service database's inbox (see {@link installInboxPoison}). */
export interface InboxPoison {
  /** From now on, recording `eventId` in the inbox fails with a real, non-transient error. */
  poison(eventId: string): Promise<void>;
  /** `eventId` is recorded normally again. */
  heal(eventId: string): Promise<void>;
}

/**
 * Installs a trigger on `eventstore.inbox` (table `test_poison`, function and trigger
 * `test_refuse_poison`) that raises `poison event <id>` for the events listed in `test_poison`:
 * a real database error, so a consumer fails, retries and parks those events as in production.
 * Call once per database. @throws the database's error (e.g. when it is installed already)
 */
export async function installInboxPoison(pool: import('pg').Pool): Promise<InboxPoison> {
  await pool.query(`
    CREATE TABLE test_poison (event_id uuid PRIMARY KEY);
    CREATE FUNCTION test_refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF EXISTS (SELECT 1 FROM test_poison WHERE event_id = NEW.event_id) THEN RAISE EXCEPTION 'poison event %', NEW.event_id; END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_refuse_poison BEFORE INSERT ON eventstore.inbox FOR EACH ROW EXECUTE FUNCTION test_refuse_poison();`);
  return {
    async poison(eventId) {
      await pool.query('INSERT INTO test_poison (event_id) VALUES ($1)', [eventId]);
    },
    async heal(eventId) {
      await pool.query('DELETE FROM test_poison WHERE event_id = $1', [eventId]);
    },
  };
}
