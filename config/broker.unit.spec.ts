import { describe, expect, it } from 'vitest';
import { DEFAULT_PARK_AFTER_ATTEMPTS } from '../eventstore/parking.ts';
import { parseBrokerConfig } from './broker.ts';
import { ConfigError } from './env.ts';

describe('FLOWGRAPH_PARK_AFTER_ATTEMPTS', () => {
  it('defaults to DEFAULT_PARK_AFTER_ATTEMPTS (5) when unset or empty', () => {
    expect(DEFAULT_PARK_AFTER_ATTEMPTS).toBe(5);
    expect(parseBrokerConfig({}).parkAfterAttempts).toBe(5);
    expect(parseBrokerConfig({ FLOWGRAPH_PARK_AFTER_ATTEMPTS: '' }).parkAfterAttempts).toBe(5);
  });

  it('reads a positive integer', () => {
    expect(parseBrokerConfig({ FLOWGRAPH_PARK_AFTER_ATTEMPTS: '12' }).parkAfterAttempts).toBe(12);
  });

  it.each(['0', '-1', '2.5', 'many', '1001'])('refuses %j naming the variable', (value) => {
    expect(() => parseBrokerConfig({ FLOWGRAPH_PARK_AFTER_ATTEMPTS: value })).toThrow(ConfigError);
    expect(() => parseBrokerConfig({ FLOWGRAPH_PARK_AFTER_ATTEMPTS: value })).toThrow(/FLOWGRAPH_PARK_AFTER_ATTEMPTS/);
  });
});
