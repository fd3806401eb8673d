import { describe, expect, it } from 'vitest';
import { parseWorkflowsSettings } from './config.ts';

describe('parseWorkflowsSettings', () => {
  it('defaults the deadline scan interval to 1000 ms', () => {
    expect(parseWorkflowsSettings({})).toEqual({ deadlineScanIntervalMs: 1000 });
    expect(parseWorkflowsSettings({ WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS: '' })).toEqual({ deadlineScanIntervalMs: 1000 });
  });

  it('reads WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS', () => {
    expect(parseWorkflowsSettings({ WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS: '250' })).toEqual({ deadlineScanIntervalMs: 250 });
  });

  it.each(['abc', '0', '1.5', '99999999'])('fails fast on %j, naming the variable', (value) => {
    expect(() => parseWorkflowsSettings({ WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS: value })).toThrow(/WORKFLOWS_DEADLINE_SCAN_INTERVAL_MS/);
  });
});
