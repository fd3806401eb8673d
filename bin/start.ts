/**
 * `npm start`: flowgraph in one process (DESIGN.md, "Processes"). Parses the configuration,
 * prepares each service's database (embedded PostgreSQL unless URLs are configured, see
 * `bin/databases.ts`), starts every runnable service of `config/services.ts` on its own port
 * with its own pool, joined by the integration transport (NATS when `NATS_URL` is set, else
 * in-process), then the gateway on the checked-in supergraph with this process's actual
 * subgraph URLs, and prints the gateway URL.
 *
 * Authentication (README, "Authentication"): with GATEWAY_JWT_SECRET / GATEWAY_JWKS_URL /
 * GATEWAY_ANONYMOUS_ROLE unset and NODE_ENV not production, a development secret is generated
 * once into the secrets file (mode 600, beside the database passwords) and a ready-to-use
 * operator token is printed; in production the start is refused without auth configuration.
 *
 * Ctrl-C / SIGTERM stops everything in reverse order (gateway, services, pools, embedded
 * PostgreSQL) and exits 0; a second signal exits at once.
 */
import { readSupergraph } from '../gateway/supergraph.ts';
import { startGateway } from '../gateway/server.ts';
import { ensureWebBuilt } from './build-web.mjs';
import { createAuthenticator } from '../gateway/auth.ts';
import { identitySignerFromEnv, identityVerifierFromEnv } from '../federation/gatewayIdentity.ts';
import { configOrExit, subgraphUrlOverridesFromEnv } from '../config/env.ts';
import { createLogger, logFormatFromEnv } from '../config/logger.ts';
import { readinessTimeoutMsFromEnv } from '../config/serviceConfig.ts';
import { parseStartConfig } from '../config/startConfig.ts';
import { parseMetricsConfig } from '../config/metricsConfig.ts';
import { SERVICES } from '../config/services.ts';
import { createTransport, parseBrokerConfig } from '../config/broker.ts';
import { cursorCodecFor, parseCursorConfig } from '../config/cursorConfig.ts';
import { parseAuthConfig } from '../config/authConfig.ts';
import { DEVELOPMENT_TOKEN_LIFETIME_SECONDS, issueToken, singleProcessAuth } from '../config/authSecrets.ts';
import { prepareServiceDatabases } from './databases.ts';
import { createLifecycle } from './lifecycle.ts';
import { parseTracingConfig, startTracing } from '../observability/tracing.ts';

// Every variable is checked before anything starts (a bad one: its message, exit 2), the
// services' own settings included (their `load` parses them).
const { config, broker, cursors, auth, starters, metrics } = await configOrExit(async () => {
  const config = parseStartConfig(process.env);
  const broker = parseBrokerConfig(process.env);
  // FLOWGRAPH_METRICS: each service's /metrics on its own port, the gateway's (with the process metrics) on the gateway port.
  const metrics = parseMetricsConfig(process.env);
  const cursors = parseCursorConfig(process.env);
  const auth = parseAuthConfig(process.env);
  parseTracingConfig(process.env, 'flowgraph'); // OTEL_*, read again by startTracing
  logFormatFromEnv(process.env); // LOG_FORMAT, read again by createLogger
  readinessTimeoutMsFromEnv(process.env); // FLOWGRAPH_READINESS_TIMEOUT_MS, read again by the HTTP servers
  // The gateway identity keys, when configured, are checked before anything starts.
  if (process.env.FLOWGRAPH_GATEWAY_SIGNING_KEY) identitySignerFromEnv(process.env);
  if (process.env.FLOWGRAPH_GATEWAY_PUBLIC_KEYS) identityVerifierFromEnv(process.env);
  subgraphUrlOverridesFromEnv(process.env, SERVICES.map((service) => service.name));
  const starters = new Map(await Promise.all(config.services.map(async ({ definition }) => [definition.name, await definition.load!()] as const)));
  return { config, broker, cursors, auth, starters, metrics };
});

const logger = createLogger(config.gateway.logLevel);
const lifecycle = createLifecycle(logger);

