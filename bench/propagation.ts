/**
 * `npm run bench:propagation`: integration events from an append in one service's database to
 * the inbox commit in another's, through the relay (DESIGN.md, "Integration events"), over NATS
 * JetStream and over the in-process transport, measured in one run on the same PostgreSQL.
 *
 * Per transport: `--events` events (default 5000) appended by `--writers` concurrent writers
 * (default 4), one event per append, as fast as the source accepts them. The consumer commits
 * the inbox rows and one effect row per event in one transaction per batch at hand
 * (`handleBatchOnce`, as the services' high-volume consumers do). Reported:
 * events/s from the first append to the last inbox commit, and the end-to-end lag per event
 * (inbox commit time − the time just before its append), p50/p99/max in ms.
 *
 * Flags: --events N, --writers N, --transports nats,in-process. Env: FLOWGRAPH_ADMIN_DATABASE_URL
 * (default the machine's PostgreSQL), NATS_URL (default nats://127.0.0.1:4222).
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { createInProcessTransport } from '../broker/in-process.ts';
import { createNatsTransport, streamNameOf } from '../broker/nats.ts';
import {
  createEventStore,
  handleBatchOnce,
  handleOnce,
  migrateEventStore,
  startRelay,
  type IntegrationTransport,
  type PublicEvents,
} from '../eventstore/index.ts';
import { createBenchDatabase } from './benchDatabase.ts';
import { DEFAULT_ADMIN_URL } from './config.ts';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '5000' },
    writers: { type: 'string', default: '4' },
    transports: { type: 'string', default: 'nats,in-process' },
  },
});
const EVENTS = Number(values.events);
const WRITERS = Number(values.writers);
const TRANSPORTS = values.transports!.split(',').map((t) => t.trim());
if (!Number.isInteger(EVENTS) || EVENTS < 1 || !Number.isInteger(WRITERS) || WRITERS < 1) throw new Error('--events and --writers must be positive integers');
for (const t of TRANSPORTS) if (t !== 'nats' && t !== 'in-process') throw new Error(`unknown transport ${t}: expected nats or in-process`);
const adminUrl = process.env.FLOWGRAPH_ADMIN_DATABASE_URL || DEFAULT_ADMIN_URL;
const natsUrl = process.env.NATS_URL || 'nats://127.0.0.1:4222';

const publicEvents: PublicEvents = {
  OrderPlaced: { version: 1, schema: z.object({ n: z.number().int(), sentAt: z.number() }) },
};

interface Result {
  transport: string;
  events: number;
  seconds: number;
  eventsPerSecond: number;
  lagMs: { p50: number; p99: number; max: number };
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function measure(kind: 'nats' | 'in-process'): Promise<Result> {
  const source = await createBenchDatabase(adminUrl, 'prop_source');
  const target = await createBenchDatabase(adminUrl, 'prop_target');
  const sourcePool = new pg.Pool({ connectionString: source.url, max: WRITERS + 4 });
  const targetPool = new pg.Pool({ connectionString: target.url, max: 8 });
  const namespace = `bench${randomBytes(3).toString('hex')}`;
  let transport: IntegrationTransport | undefined;
  try {
    await migrateEventStore(sourcePool);
    await migrateEventStore(targetPool);
    await targetPool.query('CREATE TABLE effects (n integer PRIMARY KEY, committed_at double precision NOT NULL)');
    const sourceStore = createEventStore({ pool: sourcePool });
    const targetStore = createEventStore({ pool: targetPool });
    transport = kind === 'nats' ? await createNatsTransport({ url: natsUrl, sources: ['orders'], namespace }) : createInProcessTransport();

    const lags: number[] = [];
    let handled = 0;
    let lastCommit = 0;
    let done!: () => void;
    const record = (sentAts: number[]) => {
      const now = performance.timeOrigin + performance.now();
      for (const sentAt of sentAts) lags.push(now - sentAt);
      lastCommit = now;
      handled += sentAts.length;
      if (handled >= EVENTS) done();
    };
    const allHandled = new Promise<void>((resolve) => (done = resolve));
    const consumer = await transport.consume({
      consumer: 'bench-consumer',
      source: 'orders',
      types: ['OrderPlaced'],
      handler: async (event) => {
        const { n, sentAt } = event.data as { n: number; sentAt: number };
        const outcome = await handleOnce(targetStore, event, async (tx) => {
          await tx.client.query('INSERT INTO effects (n, committed_at) VALUES ($1, $2)', [n, 0]);
        });
        if (outcome.handled) record([sentAt]);
      },
      // Events at hand are committed together (what the services' high-volume consumers do).
      handleBatch: async (events) => {
        const { handled: fresh } = await handleBatchOnce(targetStore, events, async (tx, newEvents) => {
          const data = newEvents.map((e) => e.data as { n: number; sentAt: number });
          await tx.client.query('INSERT INTO effects (n, committed_at) SELECT n, 0 FROM unnest($1::int[]) AS n', [data.map((d) => d.n)]);
        });
        record(fresh.map((e) => (e.data as { sentAt: number }).sentAt));
      },
    });
    const relay = startRelay(sourceStore, { source: 'orders', publicEvents, transport, batchSize: 200, subscription: { pollIntervalMs: 200 } });

    const started = performance.timeOrigin + performance.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: WRITERS }, async (_, w) => {
        for (;;) {
          const n = next++;
          if (n >= EVENTS) return;
          await sourceStore.appendToStream(`order-${w}`, [{ type: 'OrderPlaced', data: { n, sentAt: performance.timeOrigin + performance.now() } }]);
        }
      }),
    );
    const timeout = setTimeout(() => done(), 300_000);
    await allHandled;
    clearTimeout(timeout);
    if (handled !== EVENTS) throw new Error(`${kind}: only ${handled} of ${EVENTS} events handled within 300 s`);
    const { rows } = await targetPool.query<{ n: number }>('SELECT count(*)::int AS n FROM effects');
    if (rows[0]!.n !== EVENTS) throw new Error(`${kind}: ${rows[0]!.n} effects for ${EVENTS} events`);

    await relay.close();
    await consumer.close();
    await sourceStore.close();
    await targetStore.close();
    const seconds = (lastCommit - started) / 1000;
    const sorted = lags.sort((a, b) => a - b);
    return {
      transport: kind,
      events: EVENTS,
      seconds: Number(seconds.toFixed(2)),
      eventsPerSecond: Math.round(EVENTS / seconds),
      lagMs: { p50: Number(percentile(sorted, 50).toFixed(1)), p99: Number(percentile(sorted, 99).toFixed(1)), max: Number(sorted.at(-1)!.toFixed(1)) },
    };
  } finally {
    await transport?.close();
    if (kind === 'nats') {
      const nc = await connect({ servers: natsUrl });
      await (await jetstreamManager(nc)).streams.delete(streamNameOf('orders', namespace)).catch(() => {});
      await nc.close();
    }
    await sourcePool.end();
    await targetPool.end();
    await source.drop();
    await target.drop();
  }
}

const server = await (async () => {
  const c = new pg.Client({ connectionString: adminUrl });
  await c.connect();
  try {
    const { rows } = await c.query(`SELECT current_setting('server_version') AS v, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc`);
    return rows[0] as { v: string; fsync: string; sc: string };
  } finally {
    await c.end();
  }
})();
console.log(`bench:propagation — PostgreSQL ${server.v} (fsync ${server.fsync}, synchronous_commit ${server.sc}), NATS ${natsUrl}`);
console.log(`${EVENTS} events, ${WRITERS} writers, one event per append; lag = inbox commit − just before append\n`);
const results: Result[] = [];
for (const kind of TRANSPORTS as ('nats' | 'in-process')[]) {
  process.stdout.write(`measuring ${kind}... `);
  const r = await measure(kind);
  console.log('done');
  results.push(r);
}
console.log('');
console.table(results.map((r) => ({ transport: r.transport, events: r.events, seconds: r.seconds, 'events/s': r.eventsPerSecond, 'lag p50 ms': r.lagMs.p50, 'lag p99 ms': r.lagMs.p99, 'lag max ms': r.lagMs.max })));
console.log(JSON.stringify({ bench: 'propagation', events: EVENTS, writers: WRITERS, results }));
