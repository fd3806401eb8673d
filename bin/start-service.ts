/**
 * `npm run start:service -- <name>`: one part of flowgraph alone, as docker-compose and
 * production run it (DESIGN.md, "Processes").
 *
 * - `gateway`: the gateway on `SUPERGRAPH_PATH` (default `./supergraph.graphql`), subgraph URLs
 *   from the file, each overridable with `<NAME>_URL` (e.g. `WORKFLOWS_URL`). Works with any
 *   Federation 2 supergraph, including operators' own subgraphs. Needs client-token
 *   configuration (`GATEWAY_JWT_SECRET` or `GATEWAY_JWKS_URL`, or `GATEWAY_ANONYMOUS_ROLE`) and
 *   `FLOWGRAPH_GATEWAY_SIGNING_KEY` (no development defaults: `npm run keys` prints them).
 * - a service of `config/services.ts` (e.g. `workflows`): needs `<PREFIX>_DATABASE_URL`,
 *   `NATS_URL` (services in separate processes talk through NATS JetStream) and
 *   `FLOWGRAPH_CURSOR_SECRET` (every instance signs subscription cursors with the same keys) and
 *   `FLOWGRAPH_GATEWAY_PUBLIC_KEYS` (it answers only requests the gateway signed);
 *   applies the service's migrations, then serves its subgraph on `<PREFIX>_PORT`.
 *
 * SIGINT/SIGTERM stop it cleanly (exit 0); a second signal exits at once.
 */
import { subgraphUrlOverridesFromEnv } from '../config/env.ts';
import { parseGatewayConfig } from '../config/gatewayConfig.ts';
import { createLogger, logFormatFromEnv } from '../config/logger.ts';
import { parseServiceConfig, readinessTimeoutMsFromEnv } from '../config/serviceConfig.ts';
import { SERVICES, serviceNamed } from '../config/services.ts';
import { createServicePool } from '../config/database.ts';
import { migrateServiceDatabase } from '../db/migrate.ts';
import { startGateway } from '../gateway/server.ts';
import { ensureWebBuilt } from './build-web.mjs';
import { readSupergraph } from '../gateway/supergraph.ts';
import { createLifecycle } from './lifecycle.ts';
import { parseTracingConfig, startTracing } from '../observability/tracing.ts';
import { createTransport, parseBrokerConfig } from '../config/broker.ts';
import { ConfigError, configOrExit } from '../config/env.ts';
import { cursorCodecFor, parseCursorConfig } from '../config/cursorConfig.ts';
import { identitySignerFromEnv, identityVerifierFromEnv } from '../federation/gatewayIdentity.ts';
import { parseAuthConfig } from '../config/authConfig.ts';
import { parseMetricsConfig } from '../config/metricsConfig.ts';
import { createAuthenticator } from '../gateway/auth.ts';

const usage = `usage: npm run start:service -- <gateway|${SERVICES.map((s) => s.name).join('|')}>`;
const name = process.argv[2];
if (!name || process.argv.length > 3) {
  console.error(usage);
  process.exit(2);
}

if (name === 'gateway') await runGateway();
else await runService(name);