await lifecycle.start(async () => {
  // Registered first, so closed last: the spans of everything else's shutdown are flushed too.
  const tracing = startTracing(process.env, { defaultServiceName: 'flowgraph', logger });
  lifecycle.defer('tracing', () => tracing.shutdown());
  // The /monitor/ and /graphiql/ pages, built (in a child process) while the databases start.
  // A failed build is logged and the API served without them (the pages answer 503).
  const webBuilt = ensureWebBuilt((line) => logger.info(line)).catch((error: unknown) => {
    logger.error({ err: error }, 'building the /monitor/ and /graphiql/ pages failed: they answer 503');
    return false;
  });
  const { supergraphSdl, subgraphs } = await readSupergraph(config.gateway.supergraphPath);
  const inSupergraph = new Set(subgraphs.map((subgraph) => subgraph.name));
  for (const { definition } of config.services) {
    if (!inSupergraph.has(definition.name)) {
      throw new Error(`${config.gateway.supergraphPath} has no subgraph "${definition.name}": run \`npm run compose\``);
    }
  }

  const pools = await prepareServiceDatabases({
    services: config.services.map((service) => service.definition.name),
    database: config.database,
    logger,
    lifecycle,
  });

  // Integration events: NATS when NATS_URL is set, else in-process (held until every
  // service registered its consumers, so no relay publishes into the void).
  const { transport, open } = await createTransport(
    broker,
    config.services.map((service) => service.definition.name),
    logger.child({ component: 'broker' }),
  );
  lifecycle.defer('integration transport', () => transport.close());
  logger.info({ transport: transport.kind }, 'integration transport ready');

  // FLOWGRAPH_CURSOR_SECRET, or a development key kept beside the database passwords.
  const cursorCodec = await cursorCodecFor(cursors, config.database.secretsFile, 'npm start');
  // Client tokens and the gateway's identity: configured, or development ones kept there too.
  const credentials = await singleProcessAuth(auth, process.env, { secretsFile: config.database.secretsFile, production: config.gateway.production });
  if (credentials.identityKeySource === 'ephemeral') {
    logger.info('FLOWGRAPH_GATEWAY_SIGNING_KEY unset: the gateway identity key lives in this process only (subgraphs elsewhere cannot verify it)');
  }

  // Subgraphs this process does not host keep their supergraph URL unless <NAME>_URL is set.
  const subgraphUrlOverrides = subgraphUrlOverridesFromEnv(process.env, [...inSupergraph]);
  for (const { definition, port } of config.services) {
    const start = starters.get(definition.name)!;
    const service = await start({
      pool: pools[definition.name]!,
      port,
      host: config.gateway.host,
      logger: logger.child({ service: definition.name }),
      transport,
      cursorCodec,
      identityVerifier: credentials.identityVerifier,
      parkAfterAttempts: broker.parkAfterAttempts,
      metrics: { enabled: metrics.enabled },
    });
    lifecycle.defer(`${definition.name} service`, () => service.close());
    subgraphUrlOverrides[definition.name] = service.url;
    logger.info({ service: definition.name, url: service.url }, 'service started');
    lifecycle.throwIfStopping();
  }

  open();
  // Stopped first on shutdown: relays then fail to publish (their batch rolls back and is
  // republished on the next start) instead of publishing to a consumer that already left.
  lifecycle.defer('integration delivery', () => transport.close());

  const pagesBuilt = await webBuilt;
  const gateway = await startGateway({
    supergraphSdl,
    subgraphUrlOverrides,
    port: config.gateway.port,
    host: config.gateway.host,
    production: config.gateway.production,
    operationLimits: config.gateway.operationLimits,
    websocketLimits: config.gateway.websocketLimits,
    authenticate: createAuthenticator(credentials.authConfig, { logger: logger.child({ component: 'auth' }) }),
    identitySigner: credentials.identitySigner,
    metrics: { enabled: metrics.enabled, processMetrics: true },
    logger: logger.child({ component: 'gateway' }),
  });
  lifecycle.defer('gateway', () => gateway.close());
  lifecycle.throwIfStopping();

  const origin = new URL(gateway.url).origin;
  console.log(`flowgraph gateway ready at ${gateway.url} — open it in a browser for Apollo Sandbox (needs internet)`);
  if (pagesBuilt) console.log(`live monitoring: ${origin}/monitor/ · GraphiQL (works offline): ${origin}/graphiql/`);
  if (credentials.development) {
    const { jwtSecret, issuer, audience } = credentials.development;
    const token = await issueToken(jwtSecret, { subject: 'operator', role: 'operator' }, { issuer, audience, lifetimeSeconds: DEVELOPMENT_TOKEN_LIFETIME_SECONDS });
    console.log(
      [
        `development operator token (30 days; the secret is in ${config.database.secretsFile}; \`npm run token -- --role admin\` issues others):`,
        token,
        'Sandbox: Connection settings → Headers: Authorization: Bearer <token>; subscriptions: connectionParams {"authorization":"Bearer <token>"}',
        `curl: curl -H 'authorization: Bearer <token>' -H 'content-type: application/json' -d '{"query":"{ workflows { id } }"}' ${gateway.url}`,
      ].join('\n'),
    );
  }
});
