/**
 * The event store's tables and functions, in their own PostgreSQL schema `eventstore` so that
 * a service's Prisma schema (which describes `public`) never sees them.
 *
 * Versioned: `eventstore.schema_version` records which steps ran; `migrateEventStore` applies
 * the missing ones in one transaction under an advisory lock, so concurrent starts are safe.
 */
import type pg from 'pg';

/** Name of the PostgreSQL schema holding the event store. */
export const EVENTSTORE_SCHEMA = 'eventstore';

/**
 * Advisory lock keys (two-int form, so they never collide with one-bigint locks of others).
 * `APPENDERS` is taken in shared mode by every append for the length of its transaction:
 * readers bound their reads by the transactions that hold it (DESIGN.md, "Global order
 * without lost events"). `SUBSCRIPTIONS` is the class of per-subscription session locks.
 */
export const ADVISORY_LOCK = {
  namespace: 0x46_47_45_53, // "FGES"
  appenders: 1,
  migrate: 2,
  subscriptionsNamespace: 0x46_47_53_42, // "FGSB"; objid = hashtext(subscription name)
  streamsNamespace: 0x46_47_53_54, // "FGST"; objid = hashtext(stream id), per-append transaction lock
  parkingNamespace: 0x46_47_50_4b, // "FGPK"; objid = hashtext(consumer|source|stream id), holding a stream behind a parked event
} as const;

/** Channel of the wake-up hints sent after appends commit (payload: nothing). */
export const NOTIFY_CHANNEL = 'flowgraph_eventstore';

/**
 * Custom SQLSTATEs raised by `eventstore.append_to_stream`, matched by code (never by text).
 * Class "FG" is not used by PostgreSQL.
 */
export const APPEND_SQLSTATE = {
  wrongExpectedVersion: 'FG409',
  eventIdConflict: 'FG422',
  notFirstWrite: 'FG428',
  streamOrderConflict: 'FG412',
} as const;

