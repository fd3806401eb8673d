/**
 * Schema drift check: does a migrated database's `public` schema match `schema.prisma`?
 * (issue 2: "a test that the migrated database matches schema.prisma (no drift)").
 *
 * Uses Prisma's own schema engine compiled to WebAssembly (`@prisma/schema-engine-wasm`, the
 * build `@prisma/internals` 7.10.0 pins) through `@prisma/adapter-pg`, so it works offline:
 * the same diff as `prisma migrate diff --from-config-datasource --to-schema <schema> --exit-code`.
 * Only the datasource schema (`public`) is described; the event store's `eventstore` schema and
 * `_prisma_migrations` are not part of the comparison.
 *
 * Two adaptations, both needed with this engine build:
 * - the wasm module is instantiated by hand (no `--experimental-wasm-modules`);
 * - `@prisma/adapter-pg` 7.10 rejects PostgreSQL's internal `"char"` type (oid 18, e.g.
 *   `pg_constraint.contype`) that the engine's describer selects; those columns are handed to
 *   the engine as its `Character` column type.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { PrismaPg } from '@prisma/adapter-pg';
import { bindMigrationAwareSqlAdapterFactory, type SqlMigrationAwareDriverAdapterFactory } from '@prisma/driver-adapter-utils';
import type { SchemaEngine } from '@prisma/schema-engine-wasm/schema_engine_bg';
import pg from 'pg';
import { REPO_ROOT } from './migrate.ts';

/** Result of {@link checkSchemaDrift}. */
export interface DriftReport {
  /** True when the database differs from the schema. */
  drift: boolean;
  /** SQL that would turn the database into what the schema declares (empty migration when no drift). */
  script: string;
}

/** The database does not match its schema.prisma; `script` is the SQL that would fix the database. */
export class SchemaDriftError extends Error {
  override readonly name = 'SchemaDriftError';
  constructor(readonly service: string, readonly script: string) {
    super(`${service}: the migrated database does not match prisma/${service}/schema.prisma. `
      + `Statements that would make it match (write a migration instead):\n${script}`);
  }
}

/** Options of {@link checkSchemaDrift}. */
export interface DriftOptions {
  /** @default `<repo>/prisma/<service>/schema.prisma` */
  schemaPath?: string;
}

const PG_CHAR_OID = 18;
const PG_TEXT_OID = 25;
/** `ColumnTypeEnum.Character` of @prisma/driver-adapter-utils. */
const COLUMN_TYPE_CHARACTER = 6;

/** Node's global WebAssembly (the project's `lib` has no DOM typings for it). */
const wasmApi = (globalThis as unknown as {
  WebAssembly: { instantiate(bytes: Uint8Array, imports: object): Promise<{ instance: { exports: object } }> };
}).WebAssembly;

let enginePromise: Promise<typeof import('@prisma/schema-engine-wasm/schema_engine_bg')> | undefined;

/** Loads and instantiates the schema engine's wasm once per process. */
function loadEngineModule() {
  enginePromise ??= (async () => {
    const bg = await import('@prisma/schema-engine-wasm/schema_engine_bg');
    const require = createRequire(import.meta.url);
    const wasmPath = path.join(path.dirname(require.resolve('@prisma/schema-engine-wasm')), 'schema_engine_bg.wasm');
    const { instance } = await wasmApi.instantiate(await readFile(wasmPath), { './schema_engine_bg.js': bg });
    (bg as unknown as { __wbg_set_wasm(exports: object): void }).__wbg_set_wasm(instance.exports);
    (instance.exports as { __wbindgen_start?: () => void }).__wbindgen_start?.();
    // The engine reports panics through this global (set by Prisma's CLI).
    const g = globalThis as { PRISMA_WASM_PANIC_REGISTRY?: { set_message(message: string): void } };
    g.PRISMA_WASM_PANIC_REGISTRY ??= { set_message(message: string) { lastPanic = message; } };
    return bg;
  })();
  return enginePromise;
}
let lastPanic: string | undefined;

/**
 * A pg pool whose results report `"char"` columns as text (so the adapter accepts them), and
 * remembers which columns they were so that the adapter's result can name them `Character`.
 */
