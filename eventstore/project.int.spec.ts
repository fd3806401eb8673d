import type { ClientBase } from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEventStore, rebuildProjection, startProjection, type Projection, type RecordedEvent } from './index.ts';
import { createStoreFixture, eventually, type StoreFixture } from './testing/fixture.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('project');
  await fx.db.pool.query(`CREATE TABLE balances (account text PRIMARY KEY, balance integer NOT NULL, deposits integer NOT NULL)`);
  await fx.db.pool.query(`CREATE TABLE deposit_log (account text NOT NULL, amount integer NOT NULL)`);
});
afterAll(() => fx.close());

/** Balance read model: Deposited v1 had `{ cents }`, v2 has `{ amount }` (in cents). */
const balances: Projection = {
  name: 'balances',
  handles: ['Deposited', 'Withdrawn'],
  async apply(events: readonly RecordedEvent[], client: ClientBase) {
    for (const e of events) {
      const amount = (e.data as { amount: number }).amount * (e.type === 'Withdrawn' ? -1 : 1);
      await client.query(
        `INSERT INTO balances (account, balance, deposits) VALUES ($1, $2, $3)
         ON CONFLICT (account) DO UPDATE SET balance = balances.balance + $2, deposits = balances.deposits + $3`,
        [e.streamId, amount, e.type === 'Deposited' ? 1 : 0],
      );
    }
  },
  async reset(client: ClientBase) {
    await client.query('DELETE FROM balances');
  },
};

const depositLog: Projection = {
  name: 'deposit-log',
  handles: ['Deposited'],
  async apply(events, client) {
    for (const e of events) await client.query('INSERT INTO deposit_log VALUES ($1, $2)', [e.streamId, (e.data as { amount: number }).amount]);
  },
  async reset(client) {
    await client.query('DELETE FROM deposit_log');
  },
};

const upcasters = { Deposited: { 1: (data: { cents: number }) => ({ amount: data.cents }) } };

const balanceOf = async (account: string) =>
  (await fx.db.pool.query('SELECT balance, deposits FROM balances WHERE account = $1', [account])).rows[0] as
    | { balance: number; deposits: number }
    | undefined;