const steps: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE eventstore.streams (
  stream_id   text PRIMARY KEY,
  version     bigint NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE eventstore.events (
  global_position  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  event_id         uuid NOT NULL,
  stream_id        text NOT NULL,
  stream_position  bigint NOT NULL,
  transaction_id   xid8 NOT NULL DEFAULT pg_current_xact_id(),
  type             text NOT NULL,
  schema_version   integer NOT NULL,
  data             jsonb NOT NULL,
  metadata         jsonb NOT NULL,
  recorded_at      timestamptz NOT NULL DEFAULT clock_timestamp(),
  CONSTRAINT events_event_id_key UNIQUE (event_id),
  CONSTRAINT events_stream_position_key UNIQUE (stream_id, stream_position)
);
CREATE INDEX events_log_order_idx ON eventstore.events (transaction_id, global_position);
CREATE INDEX events_type_idx ON eventstore.events (type, transaction_id, global_position); -- dropped by step 3

-- Stored events are never updated or deleted in place (DESIGN.md, "Evolution").
CREATE FUNCTION eventstore.forbid_event_changes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'eventstore.events is append-only: % is not allowed', TG_OP
    USING ERRCODE = 'FG405';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON eventstore.events
  FOR EACH STATEMENT EXECUTE FUNCTION eventstore.forbid_event_changes();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON eventstore.events
  FOR EACH STATEMENT EXECUTE FUNCTION eventstore.forbid_event_changes();

CREATE TABLE eventstore.checkpoints (
  subscription_name  text PRIMARY KEY,
  transaction_id     xid8 NOT NULL,
  global_position    bigint NOT NULL,
  updated_at         timestamptz NOT NULL DEFAULT now()
);

/*
 * Appends a batch to one stream and returns the batch's positions. One statement, so an
 * autocommit call costs one round trip. Errors: FG409 wrong expected version (DETAIL is the
 * actual version), FG422 event id reused for another event, FG428 called after the
 * transaction already wrote (the appenders lock must come before the transaction's xid).
 *
 * p_expected: 'any' | 'no_stream' | 'stream_exists' | a decimal version >= -1.
 */
CREATE FUNCTION eventstore.append_to_stream(
  p_stream_id text,
  p_expected text,
  p_event_ids uuid[],
  p_types text[],
  p_schema_versions integer[],
  p_data jsonb[],
  p_metadata jsonb[],
  p_check_duplicates boolean
) RETURNS TABLE (
  next_expected_version bigint,
  first_global_position bigint,
  last_global_position bigint,
  transaction_id text,
  duplicate boolean
) LANGUAGE plpgsql AS $fn$
DECLARE
  n integer := cardinality(p_event_ids);
  v_version bigint;
  v_found integer;
  v_matching integer;
  v_expected bigint;
BEGIN
  -- Readers bound their reads by the xids of transactions holding this lock, so it must be
  -- held before this transaction has an xid (or by an earlier append of this transaction).
  IF current_setting('flowgraph.appender', true) IS DISTINCT FROM 'on' THEN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
      RAISE EXCEPTION 'append_to_stream must be the first write of its transaction'
        USING ERRCODE = 'FG428';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(${ADVISORY_LOCK.namespace}, ${ADVISORY_LOCK.appenders});
    PERFORM set_config('flowgraph.appender', 'on', true);
  END IF;

  -- Serialise appends per stream before this transaction gets an xid, so that a stream's
  -- later events always carry a later transaction id and log order keeps per-stream order.
  PERFORM pg_advisory_xact_lock(${ADVISORY_LOCK.streamsNamespace}, hashtext(p_stream_id));
  IF pg_current_xact_id_if_assigned() IS NOT NULL AND EXISTS (
       SELECT 1 FROM eventstore.events e
        WHERE e.stream_id = p_stream_id AND e.transaction_id > pg_current_xact_id_if_assigned()) THEN
    -- Only a transaction appending to several streams gets here: a younger transaction
    -- already appended to this stream; appending now would break per-stream log order.
    RAISE EXCEPTION 'stream was appended to by a later transaction; retry the transaction'
      USING ERRCODE = 'FG412';
  END IF;

  IF p_check_duplicates THEN
    SELECT count(*),
           count(*) FILTER (WHERE e.stream_id = p_stream_id AND e.type = i.type AND e.data = i.data)
      INTO v_found, v_matching
      FROM unnest(p_event_ids, p_types, p_data) AS i(event_id, type, data)
      JOIN eventstore.events e ON e.event_id = i.event_id;
    IF v_found > 0 THEN
      IF v_found = n AND v_matching = n THEN
        RETURN QUERY
          SELECT max(e.stream_position), min(e.global_position), max(e.global_position),
                 min(e.transaction_id::text), true
            FROM eventstore.events e WHERE e.event_id = ANY (p_event_ids);
        RETURN;
      END IF;
      RAISE EXCEPTION 'event id reused for a different event'
        USING ERRCODE = 'FG422',
              DETAIL = (SELECT i.event_id::text
                          FROM unnest(p_event_ids, p_types, p_data) AS i(event_id, type, data)
                          JOIN eventstore.events e ON e.event_id = i.event_id
                         WHERE NOT (e.stream_id = p_stream_id AND e.type = i.type AND e.data = i.data)
                            OR v_found < n
                         LIMIT 1);
    END IF;
  END IF;

  IF p_expected = 'any' THEN
    INSERT INTO eventstore.streams AS s (stream_id, version) VALUES (p_stream_id, n - 1)
      ON CONFLICT (stream_id) DO UPDATE SET version = s.version + n, updated_at = now()
      RETURNING s.version INTO v_version;
  ELSIF p_expected = 'no_stream' OR p_expected = '-1' THEN
    INSERT INTO eventstore.streams (stream_id, version) VALUES (p_stream_id, n - 1)
      ON CONFLICT (stream_id) DO NOTHING
      RETURNING version INTO v_version;
  ELSIF p_expected = 'stream_exists' THEN
    UPDATE eventstore.streams s SET version = s.version + n, updated_at = now()
      WHERE s.stream_id = p_stream_id
      RETURNING s.version INTO v_version;
  ELSE
    v_expected := p_expected::bigint;
    UPDATE eventstore.streams s SET version = s.version + n, updated_at = now()
      WHERE s.stream_id = p_stream_id AND s.version = v_expected
      RETURNING s.version INTO v_version;
  END IF;

  IF v_version IS NULL THEN
    -- Lost the race or wrong expectation. A concurrent identical retry may have stored these
    -- very events meanwhile: that is a duplicate, not a conflict.
    IF p_check_duplicates AND EXISTS (SELECT 1 FROM eventstore.events e WHERE e.event_id = p_event_ids[1]) THEN
      RETURN QUERY SELECT * FROM eventstore.append_to_stream(
        p_stream_id, 'any', p_event_ids, p_types, p_schema_versions, p_data, p_metadata, true);
      RETURN;
    END IF;
    RAISE EXCEPTION 'wrong expected version'
      USING ERRCODE = 'FG409',
            DETAIL = coalesce((SELECT s.version FROM eventstore.streams s WHERE s.stream_id = p_stream_id), -1)::text;
  END IF;

  RETURN QUERY
    WITH inserted AS (
      INSERT INTO eventstore.events (event_id, stream_id, stream_position, type, schema_version, data, metadata)
      SELECT i.event_id, p_stream_id, v_version - n + i.ord, i.type, i.schema_version, i.data, i.metadata
        FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata)
             WITH ORDINALITY AS i(event_id, type, schema_version, data, metadata, ord)
      RETURNING global_position
    )
    SELECT v_version, min(global_position), max(global_position), pg_current_xact_id()::text, false
      FROM inserted;
