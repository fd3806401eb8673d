/**
 * Child process of `bench:gateway --peers` (bench/gateway.ts, bench/gatewayPeers.ts): the four
 * subgraph services (workflows, content, knowledge, monitoring) started as `npm start` starts
 * them (the starters of config/services.ts, each on its own pool of its own database, one
 * in-process integration transport), on free ports, and the data the three queries read:
 *
 * - `workflows` workflows in all: one document pipeline (INGEST → EXTRACT → EXTERNAL) and the
 *   rest with 2–4 EXTERNAL steps each;
 * - `documents` runs of the pipeline, each on its own short synthetic text (people, places and
 *   organisations in a few sentences, so knowledge finds entities), driven to COMPLETED: one
 *   document with its entities and relations per run, and a timeline of a dozen or more events;
 * - `runs` runs of the EXTERNAL workflows, their first step completed (RunStarted, StepStarted,
 *   StepCompleted, StepStarted: a few events each), left RUNNING.
 *
 * Every mutation goes to the subgraphs directly, signed as the gateway (operator `bench`). The
 * start resolves once every pipeline run completed and monitoring's event counters stopped
 * moving (so the answers the benchmark checks are stable).
 *
 * Commands (bench/childProcess.ts): `start { urls: { workflows, content, knowledge, monitoring }
 * (database URLs, migrated), workflows, runs, documents }` → `{ subgraphs: { name: GraphQL URL } }`;
 * `profileStart`, `profileStop { file }` (bench/cpuProfile.ts).
 */
import pg from 'pg';
import { createInProcessTransport } from '../broker/in-process.ts';
import { createLogger } from '../config/logger.ts';
import { serviceNamed } from '../config/services.ts';
import { mustGraphQL } from '../federation/testing/graphqlClient.ts';
import { serveBenchCommands } from './childProcess.ts';
import { profileCommands } from './cpuProfile.ts';

const logger = createLogger('warn');
const closers: (() => Promise<void>)[] = [];
const SERVICE_NAMES = ['workflows', 'content', 'knowledge', 'monitoring'] as const;
type ServiceName = (typeof SERVICE_NAMES)[number];

const gql = (url: string, query: string, variables: Record<string, unknown> = {}) =>
  mustGraphQL(url, query, variables, { identity: { subject: 'bench', role: 'operator' } });

const PEOPLE = [
  'Sherlock Holmes', 'John Watson', 'Mary Morstan', 'Irene Adler', 'James Moriarty', 'Elizabeth Bennet', 'Fitzwilliam Darcy',
  'Jane Eyre', 'Edward Rochester', 'Henry Jekyll', 'Edward Hyde', 'Victor Frankenstein', 'Robert Walton', 'Jonathan Harker',
  'Mina Murray', 'Abraham Van Helsing', 'Dorian Gray', 'Basil Hallward', 'Oliver Twist', 'Ebenezer Scrooge',
];
const PLACES = ['London', 'Paris', 'Edinburgh', 'Geneva', 'Vienna', 'Rome', 'Dublin', 'Boston', 'Berlin', 'Madrid', 'Lisbon', 'Venice'];
const ORGANIZATIONS = ['Scotland Yard', 'the Royal Society', 'the British Museum', 'Oxford University', 'the Bank of England'];

/** A short text of document `i`: a few paragraphs naming people and places (deterministic). */
function documentText(i: number): string {
  const pick = <T>(list: readonly T[], k: number) => list[(i * 7 + k * 3) % list.length]!;
  const paragraphs: string[] = [];
  for (let p = 0; p < 6; p++) {
    const a = pick(PEOPLE, p);
    const b = pick(PEOPLE, p + 5);
    const c = pick(PEOPLE, p + 11);
    const place = pick(PLACES, p);
    const other = pick(PLACES, p + 4);
    const org = pick(ORGANIZATIONS, p);
    paragraphs.push(
      `${a} travelled from ${place} to ${other} with ${b} in the spring. ` +
        `In ${other}, ${a} and ${b} met ${c}, who had written to ${org} about the matter. ` +
        `${c} said that ${a} should return to ${place} before the winter, and ${b} agreed.`,
    );
  }
  return paragraphs.join('\n\n');
}

