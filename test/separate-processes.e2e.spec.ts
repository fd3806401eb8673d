/**
 * flowgraph as docker-compose runs it: every subgraph in its own process (`npm run
 * start:service -- <name>`), with its own database, joined only by NATS JetStream (the
 * machine's, isolated by a namespace), and the gateway alone in front. The document pipeline
 * runs across the processes, and a service restarted mid-run catches up from NATS.
 */
import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { definePipelineWorkflow, runPipeline } from '../client/pipeline.ts';
import { fetchTraceWhen, pipelineTraceComplete } from '../client/trace.ts';
import { streamNameOf } from '../broker/nats.ts';
import { requireCorpus } from '../config/corpus.ts';
import { SERVICES } from '../config/services.ts';
import { testAuthEnv } from './support/auth.ts';
import { createGatewayClient, type GatewayClient } from './support/client.ts';
import { freeServicePorts, freshServiceDatabases, spawnFlowgraph, startServiceAlone, waitForHealth, type FlowgraphProcess } from './support/process.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
/** FLOWGRAPH_CORPUS_DIR or ../shared/corpus, absolute (content reads jekyll-and-hyde.txt there); a missing corpus fails this file with one message. */
const CORPUS_DIR = requireCorpus();
/** The cursor key every service process shares (start:service requires one). */
const CURSOR_SECRET = randomBytes(32).toString('base64');

describe('each service in its own process, joined by NATS', () => {
  const namespace = `e2e${randomBytes(3).toString('hex')}`;
  let databases: { env: Record<string, string>; drop(): Promise<void> };
  let ports: Awaited<ReturnType<typeof freeServicePorts>>;
  const services = new Map<string, FlowgraphProcess>();
  let gateway: FlowgraphProcess;
  let client: GatewayClient;

  const startService = async (name: string) => {
    const proc = await startServiceAlone(name, {
      databases: databases.env,
      ports: ports.env,
      natsUrl: NATS_URL,
      natsNamespace: namespace,
      cursorSecret: CURSOR_SECRET,
      corpusDir: CORPUS_DIR,
    });
    services.set(name, proc);
    return proc;
  };

  beforeAll(async () => {
    databases = await freshServiceDatabases('e2e_separate');
    ports = await freeServicePorts();
    for (const service of SERVICES) await startService(service.name);
    gateway = spawnFlowgraph('start-service.ts', ['gateway'], {
      NODE_ENV: 'development',
      LOG_LEVEL: 'warn',
      GATEWAY_PORT: ports.env.GATEWAY_PORT,
      ...testAuthEnv(),
      ...Object.fromEntries(SERVICES.map((s) => [`${s.envPrefix}_URL`, `http://127.0.0.1:${ports.env[`${s.envPrefix}_PORT`]}/graphql`])),
    });
    await waitForHealth(ports.gatewayBase, gateway, 120_000);
    client = createGatewayClient(`${ports.gatewayBase}/graphql`);
  }, 300_000);

  afterAll(async () => {
    await gateway?.kill();
    for (const proc of services.values()) await proc.kill();
    await databases?.drop();
    const nc = await connect({ servers: NATS_URL });
    const jsm = await jetstreamManager(nc);
    for (const service of SERVICES) await jsm.streams.delete(streamNameOf(service.name, namespace)).catch(() => {});
    await nc.close();
  });

  it('runs the pipeline across the processes; knowledge restarted mid-run catches up from NATS', async () => {
    const workflowId = await definePipelineWorkflow(client, 'separate processes');
    // Knowledge is down when the run starts: content's chunks and the EXTRACT step wait in NATS.
    expect(await services.get('knowledge')!.stop()).toEqual({ code: 0, signal: null });
    const running = runPipeline(client, workflowId, 'jekyll-and-hyde.txt', { timeoutMs: 180_000 });
    await new Promise((resolve) => setTimeout(resolve, 3000));
    await startService('knowledge');
    const result = await running;
    expect(result.status).toBe('COMPLETED');
    expect(result.steps.map((s) => s.status)).toEqual(['COMPLETED', 'COMPLETED', 'COMPLETED']);
    expect(result.chunkCount).toBeGreaterThan(50);
    expect(result.entityCount).toBeGreaterThan(10);
    const trace = await fetchTraceWhen(client, result.correlationId, pipelineTraceComplete(result.chunkCount), { first: 10_000 });
    expect(trace?.sources).toEqual(['content', 'knowledge', 'workflows']);
    expect(trace!.events.filter((e) => e.event.type === 'DocumentChunked')).toHaveLength(result.chunkCount!);
    // Nothing observed twice although knowledge's consumers were redelivered to after the restart.
    expect(new Set(trace!.events.map((e) => e.event.eventId)).size).toBe(trace!.events.length);
  }, 240_000);

  it('stops every process cleanly on SIGTERM', async () => {
    expect(await gateway.stop()).toEqual({ code: 0, signal: null });
    for (const [name, proc] of services) expect(await proc.stop(), name).toEqual({ code: 0, signal: null });
  });
});
