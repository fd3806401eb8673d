/** The gateway's variables of issue 11: `GATEWAY_CORS_ORIGINS`, `GATEWAY_SUBGRAPH_TIMEOUT_MS`, `GATEWAY_MAX_DOCUMENT_BYTES`. */
import { SubgraphDataSource } from '../gateway/subgraphDataSource.ts';
import { describe, expect, it } from 'vitest';
import { ConfigError } from './env.ts';
import { corsOriginsFromEnv, parseGatewayConfig, subgraphTimeoutMsFromEnv } from './gatewayConfig.ts';

describe('GATEWAY_CORS_ORIGINS', () => {
  it('allows any origin in development when unset or empty (Apollo Sandbox), and only the gateway\'s own with NODE_ENV=production', () => {
    expect(corsOriginsFromEnv({})).toBe('*');
    expect(corsOriginsFromEnv({ GATEWAY_CORS_ORIGINS: '' })).toBe('*');
    expect(corsOriginsFromEnv({ NODE_ENV: 'production' })).toEqual([]);
    expect(parseGatewayConfig({ NODE_ENV: 'production' }).corsOrigins).toEqual([]);
  });

  it('reads *, same-origin and a comma-separated list of origins, normalised as browsers send Origin', () => {
    expect(corsOriginsFromEnv({ NODE_ENV: 'production', GATEWAY_CORS_ORIGINS: '*' })).toBe('*');
    expect(corsOriginsFromEnv({ GATEWAY_CORS_ORIGINS: 'same-origin' })).toEqual([]);
    expect(corsOriginsFromEnv({ GATEWAY_CORS_ORIGINS: ' https://App.Example:443/ , http://localhost:3000,https://app.example' })).toEqual([
      'https://app.example',
      'http://localhost:3000',
    ]);
  });

  it('refuses an entry that is not an http(s) origin with a ConfigError naming the variable', () => {
    for (const value of ['app.example', 'https://app.example/graphql', 'ftp://app.example', 'https://user:pw@app.example', 'https://a.example,,']) {
      expect(() => corsOriginsFromEnv({ GATEWAY_CORS_ORIGINS: value }), value).toThrow(ConfigError);
      expect(() => corsOriginsFromEnv({ GATEWAY_CORS_ORIGINS: value }), value).toThrow(/GATEWAY_CORS_ORIGINS/);
    }
  });
});

describe('GATEWAY_SUBGRAPH_TIMEOUT_MS', () => {
  it('defaults to 30 000 ms, 0 turns it off, and anything but a non-negative integer is a ConfigError naming it', () => {
    expect(subgraphTimeoutMsFromEnv({})).toBe(30_000);
    expect(parseGatewayConfig({}).subgraphTimeoutMs).toBe(30_000);
    expect(subgraphTimeoutMsFromEnv({ GATEWAY_SUBGRAPH_TIMEOUT_MS: '0' })).toBe(0);
    expect(subgraphTimeoutMsFromEnv({ GATEWAY_SUBGRAPH_TIMEOUT_MS: '5000' })).toBe(5000);
    for (const value of ['-1', '1.5', 'soon']) {
      expect(() => subgraphTimeoutMsFromEnv({ GATEWAY_SUBGRAPH_TIMEOUT_MS: value }), value).toThrow(/GATEWAY_SUBGRAPH_TIMEOUT_MS/);
    }
  });

  it('refuses a timeout beyond 2^31 - 1 ms, which Node\'s timers would fire after 1 ms (every subgraph call would time out)', () => {
    expect(subgraphTimeoutMsFromEnv({ GATEWAY_SUBGRAPH_TIMEOUT_MS: String(2 ** 31 - 1) })).toBe(2 ** 31 - 1);
    expect(() => subgraphTimeoutMsFromEnv({ GATEWAY_SUBGRAPH_TIMEOUT_MS: '3000000000' })).toThrow(/GATEWAY_SUBGRAPH_TIMEOUT_MS/);
    expect(() => parseGatewayConfig({ GATEWAY_SUBGRAPH_TIMEOUT_MS: '3000000000' })).toThrow(/GATEWAY_SUBGRAPH_TIMEOUT_MS/);
    expect(() => new SubgraphDataSource({ name: 'workflows', url: 'http://127.0.0.1:1/graphql', timeoutMs: 2 ** 31 })).toThrow(RangeError);
  });
});

describe('GATEWAY_MAX_DOCUMENT_BYTES', () => {
  it('defaults to 64 KiB and is read like the other operation limits', () => {
    expect(parseGatewayConfig({}).operationLimits.maxDocumentBytes).toBe(65_536);
    expect(parseGatewayConfig({ GATEWAY_MAX_DOCUMENT_BYTES: '1024' }).operationLimits.maxDocumentBytes).toBe(1024);
    expect(() => parseGatewayConfig({ GATEWAY_MAX_DOCUMENT_BYTES: 'big' })).toThrow(/GATEWAY_MAX_DOCUMENT_BYTES/);
  });
});
