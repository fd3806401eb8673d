/** `FLOWGRAPH_READINESS_TIMEOUT_MS` (config/serviceConfig.ts readinessTimeoutMsFromEnv). */
import { describe, expect, it } from 'vitest';
import { ConfigError } from './env.ts';
import { readinessTimeoutMsFromEnv } from './serviceConfig.ts';

describe('FLOWGRAPH_READINESS_TIMEOUT_MS', () => {
  it('defaults to 2000 ms (unset or empty) and takes an integer 1..60000', () => {
    expect(readinessTimeoutMsFromEnv({})).toBe(2000);
    expect(readinessTimeoutMsFromEnv({ FLOWGRAPH_READINESS_TIMEOUT_MS: '' })).toBe(2000);
    expect(readinessTimeoutMsFromEnv({ FLOWGRAPH_READINESS_TIMEOUT_MS: '500' })).toBe(500);
    expect(readinessTimeoutMsFromEnv({ FLOWGRAPH_READINESS_TIMEOUT_MS: '60000' })).toBe(60_000);
  });

  it.each(['0', '-1', '1.5', 'soon', '60001', '1e9'])('refuses %j with a ConfigError naming the variable', (value) => {
    expect(() => readinessTimeoutMsFromEnv({ FLOWGRAPH_READINESS_TIMEOUT_MS: value })).toThrow(ConfigError);
    expect(() => readinessTimeoutMsFromEnv({ FLOWGRAPH_READINESS_TIMEOUT_MS: value })).toThrow(/FLOWGRAPH_READINESS_TIMEOUT_MS/);
  });
});
