/**
 * Deadlines against a fresh PostgreSQL database: a step past its deadline gets StepTimedOut and
 * its retry policy, also when the service that started it stopped and a new one took over;
 * two scanners on one database never fire a timer twice.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateServiceDatabase } from '../../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../../db/testing.ts';
import { createEventStore, type EventStore } from '../../../eventstore/index.ts';
import { createCommandHandlers } from '../commandHandlers.ts';
import { runsProjection } from '../projections/runsProjection.ts';
import { workflowsProjection } from '../projections/workflowsProjection.ts';
import { runStreamId } from '../run/events.ts';
import { startWorkflowsService } from '../service.ts';
import { eventually, mustGraphQL, testLogger } from '../../../federation/testing/graphqlClient.ts';
import { DEADLINE_SCANNER_ACTOR, startDeadlineScanner } from './DeadlineScanner.ts';

let db: TestDatabase;

beforeAll(async () => {
  db = await createTestDatabase('workflows_deadlines');
  await migrateServiceDatabase(db.pool, { service: 'workflows' });
});

afterAll(async () => {
  await db?.drop();
});

describe('DeadlineScanner', () => {
  it('times out a step and applies its retry policy after the service that started it was restarted', async () => {
    // Service 1 starts the run, then stops before the deadline (its scanner never fires).
    const first = await startWorkflowsService({ pool: db.pool, port: 0, deadlineScanIntervalMs: 60_000, logger: testLogger });
    let runId: string;
    try {
      await mustGraphQL(
        first.url,
        `mutation { defineWorkflow(input: { id: "slow", name: "Slow", steps: [
          { name: "wait", kind: EXTERNAL, timeoutMs: 300, retryPolicy: { maxAttempts: 2, backoffMs: 200 } }] }) { id } }`,
      );
      const started = await mustGraphQL(first.url, `mutation { startRun(workflowId: "slow", input: {}) { id } }`);
      runId = started.startRun.id;
    } finally {
      await first.close();
    }
    await first.close(); // idempotent
    const pending = await db.pool.query('SELECT kind, attempt FROM run_deadlines WHERE run_id = $1', [runId]);
    expect(pending.rows).toEqual([{ kind: 'STEP_TIMEOUT', attempt: 1 }]);
    await new Promise((r) => setTimeout(r, 400));

    // Service 2, a new instance on the same database, finds the deadline and fires it, then the scheduled retry.
    const second = await startWorkflowsService({ pool: db.pool, port: 0, deadlineScanIntervalMs: 50, logger: testLogger });
    try {
      const run = await eventually(async () => {
        const data = await mustGraphQL(second.url, `query($r: ID!) { run(id: $r) { status steps { status attempt } } }`, { r: runId });
        return data.run.steps[0].attempt === 2 && data.run.steps[0].status === 'RUNNING' ? data.run : undefined;
      });
      expect(run.status).toBe('RUNNING');
      // Attempt 2 times out too: maxAttempts reached, the run fails.
      await eventually(async () => {
        const data = await mustGraphQL(second.url, `query($r: ID!) { run(id: $r) { status } }`, { r: runId });
        return data.run.status === 'FAILED' ? true : undefined;
      });
      const history = await mustGraphQL(second.url, `query($r: ID!) { runHistory(runId: $r) { type data metadata } }`, { r: runId });
      const events = history.runHistory as { type: string; data: any; metadata: any }[];
      expect(events.map((e) => e.type)).toEqual([
        'RunStarted', 'StepStarted',
        'StepTimedOut', 'StepRetried',
        'StepStarted',
        'StepTimedOut', 'RunFailed',
      ]);
      expect(Date.parse(events[3]!.data.retryAt) - Date.parse(events[2]!.data.timedOutAt)).toBe(200);
      expect(Date.parse(events[4]!.data.startedAt)).toBeGreaterThanOrEqual(Date.parse(events[3]!.data.retryAt));
      for (const e of events.slice(2)) expect(e.metadata.actor).toBe(DEADLINE_SCANNER_ACTOR);
      expect(events[2]!.metadata.correlationId).toBe(events[0]!.metadata.correlationId);
      expect(await db.pool.query('SELECT 1 FROM run_deadlines WHERE run_id = $1', [runId]).then((r) => r.rowCount)).toBe(0);
    } finally {
      await second.close();
    }
  });

  it('never fires a timer twice when two scanners with their own pools scan the same due timers', async () => {
    let now = new Date('2030-01-01T00:00:00.000Z');
    const clock = () => now;
    const pools = [new pg.Pool({ connectionString: db.url, max: 5 }), new pg.Pool({ connectionString: db.url, max: 5 })];
    // As every pool of the code has (servicePool.ts): a session the server ends while idle is an error event, not an uncaught exception.
    for (const pool of pools) pool.on('error', () => {});
    const stores: EventStore[] = pools.map((pool) => createEventStore({ pool, inlineProjections: [workflowsProjection, runsProjection] }));
    try {
      const [a, b] = stores.map((store) => createCommandHandlers(store, clock)) as [ReturnType<typeof createCommandHandlers>, ReturnType<typeof createCommandHandlers>];
      const meta = { actor: 'test' };
      await a.defineWorkflow(
        { id: 'race', name: 'Race', steps: [{ name: 's', kind: 'EXTERNAL', retryPolicy: { maxAttempts: 1, backoffMs: 0 }, timeoutMs: 1000 }] },
        meta,
      );
      const runIds = await Promise.all(Array.from({ length: 20 }, (_, i) => a.startRun('race', { i }, null, meta)));
      now = new Date(now.getTime() + 1000);

      // The loops' first scans run at once on a 1 h interval; scanOnce joins or follows them.
      const scanners = [
        startDeadlineScanner({ pool: pools[0]!, commands: a, clock, intervalMs: 3_600_000, logger: testLogger }),
        startDeadlineScanner({ pool: pools[1]!, commands: b, clock, intervalMs: 3_600_000, logger: testLogger }),
      ];
      const fired = await Promise.all([scanners[0]!.scanOnce(), scanners[1]!.scanOnce(), scanners[0]!.scanOnce(), scanners[1]!.scanOnce()]);
      await Promise.all(scanners.map((s) => s.close()));
      await Promise.all(scanners.map((s) => s.close())); // idempotent
      expect(await scanners[0]!.scanOnce()).toBe(0); // closed: does nothing

      for (const runId of runIds) {
        const types = (await stores[0]!.readStream(runStreamId(runId))).map((e) => e.type);
        expect(types).toEqual(['RunStarted', 'StepStarted', 'StepTimedOut', 'RunFailed']);
      }
      // The loops' own first scans may have fired some timers before the explicit scans.
      expect(fired.reduce((x, y) => x + y, 0)).toBeLessThanOrEqual(20);
      expect(await db.pool.query(`SELECT count(*)::int AS n FROM run_deadlines WHERE run_id = ANY($1)`, [runIds]).then((r) => r.rows[0].n)).toBe(0);
      const failed = await db.pool.query(`SELECT count(*)::int AS n FROM workflow_runs WHERE workflow_id = 'race' AND status = 'FAILED'`);
      expect(failed.rows[0].n).toBe(20);

      // The same timer fired by both at once: the expected-version append lets exactly one win.
      const more = await Promise.all(Array.from({ length: 10 }, (_, i) => a.startRun('race', { more: i }, null, meta)));
      now = new Date(now.getTime() + 1000);
      const outcomes = await Promise.all(more.map((runId) => Promise.all([a.timeoutStep(runId, 's', 1, meta), b.timeoutStep(runId, 's', 1, meta)])));
      for (const [x, y] of outcomes) expect([x, y].sort()).toEqual([0, 2]);
      for (const runId of more) {
        expect((await stores[1]!.readStream(runStreamId(runId))).map((e) => e.type)).toEqual(['RunStarted', 'StepStarted', 'StepTimedOut', 'RunFailed']);
      }
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await Promise.all(pools.map((p) => p.end()));
    }
  });
});
