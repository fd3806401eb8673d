/**
 * The traced test stack of `test/tracing*.int.spec.ts`: the gateway, the workflows and the
 * monitoring services in this process on fresh databases, joined by the in-process transport
 * or by NATS JetStream (a namespace of their own, removed on close).
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { pino } from 'pino';
import { createInProcessTransport } from '../../broker/in-process.ts';
import { createNatsTransport, streamNameOf } from '../../broker/nats.ts';
import { migrateServiceDatabase } from '../../db/migrate.ts';
import { createTestDatabase, type TestDatabase } from '../../db/testing.ts';
import type { IntegrationTransport } from '../../eventstore/index.ts';
import type { SubgraphService } from '../../federation/subgraphService.ts';
import { testLogger } from '../../federation/testing/graphqlClient.ts';
import { startGateway, type RunningGateway } from '../../gateway/server.ts';
import { startMonitoringService } from '../../subgraphs/monitoring/service.ts';
import { startWorkflowsService } from '../../subgraphs/workflows/service.ts';
import { createGatewayClient, type GatewayClient } from './client.ts';

const NATS_URL = process.env.NATS_URL ?? 'nats://127.0.0.1:4222';
const SUPERGRAPH = new URL('../../supergraph.graphql', import.meta.url);

/** A started stack; `close()` stops everything and drops the databases. */
export interface Stack {
  workflowsDb: TestDatabase;
  monitoringDb: TestDatabase;
  transport: IntegrationTransport;
  workflows: SubgraphService;
  monitoring: SubgraphService;
  gateway: RunningGateway;
  client: GatewayClient;
  /** Idempotent. */
  close(): Promise<void>;
}

/** Starts the stack over `kind`; `label` names its databases. */
export async function startStack(kind: 'in-process' | 'nats', label: string): Promise<Stack> {
  const namespace = `trace_${randomUUID().slice(0, 8)}`;
  const workflowsDb = await createTestDatabase(`${label}_workflows`);
  const monitoringDb = await createTestDatabase(`${label}_monitoring`);
  await migrateServiceDatabase(workflowsDb.pool, { service: 'workflows' });
  await migrateServiceDatabase(monitoringDb.pool, { service: 'monitoring' });
  const transport =
    kind === 'nats'
      ? await createNatsTransport({ url: NATS_URL, sources: ['workflows', 'content', 'knowledge'], namespace })
      : createInProcessTransport();
  const relaySubscription = { pollIntervalMs: 50 };
  const monitoring = await startMonitoringService({ pool: monitoringDb.pool, port: 0, logger: testLogger, transport });
  const workflows = await startWorkflowsService({ pool: workflowsDb.pool, port: 0, logger: testLogger, transport, relaySubscription });
  const gateway = await startGateway({
    supergraphSdl: await readFile(SUPERGRAPH, 'utf8'),
    subgraphUrlOverrides: { workflows: workflows.url, monitoring: monitoring.url },
    port: 0,
    logger: pino({ level: 'silent' }),
  });
  const client = createGatewayClient(gateway.url, { identity: { subject: 'alice', role: 'operator' } });
  let closing: Promise<void> | undefined;
  return {
    workflowsDb,
    monitoringDb,
    transport,
    workflows,
    monitoring,
    gateway,
    client,
    close: () =>
      (closing ??= (async () => {
      await gateway.close();
      await workflows.close();
      await monitoring.close();
      await transport.close();
      if (kind === 'nats') {
        const nc = await connect({ servers: NATS_URL });
        const jsm = await jetstreamManager(nc);
        for (const source of ['workflows', 'content', 'knowledge']) await jsm.streams.delete(streamNameOf(source, namespace)).catch(() => {});
        await nc.close();
      }
      await workflowsDb.drop();
      await monitoringDb.drop();
    })()),
  };
}

/** A workflow with one EXTERNAL step (its run waits: nothing but RunStarted and StepStarted is appended). */
export async function defineWorkflow(client: GatewayClient): Promise<string> {
  const { defineWorkflow } = await client.mustQuery<{ defineWorkflow: { id: string } }>(
    `mutation { defineWorkflow(input: { name: "traced", steps: [{ name: "review", kind: EXTERNAL, timeoutMs: 600000 }] }) { id } }`,
  );
  return defineWorkflow.id;
}

/** `startRun` of `workflowId` sent with `headers`; throws on errors. */
export async function startRunWith(client: GatewayClient, workflowId: string, headers: Record<string, string>): Promise<{ id: string }> {
  const result = await client.query<{ startRun: { id: string } }>('mutation($w: ID!) { startRun(workflowId: $w) { id } }', { w: workflowId }, { headers });
  if (!result.data?.startRun) throw new Error(`startRun failed: ${JSON.stringify(result.errors)}`);
  return result.data.startRun;
}
