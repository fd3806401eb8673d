/**
 * Child of `bench:gateway` (bench/gateway.ts): one flowgraph gateway (`startGateway` on the
 * checked-in supergraph) with authentication ON (the parent's `GATEWAY_JWT_SECRET`, issuer and
 * audience: every request's bearer token verified) or in anonymous mode (no client token
 * verified, every caller `anonymous` with the role operator). Both sign the gateway identity
 * for the subgraphs with `FLOWGRAPH_GATEWAY_SIGNING_KEY`: the subgraphs verify it either way.
 * `dedupeInFlight: false` (bench:gateway --peers, target `flowgraph-nodedupe`) turns off the
 * merging of identical in-flight subgraph fetches (gateway/server.ts `dedupeInFlight`).
 */
import { parseAuthConfig } from '../config/authConfig.ts';
import { createLogger } from '../config/logger.ts';
import { createAuthenticator } from '../gateway/auth.ts';
import { startGateway } from '../gateway/server.ts';
import { serveBenchCommands } from './childProcess.ts';
import { startTracing } from '../observability/tracing.ts';
import { profileCommands } from './cpuProfile.ts';

let close: (() => Promise<void>) | undefined;

// Tracing as the composition roots start it: on when OTEL_EXPORTER_OTLP_ENDPOINT is set (bench:gateway --observability), else off.
const tracing = startTracing(process.env, { defaultServiceName: 'bench-gateway' });

serveBenchCommands(
  {
    async start(args: { auth: 'on' | 'anonymous'; supergraphSdl: string; urls: Record<string, string>; dedupeInFlight?: boolean }) {
      const logger = createLogger('warn');
      const authConfig =
        args.auth === 'on'
          ? parseAuthConfig(process.env)
          : { roleClaim: 'role', clockToleranceSeconds: 5, anonymousRole: 'operator' as const };
      const gateway = await startGateway({
        supergraphSdl: args.supergraphSdl,
        subgraphUrlOverrides: args.urls,
        port: 0,
        host: '127.0.0.1',
        authenticate: createAuthenticator(authConfig),
        logger,
        ...(args.dedupeInFlight === false ? { dedupeInFlight: false } : {}),
      });
      close = () => gateway.close();
      return { url: gateway.url };
    },
    ...profileCommands,
  },
  async () => {
    await close?.();
    await tracing.shutdown();
  },
);