END
$fn$;
`,
  },
  {
    version: 2,
    sql: `
-- Integration events already handled by this service (DESIGN.md, "Integration events"): a
-- consumer inserts (source, event_id) in the same transaction as its effects.
CREATE TABLE eventstore.inbox (
  source      text NOT NULL,
  event_id    uuid NOT NULL,
  type        text NOT NULL,
  handled_at  timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT inbox_pkey PRIMARY KEY (source, event_id)
);
`,
  },
  {
    version: 3,
    // One B-tree less per event (bench:append measured the batch gap to plain INSERTs mostly
    // in index maintenance). Type-filtered reads walk the log-order index from their
    // checkpoint instead, which in steady state only visits the few events after it.
    sql: `DROP INDEX IF EXISTS eventstore.events_type_idx;`,
  },
  {
    version: 4,
    // Poison events (DESIGN.md, "Poison events"; eventstore/parking.ts): per consumer, an event
    // whose handler failed (FAILING, attempts counted), then gave up on (PARKED), the later
    // events of its stream held behind it (WAITING), and how each ended (RETRIED, SKIPPED,
    // RELEASED). Operational state like the inbox: rows change; the decisions are events.
    sql: `
CREATE TABLE eventstore.parked_events (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  consumer         text NOT NULL,
  source           text NOT NULL,
  event_id         uuid NOT NULL,
  stream_id        text NOT NULL,
  stream_position  bigint NOT NULL,
  type             text NOT NULL,
  event            jsonb NOT NULL,
  status           text NOT NULL CHECK (status IN ('FAILING', 'PARKED', 'WAITING', 'RETRIED', 'SKIPPED', 'RELEASED')),
  attempts         integer NOT NULL DEFAULT 0,
  error            text,
  first_failed_at  timestamptz,
  last_failed_at   timestamptz,
  parked_at        timestamptz,
  resolved_at      timestamptz,
  resolved_by      text,
  CONSTRAINT parked_events_consumer_event_key UNIQUE (consumer, event_id)
);
CREATE INDEX parked_events_held_idx ON eventstore.parked_events (consumer, source, stream_id, id)
  WHERE status IN ('PARKED', 'WAITING');
`,
  },
  {
    version: 5,
    // Issue 13: a stream's version is the last stream_position of its events, read from the
    // (stream_id, stream_position) unique index under the per-stream lock, instead of a row of
    // eventstore.streams updated by every append (a second heap write and WAL record per append;
    // pgbench at 16 clients: +18-29 % appends/s without it). The function is the only reader of
    // that table, so the table goes. The rest of the function is step 1's, unchanged.
    sql: `
CREATE OR REPLACE FUNCTION eventstore.append_to_stream(
  p_stream_id text,
  p_expected text,
  p_event_ids uuid[],
  p_types text[],
  p_schema_versions integer[],
  p_data jsonb[],
  p_metadata jsonb[],
  p_check_duplicates boolean
) RETURNS TABLE (
  next_expected_version bigint,
  first_global_position bigint,
  last_global_position bigint,
  transaction_id text,
  duplicate boolean
) LANGUAGE plpgsql AS $fn$
DECLARE
  n integer := cardinality(p_event_ids);
  v_current bigint;
  v_ok boolean;
  v_found integer;
  v_matching integer;