describe('projections', () => {
  it('an inline projection is visible as soon as the append returns (read-your-writes)', async () => {
    const store = fx.newStore({ inlineProjections: [balances], upcasters });
    await store.appendToStream('acct-1', [{ type: 'Deposited', data: { amount: 100 }, schemaVersion: 2 }]);
    expect(await balanceOf('acct-1')).toEqual({ balance: 100, deposits: 1 });
    await store.appendToStream('acct-1', [{ type: 'Withdrawn', data: { amount: 30 } }, { type: 'Deposited', data: { cents: 5 } }]);
    expect(await balanceOf('acct-1')).toEqual({ balance: 75, deposits: 2 });
  });

  it('a failing inline projection rolls the append back', async () => {
    const failing: Projection = { ...balances, name: 'failing', async apply() { throw new Error('read model down'); } };
    const store = fx.newStore({ inlineProjections: [failing] });
    await expect(store.appendToStream('acct-fail', [{ type: 'Deposited', data: { amount: 1 } }])).rejects.toThrow('read model down');
    expect(await store.readStream('acct-fail')).toEqual([]);
  });

  it('upcasters turn old payload versions into the current shape on read', async () => {
    const store = fx.newStore({ upcasters });
    await store.appendToStream('acct-old', [{ type: 'Deposited', data: { cents: 42 } }]);
    const [event] = await store.readStream('acct-old');
    expect(event).toMatchObject({ schemaVersion: 2, data: { amount: 42 } });
  });

  it('an async projection commits read-model writes with its checkpoint and catches up live', async () => {
    const store = fx.newStore({ upcasters });
    await store.appendToStream('acct-2', [{ type: 'Deposited', data: { amount: 7 }, schemaVersion: 2 }]);
    const sub = startProjection(store, depositLog, { pollIntervalMs: 100 });
    try {
      await store.appendToStream('acct-2', [{ type: 'Deposited', data: { amount: 8 }, schemaVersion: 2 }]);
      await eventually(async () => (await fx.db.pool.query(`SELECT count(*)::int AS n FROM deposit_log WHERE account = 'acct-2'`)).rows[0].n === 2);
      const { rows } = await fx.db.pool.query(`SELECT transaction_id::text AS tx, global_position::text AS pos FROM eventstore.checkpoints WHERE subscription_name = 'deposit-log'`);
      expect(rows[0]).toEqual({ tx: sub.checkpoint!.transactionId, pos: sub.checkpoint!.globalPosition });
    } finally {
      await sub.close();
    }
  });

  it('a consumer whose checkpoint was moved by another can never commit (compare-and-set)', async () => {
    const store = fx.newStore({ upcasters });
    const seen: number[] = [];
    const sub = store.subscribe({
      name: 'cas-victim',
      types: ['Deposited'],
      pollIntervalMs: 50,
      handler: async (events, { client }) => {
        // Another consumer moves the checkpoint while this batch is in flight.
        await fx.db.pool.query(`UPDATE eventstore.checkpoints SET global_position = global_position + 1000000 WHERE subscription_name = 'cas-victim'`);
        seen.push(events.length);
        await client.query(`INSERT INTO deposit_log VALUES ('cas-marker', 1)`);
      },
    });
    try {
      await eventually(() => sub.checkpoint !== null || seen.length > 0, 10_000, 'first batch');
      await store.appendToStream('acct-cas', [{ type: 'Deposited', data: { amount: 1 }, schemaVersion: 2 }]);
      await eventually(() => seen.length >= 2, 10_000, 'a batch after the checkpoint exists');
      // The first batch (no previous checkpoint) committed; every later one lost the CAS and rolled back.
      const { rows } = await fx.db.pool.query(`SELECT count(*)::int AS n FROM deposit_log WHERE account = 'cas-marker'`);
      expect(rows[0].n).toBe(1);
    } finally {
      await sub.close();
    }
  });

  it('rebuild replays an inline projection from zero to the same state', async () => {
    const store = fx.newStore({ inlineProjections: [balances], upcasters });
    for (let i = 0; i < 20; i++) await store.appendToStream('acct-3', [{ type: 'Deposited', data: { amount: 1 }, schemaVersion: 2 }]);
    expect(await balanceOf('acct-3')).toEqual({ balance: 20, deposits: 20 });
    await fx.db.pool.query(`UPDATE balances SET balance = -999`);
    const { events } = await rebuildProjection(store, balances, { mode: 'inline', progress: false, batchSize: 7 });
    expect(events).toBeGreaterThanOrEqual(20);
    expect(await balanceOf('acct-3')).toEqual({ balance: 20, deposits: 20 });
    expect(await balanceOf('acct-1')).toEqual({ balance: 75, deposits: 2 });
    // Events appended by stores without the inline projection are part of the log too.
    expect(await balanceOf('acct-old')).toEqual({ balance: 42, deposits: 1 });
  });

  it('rebuild replays an async projection and refuses while a consumer runs', async () => {
    const store = fx.newStore({ upcasters });
    const sub = startProjection(store, depositLog, { pollIntervalMs: 100 });
    await eventually(() => sub.state === 'active');
    await expect(rebuildProjection(store, depositLog, { mode: 'async', progress: false })).rejects.toThrow(/running subscription/);
    await sub.close();
    const expected = (await fx.db.pool.query(`SELECT count(*)::int AS n FROM eventstore.events WHERE type = 'Deposited'`)).rows[0].n;
    await fx.db.pool.query(`INSERT INTO deposit_log VALUES ('garbage', 0)`);
    const { events } = await rebuildProjection(store, depositLog, { mode: 'async', progress: false, batchSize: 5 });
    expect(events).toBe(expected);
    const { rows } = await fx.db.pool.query(`SELECT count(*)::int AS n, count(*) FILTER (WHERE account = 'garbage')::int AS g FROM deposit_log`);
    expect(rows[0]).toEqual({ n: expected, g: 0 });
    // Restarted afterwards, the consumer continues from the rebuilt checkpoint: nothing twice.
    const again = startProjection(store, depositLog, { pollIntervalMs: 100 });
    await eventually(() => again.state === 'active');
    await new Promise((r) => setTimeout(r, 300));
    await again.close();
    expect((await fx.db.pool.query(`SELECT count(*)::int AS n FROM deposit_log`)).rows[0].n).toBe(expected);
  });

  it('a store built without projections still works with createEventStore directly', async () => {
    const store = createEventStore({ pool: fx.db.pool });
    const r = await store.appendToStream('plain', [{ type: 'X', data: [] }]);
    expect(r.duplicate).toBe(false);
    await store.close();
    await store.close();
  });
});