serveBenchCommands(
  {
    async start(args: { urls: Record<ServiceName, string>; workflows: number; runs: number; documents: number }) {
      const transport = createInProcessTransport();
      closers.unshift(() => transport.close());
      const subgraphs = {} as Record<ServiceName, string>;
      for (const name of SERVICE_NAMES) {
        const pool = new pg.Pool({ connectionString: args.urls[name], max: 10 });
        pool.on('error', () => {});
        closers.push(() => pool.end());
        const start = await serviceNamed(name).load!();
        const service = await start({ pool, port: 0, host: '127.0.0.1', logger: logger.child({ service: name }), transport });
        closers.unshift(() => service.close());
        subgraphs[name] = service.url;
      }
      const w = subgraphs.workflows;
      const define = async (input: unknown) => (await gql(w, `mutation($input: DefineWorkflowInput!) { defineWorkflow(input: $input) { id } }`, { input })).defineWorkflow.id as string;
      const pipeline = await define({
        name: 'bench pipeline',
        steps: [
          { name: 'ingest', kind: 'INGEST', timeoutMs: 120_000 },
          { name: 'extract', kind: 'EXTRACT', timeoutMs: 300_000 },
          { name: 'approve', kind: 'EXTERNAL', timeoutMs: 600_000 },
        ],
      });
      const externals: string[] = [];
      for (let i = 1; i < args.workflows; i++) {
        const steps = Array.from({ length: 2 + (i % 3) }, (_, s) => ({ name: `step-${s + 1}`, kind: 'EXTERNAL', timeoutMs: 2_000_000_000 }));
        externals.push(await define({ name: `bench workflow ${i}`, steps }));
      }
      // Pipeline runs, a few at a time (the extractor takes one document at a time anyway).
      const pipelineRuns: string[] = [];
      for (let i = 0; i < args.documents; i++) {
        const { startRun } = await gql(w, `mutation($w: ID!, $input: JSON) { startRun(workflowId: $w, input: $input) { id } }`, {
          w: pipeline,
          input: { title: `bench document ${String(i).padStart(3, '0')}`, text: documentText(i) },
        });
        pipelineRuns.push(startRun.id);
      }
      for (let i = 0; i < args.runs; i++) {
        const { startRun } = await gql(w, `mutation($w: ID!) { startRun(workflowId: $w, input: { i: ${i} }) { id } }`, { w: externals[i % externals.length] });
        await gql(w, `mutation($r: ID!) { completeStep(runId: $r, stepName: "step-1", output: { ok: true }) { id } }`, { r: startRun.id });
      }
      // Drive the pipeline runs: approve each EXTERNAL step once it runs, until all completed.
      const deadline = Date.now() + 300_000;
      const pending = new Set(pipelineRuns);
      while (pending.size > 0) {
        if (Date.now() > deadline) throw new Error(`${pending.size} pipeline runs did not complete within 5 minutes`);
        for (const id of [...pending]) {
          const { run } = await gql(w, `query($id: ID!) { run(id: $id) { status steps { name kind status } } }`, { id });
          if (run.status === 'COMPLETED') pending.delete(id);
          else if (run.status !== 'RUNNING') throw new Error(`pipeline run ${id} ended ${run.status}: ${JSON.stringify(run)}`);
          else if (run.steps.some((s: { name: string; status: string }) => s.name === 'approve' && s.status === 'RUNNING')) {
            await gql(w, `mutation($r: ID!) { completeStep(runId: $r, stepName: "approve", output: { approvedBy: "bench" }) { id } }`, { r: id });
          }
        }
        if (pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      // Wait until monitoring has observed everything (its counters stable for 2 s).
      let last = '';
      let stableSince = Date.now();
      for (;;) {
        const { eventCounters } = await gql(subgraphs.monitoring, `{ eventCounters { total } }`);
        const now = JSON.stringify(eventCounters);
        if (now !== last) {
          last = now;
          stableSince = Date.now();
        } else if (Date.now() - stableSince >= 2_000) break;
        await new Promise((resolve) => setTimeout(resolve, 250));
      }
      return { subgraphs };
    },
    ...profileCommands,
  },
  async () => {
    for (const close of closers.splice(0)) await close().catch(() => {});
  },
);