BEGIN
  -- Readers bound their reads by the xids of transactions holding this lock, so it must be
  -- held before this transaction has an xid (or by an earlier append of this transaction).
  IF current_setting('flowgraph.appender', true) IS DISTINCT FROM 'on' THEN
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
      RAISE EXCEPTION 'append_to_stream must be the first write of its transaction'
        USING ERRCODE = 'FG428';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(${ADVISORY_LOCK.namespace}, ${ADVISORY_LOCK.appenders});
    PERFORM set_config('flowgraph.appender', 'on', true);
  END IF;

  -- Serialise appends per stream before this transaction gets an xid, so that a stream's
  -- later events always carry a later transaction id and log order keeps per-stream order.
  -- The lock is released after the holder's commit is visible, so the version read below
  -- (a statement after the lock, with its own READ COMMITTED snapshot) is the stream's latest.
  PERFORM pg_advisory_xact_lock(${ADVISORY_LOCK.streamsNamespace}, hashtext(p_stream_id));
  IF pg_current_xact_id_if_assigned() IS NOT NULL AND EXISTS (
       SELECT 1 FROM eventstore.events e
        WHERE e.stream_id = p_stream_id AND e.transaction_id > pg_current_xact_id_if_assigned()) THEN
    -- Only a transaction appending to several streams gets here: a younger transaction
    -- already appended to this stream; appending now would break per-stream log order.
    RAISE EXCEPTION 'stream was appended to by a later transaction; retry the transaction'
      USING ERRCODE = 'FG412';
  END IF;

  IF p_check_duplicates THEN
    SELECT count(*),
           count(*) FILTER (WHERE e.stream_id = p_stream_id AND e.type = i.type AND e.data = i.data)
      INTO v_found, v_matching
      FROM unnest(p_event_ids, p_types, p_data) AS i(event_id, type, data)
      JOIN eventstore.events e ON e.event_id = i.event_id;
    IF v_found > 0 THEN
      IF v_found = n AND v_matching = n THEN
        RETURN QUERY
          SELECT max(e.stream_position), min(e.global_position), max(e.global_position),
                 min(e.transaction_id::text), true
            FROM eventstore.events e WHERE e.event_id = ANY (p_event_ids);
        RETURN;
      END IF;
      RAISE EXCEPTION 'event id reused for a different event'
        USING ERRCODE = 'FG422',
              DETAIL = (SELECT i.event_id::text
                          FROM unnest(p_event_ids, p_types, p_data) AS i(event_id, type, data)
                          JOIN eventstore.events e ON e.event_id = i.event_id
                         WHERE NOT (e.stream_id = p_stream_id AND e.type = i.type AND e.data = i.data)
                            OR v_found < n
                         LIMIT 1);
    END IF;
  END IF;

  -- NULL: the stream has no events (no stream). One backward step of the unique index.
  SELECT max(e.stream_position) INTO v_current FROM eventstore.events e WHERE e.stream_id = p_stream_id;

  IF p_expected = 'any' THEN
    v_ok := true;
  ELSIF p_expected = 'no_stream' OR p_expected = '-1' THEN
    v_ok := v_current IS NULL;
  ELSIF p_expected = 'stream_exists' THEN
    v_ok := v_current IS NOT NULL;
  ELSE
    v_ok := v_current IS NOT NULL AND v_current = p_expected::bigint;
  END IF;
  IF NOT v_ok THEN
    -- Wrong expectation. A concurrent identical retry may have stored these very events
    -- meanwhile: that is a duplicate, not a conflict.
    IF p_check_duplicates AND EXISTS (SELECT 1 FROM eventstore.events e WHERE e.event_id = p_event_ids[1]) THEN
      RETURN QUERY SELECT * FROM eventstore.append_to_stream(
        p_stream_id, 'any', p_event_ids, p_types, p_schema_versions, p_data, p_metadata, true);
      RETURN;
    END IF;
    RAISE EXCEPTION 'wrong expected version'
      USING ERRCODE = 'FG409', DETAIL = coalesce(v_current, -1)::text;
  END IF;

  RETURN QUERY
    WITH inserted AS (
      INSERT INTO eventstore.events (event_id, stream_id, stream_position, type, schema_version, data, metadata)
      SELECT i.event_id, p_stream_id, coalesce(v_current, -1) + i.ord, i.type, i.schema_version, i.data, i.metadata
        FROM unnest(p_event_ids, p_types, p_schema_versions, p_data, p_metadata)
             WITH ORDINALITY AS i(event_id, type, schema_version, data, metadata, ord)
      RETURNING global_position
    )
    SELECT coalesce(v_current, -1) + n, min(global_position), max(global_position), pg_current_xact_id()::text, false
      FROM inserted;
END
$fn$;

DROP TABLE eventstore.streams;
`,
  },
];

/** The version `migrateEventStore` brings the schema to (its newest step; `eventstore.schema_version`). */
export const EVENTSTORE_SCHEMA_VERSION = Math.max(...steps.map((step) => step.version));

/**
 * Creates or upgrades the `eventstore` schema in the pool's database. Idempotent and safe to
 * run from several processes at once (serialised by an advisory lock).
 * @throws pg.DatabaseError when the role may not create a schema in the database.
 */
export async function migrateEventStore(pool: pg.Pool): Promise<void> {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query('SELECT pg_advisory_xact_lock($1, $2)', [ADVISORY_LOCK.namespace, ADVISORY_LOCK.migrate]);
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${EVENTSTORE_SCHEMA}`);
    await client.query(
      `CREATE TABLE IF NOT EXISTS ${EVENTSTORE_SCHEMA}.schema_version (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${EVENTSTORE_SCHEMA}.schema_version`);
    const current = rows[0]?.v ?? 0;
    for (const step of steps) {
      if (step.version <= current) continue;
      await client.query(step.sql);
      await client.query(`INSERT INTO ${EVENTSTORE_SCHEMA}.schema_version (version) VALUES ($1)`, [step.version]);
    }
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
