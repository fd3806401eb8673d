/** Parsing of the process configuration: defaults, overrides and fail-fast messages. */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_OPERATION_LIMITS } from '../gateway/operationLimits.ts';
import { ConfigError, subgraphUrlOverridesFromEnv, subgraphUrlVariable } from './env.ts';
import { parseGatewayConfig, REPO_ROOT } from './gatewayConfig.ts';
import { parseServiceConfig } from './serviceConfig.ts';
import { serviceNamed } from './services.ts';
import { parseStartConfig } from './startConfig.ts';

describe('parseStartConfig', () => {
  it('defaults to the documented ports, host, log level and the checked-in supergraph', () => {
    const config = parseStartConfig({});
    expect(config.gateway).toEqual({
      host: '127.0.0.1',
      port: 4000,
      production: false,
      logLevel: 'info',
      supergraphPath: path.join(REPO_ROOT, 'supergraph.graphql'),
      operationLimits: DEFAULT_OPERATION_LIMITS,
      websocketLimits: {
        connectionInitTimeoutMs: 10_000,
        maxSubscriptionsPerConnection: 100,
        maxMessageBytes: 262_144,
        keepAliveIntervalMs: 12_000,
        maxBufferedBytes: 4_194_304,
      },
      corsOrigins: '*',
      subgraphTimeoutMs: 30_000,
    });
    expect(config.services.map((s) => [s.definition.name, s.port])).toEqual([
      ['workflows', 4001],
      ['content', 4002],
      ['knowledge', 4003],
      ['monitoring', 4004],
    ]);
    expect(config.database.adminUrl).toBeUndefined();
    expect(config.database.services.workflows?.url).toBeUndefined();
    expect(config.database.embedded.port).toBe(54329);
  });

  it('takes ports, host, NODE_ENV=production, LOG_LEVEL and database URLs from the environment (empty = default)', () => {
    const config = parseStartConfig({
      HOST: '0.0.0.0',
      GATEWAY_PORT: '4210',
      WORKFLOWS_PORT: '4211',
      NODE_ENV: 'production',
      LOG_LEVEL: 'debug',
      SUPERGRAPH_PATH: '',
      WORKFLOWS_DATABASE_URL: 'postgres://u:p@db:5432/wf',
    });
    expect(config.gateway).toMatchObject({ host: '0.0.0.0', port: 4210, production: true, logLevel: 'debug' });
    expect(config.gateway.supergraphPath).toBe(path.join(REPO_ROOT, 'supergraph.graphql'));
    expect(config.services[0]?.port).toBe(4211);
    expect(config.database.services.workflows?.url).toBe('postgres://u:p@db:5432/wf');
  });

  it('fails fast naming every bad variable', () => {
    let error: unknown;
    try {
      parseStartConfig({ GATEWAY_PORT: 'http', LOG_LEVEL: 'loud', WORKFLOWS_PORT: '70000' });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toContain('GATEWAY_PORT');
    expect(message).toContain('(got "http")');
    expect(message).toContain('LOG_LEVEL');
    expect(() => parseStartConfig({ WORKFLOWS_PORT: '70000' })).toThrow(/WORKFLOWS_PORT/);
  });
});

describe('parseGatewayConfig', () => {
  it('resolves a relative SUPERGRAPH_PATH against the current directory', () => {
    expect(parseGatewayConfig({ SUPERGRAPH_PATH: 'my/supergraph.graphql' }).supergraphPath).toBe(path.resolve('my/supergraph.graphql'));
  });
});

describe('subgraph URL overrides', () => {
  it('names the variable after the subgraph', () => {
    expect(subgraphUrlVariable('workflows')).toBe('WORKFLOWS_URL');
    expect(subgraphUrlVariable('my-reviews')).toBe('MY_REVIEWS_URL');
  });

  it('reads only the subgraphs asked for, and refuses a URL that is not http(s)', () => {
    const env = { WORKFLOWS_URL: 'http://10.0.0.5:4001/graphql', CONTENT_URL: 'http://elsewhere/graphql', KNOWLEDGE_URL: '' };
    expect(subgraphUrlOverridesFromEnv(env, ['workflows', 'knowledge'])).toEqual({ workflows: 'http://10.0.0.5:4001/graphql' });
    expect(() => subgraphUrlOverridesFromEnv({ WORKFLOWS_URL: 'ftp://x' }, ['workflows'])).toThrow(ConfigError);
    expect(() => subgraphUrlOverridesFromEnv({ WORKFLOWS_URL: 'ftp://secret@x' }, ['workflows'])).not.toThrow(/secret/);
  });
});

describe('parseServiceConfig', () => {
  const workflows = serviceNamed('workflows');

  it('requires the service database URL when the service runs alone', () => {
    expect(() => parseServiceConfig({}, workflows)).toThrow(/WORKFLOWS_DATABASE_URL: required to run workflows alone/);
  });

  it('reads the port and the pool settings', () => {
    const config = parseServiceConfig(
      { WORKFLOWS_DATABASE_URL: 'postgres://u:p@h/db', WORKFLOWS_PORT: '4212', WORKFLOWS_DB_POOL_MAX: '3' },
      workflows,
    );
    expect(config).toMatchObject({ host: '127.0.0.1', port: 4212, logLevel: 'info', database: { url: 'postgres://u:p@h/db', poolMax: 3 } });
  });

  it('refuses an unknown service name', () => {
    expect(() => serviceNamed('billing')).toThrow('Unknown service "billing": expected one of workflows, content, knowledge, monitoring');
  });
});
