import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../db/testing.ts';
import { migrateEventStore, silentLogger, type Logger } from '../eventstore/index.ts';
import { PrismaClient } from '../prisma/monitoring/generated/client.ts';
import { openServiceStorage } from './serviceStorage.ts';
import { servicePool } from './servicePool.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await createTestDatabase('service_storage');
  await migrateEventStore(db.pool);
});
afterAll(async () => {
  await db?.drop();
});

function recordingLogger(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return { ...silentLogger, warn: (_obj, msg) => warnings.push(msg), warnings };
}

describe('servicePool', () => {
  it('rejects options with neither pool nor databaseUrl', () => {
    expect(() => servicePool({}, silentLogger, 'demo')).toThrow(/demo: a service needs `pool` or `databaseUrl`/);
  });

  it('leaves a borrowed pool open on close', async () => {
    const borrowed = servicePool({ pool: db.pool, databaseUrl: 'postgres://ignored' }, silentLogger, 'demo');
    expect(borrowed.pool).toBe(db.pool);
    expect(borrowed.owned).toBe(false);
    await borrowed.close();
    expect(db.pool.ended).toBe(false);
    await expect(db.pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
  });

  it('ends a pool it created, once, however often close is called', async () => {
    const owned = servicePool({ databaseUrl: db.url }, silentLogger, 'demo');
    expect(owned.owned).toBe(true);
    expect(owned.pool.options.max).toBe(10);
    await expect(owned.pool.query('SELECT 1 AS one')).resolves.toMatchObject({ rows: [{ one: 1 }] });
    await Promise.all([owned.close(), owned.close()]);
    await owned.close();
    expect(owned.pool.ended).toBe(true);
  });
});

describe('openServiceStorage', () => {
  it('opens the store and Prisma on the pool and closes them, then the owned pool, idempotently', async () => {
    const storage = openServiceStorage({ databaseUrl: db.url }, {
      name: 'demo',
      logger: silentLogger,
      createPrisma: (adapter) => new PrismaClient({ adapter }),
    });
    const appended = await storage.store.appendToStream('demo-1', [{ type: 'Happened', data: { n: 1 } }], { expectedVersion: 'no_stream' });
    expect(appended.nextExpectedVersion).toBe(0);
    expect(await storage.prisma.$queryRawUnsafe<{ one: number }[]>('SELECT 1 AS one')).toEqual([{ one: 1 }]);
    await storage.close();
    await storage.close();
    expect(storage.pool.ended).toBe(true);
  });

  it('logs a failed Prisma disconnect as a warning and still closes the store and the pool', async () => {
    const logger = recordingLogger();
    const storage = openServiceStorage({ databaseUrl: db.url }, {
      name: 'demo',
      logger,
      createPrisma: () => ({ $disconnect: () => Promise.reject(new Error('boom')) }),
    });
    await storage.close();
    expect(logger.warnings).toEqual(['demo: prisma disconnect failed']);
    expect(storage.pool.ended).toBe(true);
    await expect(storage.store.appendToStream('demo-2', [{ type: 'Happened', data: {} }])).rejects.toThrow();
  });
});