async function runGateway(): Promise<void> {
  const { config, authConfig, identitySigner, metrics } = await configOrExit(() => {
    const config = parseGatewayConfig(process.env);
    // Checked again below for the supergraph's own subgraph names.
    subgraphUrlOverridesFromEnv(process.env, SERVICES.map((service) => service.name));
    const authConfig = parseAuthConfig(process.env);
    parseTracingConfig(process.env, 'gateway'); // OTEL_*, read again by startTracing
    logFormatFromEnv(process.env); // LOG_FORMAT
    readinessTimeoutMsFromEnv(process.env); // FLOWGRAPH_READINESS_TIMEOUT_MS
    const metrics = parseMetricsConfig(process.env);
    // The single variables above first: then whether they make a usable gateway together.
    createAuthenticator(authConfig); // throws the ConfigError of an unconfigured gateway
    return { config, authConfig, identitySigner: identitySignerFromEnv(process.env), metrics };
  });
  const logger = createLogger(config.logLevel);
  const lifecycle = createLifecycle(logger);
  await lifecycle.start(async () => {
    // Registered first, so closed last (flushes the spans of the shutdown too).
    const tracing = startTracing(process.env, { defaultServiceName: 'gateway', logger });
    lifecycle.defer('tracing', () => tracing.shutdown());
    const { supergraphSdl, subgraphs } = await readSupergraph(config.supergraphPath);
    // The /monitor/ and /graphiql/ pages: built when stale in a source tree, as they are in npm run build's.
    const pagesBuilt = await ensureWebBuilt((line) => logger.info(line)).catch((error: unknown) => {
      logger.error({ err: error }, 'building the /monitor/ and /graphiql/ pages failed: they answer 503');
      return false;
    });
    const gateway = await startGateway({
      supergraphSdl,
      subgraphUrlOverrides: subgraphUrlOverridesFromEnv(process.env, subgraphs.map((subgraph) => subgraph.name)),
      port: config.port,
      host: config.host,
      production: config.production,
      operationLimits: config.operationLimits,
      websocketLimits: config.websocketLimits,
      authenticate: createAuthenticator(authConfig, { logger: logger.child({ component: 'auth' }) }),
      identitySigner,
      metrics: { enabled: metrics.enabled, processMetrics: true },
      logger: logger.child({ component: 'gateway' }),
    });
    lifecycle.defer('gateway', () => gateway.close());
    lifecycle.throwIfStopping();
    console.log(`flowgraph gateway ready at ${gateway.url} (supergraph ${config.supergraphPath})`);
    if (pagesBuilt) console.log(`live monitoring: ${new URL(gateway.url).origin}/monitor/ · GraphiQL: ${new URL(gateway.url).origin}/graphiql/`);
  });
}

async function runService(serviceName: string): Promise<void> {
  let definition;
  let config;
  let broker;
  let metrics;
  let cursorCodec;
  let identityVerifier;
  let start;
  try {
    definition = serviceNamed(serviceName);
    if (!definition.load) throw new Error(`Service "${serviceName}" is not built yet`);
    config = parseServiceConfig(process.env, definition);
    broker = parseBrokerConfig(process.env);
    parseTracingConfig(process.env, serviceName); // OTEL_*, read again by startTracing
    metrics = parseMetricsConfig(process.env);
    logFormatFromEnv(process.env); // LOG_FORMAT
    readinessTimeoutMsFromEnv(process.env); // FLOWGRAPH_READINESS_TIMEOUT_MS
    if (!broker.natsUrl) {
      throw new ConfigError(`invalid configuration:\n  NATS_URL: required to run ${serviceName} alone (got unset); services in separate processes exchange integration events through NATS JetStream`);
    }
    cursorCodec = await cursorCodecFor(parseCursorConfig(process.env), undefined, `${serviceName} alone`);
    identityVerifier = identityVerifierFromEnv(process.env);
    // Parses the service's own settings (e.g. FLOWGRAPH_CORPUS_DIR) before anything starts.
    start = await definition.load();
  } catch (error) {
    console.error(`${(error as Error).message}\n${usage}`);
    process.exit(2);
  }
  const logger = createLogger(config.logLevel).child({ service: definition.name });
  const lifecycle = createLifecycle(logger);
  await lifecycle.start(async () => {
    // Registered first, so closed last (flushes the spans of the shutdown too).
    const tracing = startTracing(process.env, { defaultServiceName: definition.name, logger });
    lifecycle.defer('tracing', () => tracing.shutdown());
    const pool = createServicePool(config.database, logger);
    lifecycle.defer('database pool', () => pool.end());
    const { applied } = await migrateServiceDatabase(pool, { service: definition.name, logger });
    logger.info({ applied }, applied.length ? 'migrations applied' : 'database up to date');
    lifecycle.throwIfStopping();
    const { transport } = await createTransport(broker, [definition.name], logger.child({ component: 'broker' }));
    lifecycle.defer('integration transport', () => transport.close());
    const service = await start({ pool, port: config.port, host: config.host, logger, transport, cursorCodec, identityVerifier, parkAfterAttempts: broker.parkAfterAttempts, metrics: { enabled: metrics.enabled, processMetrics: true } });
    lifecycle.defer('service', () => service.close());
    lifecycle.throwIfStopping();
    console.log(`flowgraph ${definition.name} subgraph ready at ${service.url}`);
  });
}
