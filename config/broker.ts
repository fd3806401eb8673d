/**
 * Configuration of the integration-event transport (DESIGN.md, "Broker"): NATS JetStream when
 * `NATS_URL` is set, else (one process only) the in-process transport.
 */
import { z } from 'zod';
import { createInProcessTransport, type InProcessTransport } from '../broker/in-process.ts';
import { createNatsTransport } from '../broker/nats.ts';
import type { IntegrationTransport } from '../eventstore/integration.ts';
import type { Logger } from '../eventstore/logger.ts';
import { DEFAULT_PARK_AFTER_ATTEMPTS } from '../eventstore/parking.ts';
import { parseEnv } from './env.ts';

/** Settings of the broker. */
export interface BrokerConfig {
  /** `NATS_URL`, e.g. `nats://127.0.0.1:4222` (comma-separated for a cluster). Unset: in-process. */
  natsUrl: string | undefined;
  /** `NATS_NAMESPACE`: isolates a deployment on a shared NATS (stream/subject prefix). Unset: none. */
  namespace: string | undefined;
  /** `FLOWGRAPH_PARK_AFTER_ATTEMPTS`: failed attempts after which a consumer parks an integration event (eventstore/parking.ts). @default 5 */
  parkAfterAttempts: number;
}

const natsUrlVar = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z
    .string()
    .refine((value) => value.split(',').every((part) => /^(nats|tls|ws|wss):\/\/[^\s]+$/.test(part.trim())), 'expected nats://host:port (comma-separated for several)')
    .optional(),
);
const parkAfterAttemptsVar = z.preprocess((v) => (v === '' ? undefined : v), z.coerce.number().int().min(1).max(1000).default(DEFAULT_PARK_AFTER_ATTEMPTS));
const namespaceVar = z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^[A-Za-z0-9_-]{1,32}$/, 'expected 1-32 letters, digits, _ or -').optional());

/** @throws ConfigError naming the bad variable */
export function parseBrokerConfig(env: NodeJS.ProcessEnv): BrokerConfig {
  const v = parseEnv(env, { NATS_URL: natsUrlVar, NATS_NAMESPACE: namespaceVar, FLOWGRAPH_PARK_AFTER_ATTEMPTS: parkAfterAttemptsVar });
  return { natsUrl: v.NATS_URL, namespace: v.NATS_NAMESPACE, parkAfterAttempts: v.FLOWGRAPH_PARK_AFTER_ATTEMPTS };
}

/**
 * The transport of a process hosting `sources`. In-process transports start paused: call
 * `open()` once every service of the process registered its consumers, so that no relay
 * publishes before the consumers it must reach exist.
 * @throws when NATS_URL is set and NATS does not answer
 */
export async function createTransport(
  config: BrokerConfig,
  sources: readonly string[],
  logger: Logger,
): Promise<{ transport: IntegrationTransport; open(): void }> {
  if (config.natsUrl) {
    const transport = await createNatsTransport({ url: config.natsUrl, sources, namespace: config.namespace, logger });
    return { transport, open() {} };
  }
  const transport: InProcessTransport = createInProcessTransport({ paused: true });
  return { transport, open: () => transport.open() };
}