function charTolerantAdapter(databaseUrl: string): { factory: SqlMigrationAwareDriverAdapterFactory; pool: pg.Pool } {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  pool.on('error', () => {});
  const charColumns = new WeakMap<object, number[]>();
  const patch = (res: pg.QueryResult | undefined) => {
    const indices: number[] = [];
    res?.fields?.forEach((f, i) => {
      if (f.dataTypeID === PG_CHAR_OID) {
        f.dataTypeID = PG_TEXT_OID;
        indices.push(i);
      }
    });
    if (res && indices.length) charColumns.set(res.rows, indices);
    return res;
  };
  const wrapQuery = <T extends { query: (...args: never[]) => unknown }>(target: T) => {
    const original = target.query.bind(target) as (...args: unknown[]) => unknown;
    (target as { query: unknown }).query = (...args: unknown[]) => {
      const r = original(...args);
      return r instanceof Promise ? r.then(patch) : r;
    };
  };
  wrapQuery(pool);
  pool.on('connect', (client) => wrapQuery(client));

  type Queryable = { queryRaw(q: unknown): Promise<{ rows: unknown[]; columnTypes: number[] }> };
  const fixTypes = <Q extends Queryable>(q: Q): Q => {
    const original = q.queryRaw.bind(q);
    q.queryRaw = async (query: unknown) => {
      const r = await original(query);
      for (const i of charColumns.get(r.rows) ?? []) r.columnTypes[i] = COLUMN_TYPE_CHARACTER;
      return r;
    };
    return q;
  };
  const inner = new PrismaPg(pool);
  const factory: SqlMigrationAwareDriverAdapterFactory = {
    provider: inner.provider,
    adapterName: inner.adapterName,
    connect: async () => {
      const adapter = await inner.connect();
      fixTypes(adapter as unknown as Queryable);
      const startTransaction = adapter.startTransaction.bind(adapter);
      adapter.startTransaction = async (...args) => fixTypes(await startTransaction(...args) as unknown as Queryable) as never;
      return adapter;
    },
    connectToShadowDb: async () => fixTypes(await inner.connectToShadowDb() as unknown as Queryable) as never,
  };
  return { factory, pool };
}

/**
 * Diffs the `public` schema of the database at `databaseUrl` against the service's
 * schema.prisma with Prisma's schema engine. Read-only; opens at most 2 connections.
 * @returns `{ drift: false }` when they match; otherwise the SQL that would make the
 *   database match the schema.
 * @throws Error when the engine fails (e.g. the schema does not parse, the database is unreachable).
 */
export async function checkSchemaDrift(service: string, databaseUrl: string, options: DriftOptions = {}): Promise<DriftReport> {
  const schemaPath = options.schemaPath ?? path.join(REPO_ROOT, 'prisma', service, 'schema.prisma');
  const content = await readFile(schemaPath, 'utf8');
  const files = [{ path: schemaPath, content }];
  const bg = await loadEngineModule();
  const { factory, pool } = charTolerantAdapter(databaseUrl);
  try {
    let engine: SchemaEngine;
    try {
      engine = await bg.SchemaEngine.new({ datamodels: [[schemaPath, content]] }, () => {}, bindMigrationAwareSqlAdapterFactory(factory));
    } catch (err) {
      throw new Error(`${service}: the schema engine could not start: ${(err as Error).message}${lastPanic ? ` (${lastPanic})` : ''}`, { cause: err });
    }
    try {
      const result = await engine.diff({
        from: { tag: 'schemaDatasource', files, configDir: path.dirname(schemaPath) },
        to: { tag: 'schemaDatamodel', files },
        script: true,
        exitCode: true,
        filters: { externalTables: [], externalEnums: [] },
      });
      // exitCode 2: the diff is not empty (engine's `--exit-code` convention).
      return { drift: result.exitCode === 2, script: result.stdout ?? '' };
    } catch (err) {
      throw new Error(`${service}: drift check failed: ${(err as Error).message.split('\n')[0]}${lastPanic ? ` (${lastPanic})` : ''}`, { cause: err });
    }
  } finally {
    await pool.end().catch(() => {});
  }
}

/**
 * {@link checkSchemaDrift}, throwing when there is drift.
 * @throws SchemaDriftError with the statements that would fix the database.
 */
export async function assertNoSchemaDrift(service: string, databaseUrl: string, options: DriftOptions = {}): Promise<void> {
  const report = await checkSchemaDrift(service, databaseUrl, options);
  if (report.drift) throw new SchemaDriftError(service, report.script);
}
