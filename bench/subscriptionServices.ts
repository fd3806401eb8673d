/**
 * Child process of `bench:subscriptions`: the two subgraph services the workload touches,
 * started as `npm start` starts them (`startWorkflowsService`, `startMonitoringService`, each on
 * its own pool of its own database, one in-process integration transport), on free ports.
 * Commands (bench/childProcess.ts):
 * - `start { workflowsUrl, monitoringUrl }` (database URLs, already migrated) → `{ workflows, monitoring }`
 *   (their GraphQL URLs); defines a workflow with one EXTERNAL step and starts `runs` runs of it
 *   (they stay RUNNING), → `runIds` too.
 * - `profileStart`, `profileStop { file }`: a CPU profile of the measured window (bench/cpuProfile.ts).
 * The content and knowledge subgraphs are not started: nothing of the workload reaches them.
 */
import pg from 'pg';
import { createInProcessTransport } from '../broker/in-process.ts';
import { createLogger } from '../config/logger.ts';
import { mustGraphQL } from '../federation/testing/graphqlClient.ts';
import { startMonitoringService } from '../subgraphs/monitoring/service.ts';
import { startWorkflowsService } from '../subgraphs/workflows/service.ts';
import { serveBenchCommands } from './childProcess.ts';
import { startTracing } from '../observability/tracing.ts';
import { profileCommands } from './cpuProfile.ts';

const logger = createLogger('warn');
const closers: (() => Promise<void>)[] = [];

/** Subgraphs trust only the gateway: the bench signs as it (`FLOWGRAPH_GATEWAY_SIGNING_KEY`, operator `bench`). */
const gql = (url: string, query: string, variables: Record<string, unknown> = {}) =>
  mustGraphQL(url, query, variables, { identity: { subject: 'bench', role: 'operator' } });

// Tracing as the composition roots start it: on when OTEL_EXPORTER_OTLP_ENDPOINT is set (bench:gateway --observability), else off.
const tracing = startTracing(process.env, { defaultServiceName: 'bench-services' });

serveBenchCommands(
  {
    async start(args: { workflowsUrl: string; monitoringUrl: string; runs: number }) {
      const transport = createInProcessTransport();
      closers.unshift(() => transport.close());
      const pools = [args.workflowsUrl, args.monitoringUrl].map((url) => {
        const pool = new pg.Pool({ connectionString: url, max: 10 });
        pool.on('error', () => {});
        closers.push(() => pool.end());
        return pool;
      });
      const workflows = await startWorkflowsService({ pool: pools[0]!, port: 0, host: '127.0.0.1', logger: logger.child({ service: 'workflows' }), transport });
      closers.unshift(() => workflows.close());
      const monitoring = await startMonitoringService({ pool: pools[1]!, port: 0, host: '127.0.0.1', logger: logger.child({ service: 'monitoring' }), transport });
      closers.unshift(() => monitoring.close());
      const { defineWorkflow } = await gql(workflows.url, `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`, {
        input: { name: 'bench', steps: [{ name: 'wait', kind: 'EXTERNAL', timeoutMs: 2_000_000_000 }] },
      });
      const runIds: string[] = [];
      for (let i = 0; i < args.runs; i++) {
        const { startRun } = await gql(workflows.url, `mutation($w: ID!) { startRun(workflowId: $w, input: { i: ${i} }) { id status } }`, { w: defineWorkflow.id });
        runIds.push(startRun.id);
      }
      return { workflows: workflows.url, monitoring: monitoring.url, runIds };
    },
    ...profileCommands,
  },
  async () => {
    for (const close of closers.splice(0)) await close().catch(() => {});
    await tracing.shutdown();
  },
);
