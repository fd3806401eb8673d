/**
 * Liveness and readiness of a subgraph (federation/readiness.ts) against real dependencies it
 * loses and gets back: a private embedded PostgreSQL that the test stops and starts again, and a
 * private nats-server (a test never stops the shared ones). Also: a database whose migrations are
 * not all applied is not ready, and the checks are bounded by their timeout.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNatsTransport } from '../broker/nats.ts';
import { startPrivateNats, type PrivateNats } from '../broker/testing/private-nats.ts';
import { startEmbeddedPostgres, type RunningEmbeddedPostgres } from '../db/embedded.ts';
import { migrateServiceDatabase, migrationsDirOf, readMigrations } from '../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import type { IntegrationTransport } from '../eventstore/index.ts';
import { eventually } from '../eventstore/testing/fixture.ts';
import { startWorkflowsService, type WorkflowsService } from '../subgraphs/workflows/service.ts';
import { freePort } from '../test/support/ports.ts';
import { createReadinessProbe, databaseCheck, migrationsCheck, type ReadinessReport } from './readiness.ts';
import { mustGraphQL } from './testing/graphqlClient.ts';

interface Health {
  status: number;
  body: ReadinessReport;
}

async function health(base: string, route: string): Promise<Health> {
  const response = await fetch(new URL(route, base));
  return { status: response.status, body: (await response.json()) as ReadinessReport };
}

describe('a subgraph losing its database and its broker', () => {
  let dir: string;
  let pgPort: number;
  let server: RunningEmbeddedPostgres | undefined;
  let nats: PrivateNats;
  let transport: IntegrationTransport;
  let pool: pg.Pool;
  let service: WorkflowsService;
  const startPg = async () => {
    server = await startEmbeddedPostgres({ port: pgPort, dataDir: path.join(dir, 'pg'), secretsFile: path.join(dir, 'secrets.json') });
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'flowgraph-readiness-'));
    await chmod(dir, 0o755);
    pgPort = await freePort();
    await startPg();
    nats = await startPrivateNats();
    pool = new pg.Pool({ connectionString: server!.adminUrl, max: 5, connectionTimeoutMillis: 1000 });
    pool.on('error', () => {});
    await migrateServiceDatabase(pool, { service: 'workflows' });
    transport = await createNatsTransport({ url: nats.url, sources: ['workflows'], namespace: 'readiness' });
    service = await startWorkflowsService({ pool, port: 0, transport });
  }, 180_000);

  afterAll(async () => {
    await service?.close();
    await transport?.close();
    await pool?.end().catch(() => {});
    await server?.stop();
    await nats?.dispose();
    await rm(dir, { recursive: true, force: true });
  });

  it('is ready with every check passing, /health being the same report', async () => {
    const ready = await health(service.url, '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body.status).toBe('ok');
    expect(Object.keys(ready.body.checks).sort()).toEqual(['broker', 'database', 'migrations']);
    for (const check of Object.values(ready.body.checks)) expect(check.status).toBe('ok');
    expect((await health(service.url, '/health')).body.status).toBe('ok');
    expect(await health(service.url, '/health/live')).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('turns 503 when PostgreSQL stops (quickly, still live) and 200 again once it is back', async () => {
    await server!.stop();
    const started = Date.now();
    const down = await health(service.url, '/health/ready');
    expect(Date.now() - started).toBeLessThan(4000);
    expect(down.status).toBe(503);
    expect(down.body.status).toBe('not_ready');
    expect(down.body.checks.database!.status).toBe('failed');
    expect(down.body.checks.database!.error).toBeTruthy();
    expect(down.body.checks.broker!.status).toBe('ok');
    expect((await health(service.url, '/health/live')).status).toBe(200);

    await startPg();
    await eventually(async () => (await health(service.url, '/health/ready')).status === 200, 30_000, 'ready after PostgreSQL restart');
    // And it serves again.
    const data = await mustGraphQL<{ workflows: unknown[] }>(service.url, '{ workflows { id } }');
    expect(data.workflows).toEqual([]);
  }, 120_000);

  it('turns 503 when NATS stops and 200 again once it is back', async () => {
    await nats.stop();
    await eventually(async () => {
      const down = await health(service.url, '/health/ready');
      return down.status === 503 && down.body.checks.broker!.status === 'failed' && down.body.checks.database!.status === 'ok';
    }, 15_000, 'not ready without NATS');
    await nats.start();
    await eventually(async () => (await health(service.url, '/health/ready')).status === 200, 30_000, 'ready after NATS restart');
  }, 120_000);
});

describe('the migrations check', () => {
  let db: TestDatabase;
  let pool: pg.Pool;
  beforeAll(async () => {
    db = await createTestDatabase('readiness-migrations');
    pool = new pg.Pool({ connectionString: db.url, max: 2 });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('fails on a database never migrated, names a missing migration, and passes once all are applied', async () => {
    const probe = createReadinessProbe([databaseCheck(pool), migrationsCheck(pool, 'workflows')]);
    const fresh = await probe();
    expect(fresh.status).toBe('not_ready');
    expect(fresh.checks.database!.status).toBe('ok');
    expect(fresh.checks.migrations!.error).toMatch(/migration/);

    await migrateServiceDatabase(pool, { service: 'workflows' });
    const names = (await readMigrations(migrationsDirOf('workflows'))).map((m) => m.name);
    expect(names.length).toBeGreaterThan(0);
    const newest = names[names.length - 1]!;
    // As if the newest migration had not been applied yet (a deploy that skipped `db:migrate`).
    await pool.query(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1`, [newest]);
    const behind = await probe();
    expect(behind.status).toBe('not_ready');
    expect(behind.checks.migrations!.error).toBe(`migrations not applied: ${newest}`);

    await pool.query(`UPDATE "_prisma_migrations" SET rolled_back_at = NULL WHERE migration_name = $1`, [newest]);
    expect((await probe()).status).toBe('ok');
  });

  it('bounds a check by its timeout and shares one run between concurrent probes', async () => {
    let runs = 0;
    const probe = createReadinessProbe(
      [
        {
          name: 'stuck',
          check: (signal) => {
            runs++;
            return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted'))));
          },
        },
      ],
      200,
    );
    const started = Date.now();
    const [a, b] = await Promise.all([probe(), probe()]);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(runs).toBe(1);
    expect(a).toBe(b);
    expect(a.checks.stuck).toMatchObject({ status: 'failed', error: 'timed out after 200 ms' });
  });
});
