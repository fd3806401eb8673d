/**
 * Liveness and readiness, as orchestrators probe them (Kubernetes' liveness/readiness probes,
 * docker-compose `healthcheck`):
 * - **live** (`GET /health/live`): the process answers HTTP. Nothing else is checked, so a
 *   database outage never gets a healthy process restarted.
 * - **ready** (`GET /health/ready`, and `GET /health` as its alias): every dependency the
 *   process needs to serve requests answers now: its database (`SELECT 1`), its migrations
 *   (every migration folder applied), its broker (a NATS round trip); on the gateway, every
 *   subgraph. 200 when all pass, 503 otherwise, with the result of each check.
 *
 * Checks run concurrently, each bounded by a timeout; concurrent probes share one run, so a
 * flood of probes costs one round of checks at a time.
 */
import type pg from 'pg';
import { migrationsDirOf, readMigrations } from '../db/migrate.ts';
import { EVENTSTORE_SCHEMA, EVENTSTORE_SCHEMA_VERSION, type IntegrationTransport } from '../eventstore/index.ts';
import { existsSync } from 'node:fs';

/** Longest a readiness check may take before it counts as failed: 2000 ms. */
export const DEFAULT_READINESS_TIMEOUT_MS = 2000;

/** One dependency to check. `check` resolves when the dependency answers, rejects (with why) otherwise. */
export interface ReadinessCheck {
  /** Short name in the report, e.g. `database`, `migrations`, `broker`, `subgraph:content`. */
  name: string;
  /** @param signal aborted when the check's timeout passes */
  check(signal: AbortSignal): Promise<void>;
}

/** The result of one check. */
export interface CheckResult {
  /** `ok` or `failed`. */
  status: 'ok' | 'failed';
  /** Why it failed (the error's message; `timed out after N ms` on a timeout). */
  error?: string;
  /** Wall time of the check, in ms. */
  durationMs: number;
}

/** What `/health/ready` answers. */
export interface ReadinessReport {
  /** `ok` when every check passed, else `not_ready`. */
  status: 'ok' | 'not_ready';
  /** By check name. */
  checks: Record<string, CheckResult>;
}

/**
 * Builds a probe running `checks` concurrently, each within `timeoutMs`. Calls made while a run
 * is in flight get that run's report.
 * @param timeoutMs per check, > 0. @default DEFAULT_READINESS_TIMEOUT_MS
 */
export function createReadinessProbe(checks: readonly ReadinessCheck[], timeoutMs = DEFAULT_READINESS_TIMEOUT_MS): () => Promise<ReadinessReport> {
  let running: Promise<ReadinessReport> | undefined;
  const run = async (): Promise<ReadinessReport> => {
    const entries = await Promise.all(checks.map(async (c) => [c.name, await runCheck(c, timeoutMs)] as const));
    const all = Object.fromEntries(entries);
    return { status: entries.every(([, r]) => r.status === 'ok') ? 'ok' : 'not_ready', checks: all };
  };
  return () =>
    (running ??= run().finally(() => {
      running = undefined;
    }));
}

async function runCheck(check: ReadinessCheck, timeoutMs: number): Promise<CheckResult> {
  const started = performance.now();
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      check.check(controller.signal),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // Rejected first, so the report says "timed out" rather than what the aborted check throws.
          reject(new Error(`timed out after ${timeoutMs} ms`));
          controller.abort();
        }, timeoutMs);
      }),
    ]);
    return { status: 'ok', durationMs: Math.round(performance.now() - started) };
  } catch (error) {
    return { status: 'failed', error: error instanceof Error ? error.message : String(error), durationMs: Math.round(performance.now() - started) };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The database answers: `SELECT 1` on a pooled connection. A pool whose every connection is
 * busy waits for one (within the timeout): a saturated database is not ready either.
 */
export function databaseCheck(pool: pg.Pool): ReadinessCheck {
  return {
    name: 'database',
    async check() {
      await pool.query('SELECT 1');
    },
  };
}

/**
 * Every migration folder of the service (`prisma/<service>/migrations`) is recorded as applied
 * (finished, not rolled back) in `_prisma_migrations`, and the event store's schema is at
 * `EVENTSTORE_SCHEMA_VERSION`. Once they all are, later probes only re-check the database.
 */
export function migrationsCheck(pool: pg.Pool, service: string, migrationsDir = migrationsDirOf(service)): ReadinessCheck {
  let expected: Promise<string[]> | undefined;
  let applied = false;
  return {
    name: 'migrations',
    async check() {
      if (applied) return;
      expected ??= existsSync(migrationsDir) ? readMigrations(migrationsDir).then((files) => files.map((f) => f.name)) : Promise.resolve([]);
      const names = await expected;
      const { rows } = await pool.query<{ version: number | null; done: string[] | null }>(
        `SELECT (SELECT max(version) FROM ${EVENTSTORE_SCHEMA}.schema_version) AS version,
                (SELECT array_agg(migration_name) FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL) AS done`,
      ).catch((error: { code?: string }) => {
        // 42P01 undefined_table: a schema never migrated at all.
        if (error.code === '42P01') throw new Error('migrations not applied: the database has no migration history');
        throw error;
      });
      const row = rows[0]!;
      if ((row.version ?? 0) < EVENTSTORE_SCHEMA_VERSION) {
        throw new Error(`the event store schema is at version ${row.version ?? 0}, expected ${EVENTSTORE_SCHEMA_VERSION}`);
      }
      const done = new Set(row.done ?? []);
      const missing = names.filter((name) => !done.has(name));
      if (missing.length > 0) throw new Error(`migrations not applied: ${missing.join(', ')}`);
      applied = true;
    },
  };
}

/** The integration transport's broker answers (`IntegrationTransport.ping`; the in-process one always does). */
export function brokerCheck(transport: IntegrationTransport): ReadinessCheck {
  return {
    name: 'broker',
    async check(signal) {
      await transport.ping(signal);
    },
  };
}

/**
 * A subgraph answers: `GET <its origin>/health/live` is 200 (its liveness, not its readiness:
 * the gateway serves the other subgraphs' fields while one subgraph's database is down, and
 * that subgraph's own readiness says so).
 */
export function subgraphCheck(name: string, graphqlUrl: string): ReadinessCheck {
  const url = new URL('/health/live', graphqlUrl).toString();
  return {
    name: `subgraph:${name}`,
    async check(signal) {
      const response = await fetch(url, { signal }).catch((error: Error & { cause?: { code?: string; message?: string } }) => {
        throw new Error(`${url}: ${error.cause?.code ?? error.cause?.message ?? error.message}`);
      });
      await response.body?.cancel();
      if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
    },
  };
}
