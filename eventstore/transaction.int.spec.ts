/**
 * `store.transaction` when PostgreSQL ends its session in the middle (an administrator's
 * pg_terminate_backend, an idle-in-transaction timeout, a failover): the transaction fails with
 * a typed ConnectionLostError, nothing of it is stored, the broken connection is not reused and
 * the process lives on (issue 10: the pooled client's 'error' event had no listener and took the
 * process down).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectionLostError, EventStoreErrorCode } from './index.ts';
import { classifyDatabaseError } from '../federation/formatError.ts';
import { createStoreFixture, delay, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('transaction_lost');
});
afterAll(() => fx.close());

/** Ends the session of backend `pid` from another connection, as an administrator would. */
async function terminate(pid: number): Promise<void> {
  const { rows } = await fx.db.pool.query<{ ok: boolean }>('SELECT pg_terminate_backend($1) AS ok', [pid]);
  expect(rows[0]!.ok).toBe(true);
}

describe('a transaction whose connection is ended by the server', () => {
  it('fails with ConnectionLostError at the next statement, stores nothing, and the store goes on', async () => {
    const attempt = fx.store.transaction(async (tx) => {
      await tx.appendToStream('lost-1', [{ type: 'First', data: { n: 1 } }]);
      const { rows } = await tx.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await terminate(rows[0]!.pid);
      // Awaiting something that is not SQL while the server ends the session.
      await delay(300);
      await tx.appendToStream('lost-1', [{ type: 'Second', data: { n: 2 } }]);
    });
    const error = await attempt.then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConnectionLostError);
    expect((error as ConnectionLostError).code).toBe(EventStoreErrorCode.ConnectionLost);
    expect((error as ConnectionLostError).outcome).toBe('rolled back');
    // A subgraph answers it as SERVICE_UNAVAILABLE (retry), not as an internal error.
    expect(classifyDatabaseError(error)).toBe('UNAVAILABLE');
    expect(await fx.store.readStream('lost-1')).toEqual([]);
    // The pool hands out working connections afterwards.
    for (let i = 0; i < 12; i++) await fx.store.appendToStream(`after-lost-${i}`, [{ type: 'Fine', data: { i } }]);
    expect(await fx.store.readStream('after-lost-11')).toHaveLength(1);
  });

  it('fails with ConnectionLostError at COMMIT when the work ends without another statement', async () => {
    const attempt = fx.store.transaction(async (tx) => {
      await tx.appendToStream('lost-2', [{ type: 'Only', data: {} }]);
      const { rows } = await tx.client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await terminate(rows[0]!.pid);
      await delay(300);
      return 'done';
    });
    await expect(attempt).rejects.toBeInstanceOf(ConnectionLostError);
    expect(await fx.store.readStream('lost-2')).toEqual([]);
  });
});
