/**
 * Child process of `bench:subscriptions`: the event source. It appends to the monitoring
 * service's database through monitoring's own append path for an observed integration event
 * (`observeIntegrationEvent`: the inbox row, the `IntegrationEventObserved` event and the
 * inline read-model projection in one transaction, then the store's wake-up hint), as
 * monitoring's consumer does for every event of the other services, at a fixed rate (open
 * loop: append i starts at t0 + i / rate whatever the previous ones do), and records when each
 * commit returned, on the machine's monotonic clock (`process.hrtime`, CLOCK_MONOTONIC: the
 * same clock as the receivers' in the benchmark process).
 *
 * The observed event's id encodes the cell and the sequence number (`benchEventId`), so a
 * receiver reads both from `event.eventId`; its payload names one of the benchmark's runs
 * (`data.runId`), so `ObservedEvent.run` is that run and `run { status }` is one entity fetch
 * to workflows per event.
 *
 * Commands: `open { monitoringUrl }`, `run { cell, count, rate, runIds }` →
 * `{ commitNs, appendMs }` (arrays indexed by sequence number), `close`.
 */
import pg from 'pg';
import { createEventStore, silentLogger, type EventStore, type IntegrationEvent, type Logger } from '../eventstore/index.ts';
import { observeIntegrationEvent } from '../subgraphs/monitoring/observe/observeIntegrationEvent.ts';
import { projections } from '../subgraphs/monitoring/projections/index.ts';
import { serveBenchCommands } from './childProcess.ts';
import { benchEventId } from './subscriptionClient.ts';

let pool: pg.Pool | undefined;
let store: EventStore | undefined;
/** The run's 8 hex digits that start every event id (bench/subscriptionClient.ts `benchEventId`). */
let prefix = '00000000';
const logger: Logger = { ...silentLogger, warn: (obj, msg) => console.warn(msg, obj), error: (obj, msg) => console.error(msg, obj) };

serveBenchCommands(
  {
    async open(args: { monitoringUrl: string; prefix: string }) {
      pool = new pg.Pool({ connectionString: args.monitoringUrl, max: 8 });
      pool.on('error', () => {});
      store = createEventStore({ pool, inlineProjections: projections, logger });
      prefix = args.prefix;
      return true;
    },
    async run(args: { cell: number; count: number; rate: number; runIds: string[] }) {
      const target = store!;
      const commitNs: number[] = new Array(args.count).fill(NaN);
      const appendMs: number[] = new Array(args.count).fill(NaN);
      const intervalNs = 1e9 / args.rate;
      const t0 = Number(process.hrtime.bigint()) + 5e6;
      const inFlight = new Set<Promise<void>>();
      let failures = 0;
      let lastError = '';
      for (let seq = 0; seq < args.count; seq++) {
        const due = t0 + seq * intervalNs;
        const waitMs = (due - Number(process.hrtime.bigint())) / 1e6;
        if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, Math.ceil(waitMs)));
        const runId = args.runIds[seq % args.runIds.length]!;
        const event: IntegrationEvent = {
          eventId: benchEventId(prefix, args.cell, seq),
          source: 'bench',
          type: 'BenchTick',
          schemaVersion: 1,
          streamId: `bench-${args.cell}`,
          streamPosition: seq,
          data: { runId, seq },
          metadata: { correlationId: `bench-${runId}`, causationId: `bench-request-${seq}`, actor: 'bench' },
          occurredAt: new Date().toISOString(),
          position: { transactionId: String(seq + 1), globalPosition: String(seq + 1) },
        };
        const started = Number(process.hrtime.bigint());
        const p = observeIntegrationEvent(target, event, logger).then(
          (outcome) => {
            const now = Number(process.hrtime.bigint());
            if (outcome !== 'observed') {
              failures++;
              lastError = `outcome ${outcome}`;
              return;
            }
            commitNs[seq] = now;
            appendMs[seq] = (now - started) / 1e6;
          },
          (error: unknown) => {
            failures++;
            lastError = String(error);
          },
        );
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= 32) await Promise.race(inFlight);
      }
      await Promise.all(inFlight);
      const lateNs = Number(process.hrtime.bigint()) - (t0 + (args.count - 1) * intervalNs);
      return { commitNs, appendMs, failures, lastError, lateMs: lateNs / 1e6 };
    },
    async close() {
      await store?.close();
      await pool?.end();
      store = undefined;
      pool = undefined;
      return true;
    },
  },
  async () => {
    await store?.close().catch(() => {});
    await pool?.end().catch(() => {});
  },
);

