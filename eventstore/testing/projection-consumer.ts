/**
 * A second process for takeover tests: runs `countingProjection(name)` against DATABASE_URL
 * until SIGTERM, printing `state:<phase>` lines when its subscription changes phase.
 * Usage: node --import tsx eventstore/testing/projection-consumer.ts <databaseUrl> <name> <consumer>
 */
import pg from 'pg';
import { createEventStore, startProjection } from '../index.ts';
import { countingProjection } from './counting-projection.ts';

const [url, name, consumer] = process.argv.slice(2);
if (!url || !name || !consumer) throw new Error('usage: projection-consumer.ts <databaseUrl> <name> <consumer>');
const pool = new pg.Pool({ connectionString: url, max: 4 });
pool.on('error', () => {});
const store = createEventStore({ pool });
const subscription = startProjection(store, countingProjection(name, consumer, ['Tick']), { pollIntervalMs: 100, standbyRetryMs: 100, retryDelayMs: 50 });
let last = '';
const timer = setInterval(() => {
  if (subscription.state !== last) {
    last = subscription.state;
    process.stdout.write(`state:${last}\n`);
  }
}, 20);
process.on('SIGTERM', async () => {
  clearInterval(timer);
  await store.close();
  await pool.end();
  process.exit(0);
});
