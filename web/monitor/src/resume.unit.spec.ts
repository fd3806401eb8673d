import { describe, expect, it } from 'vitest';
import { RESUME_MAX_MS, RESUME_MIN_MS, resumeDelayMs, resumptionAfter } from './resume.ts';

describe('resumptionAfter', () => {
  it('retries transient errors, unknown codes, no code and a complete from the gateway', () => {
    for (const code of ['SERVICE_UNAVAILABLE', 'INTERNAL_SERVER_ERROR', 'GATEWAY_NOT_READY', 'SOMETHING_NEW', undefined, 'complete']) {
      expect(resumptionAfter(code), String(code)).toBe('retry');
    }
  });

  it('starts over without a cursor the gateway will not resume from', () => {
    expect(resumptionAfter('CURSOR_EXPIRED')).toBe('restart');
    expect(resumptionAfter('INVALID_CURSOR')).toBe('restart');
  });

  it('stays ended when asking again would be refused again', () => {
    for (const code of ['FORBIDDEN', 'UNAUTHENTICATED', 'BAD_USER_INPUT', 'GRAPHQL_VALIDATION_FAILED', 'GRAPHQL_PARSE_FAILED', 'NOT_FOUND', 'OPERATION_LIMIT_EXCEEDED']) {
      expect(resumptionAfter(code), code).toBe('stop');
    }
  });
});

describe('resumeDelayMs', () => {
  it('doubles from 500 ms up to 30 s, jittered by ±25 %', () => {
    expect(resumeDelayMs(0, 0.5)).toBe(RESUME_MIN_MS);
    expect(resumeDelayMs(1, 0.5)).toBe(1000);
    expect(resumeDelayMs(5, 0.5)).toBe(16_000);
    expect(resumeDelayMs(6, 0.5)).toBe(RESUME_MAX_MS);
    expect(resumeDelayMs(1000, 0.5)).toBe(RESUME_MAX_MS);
    expect(resumeDelayMs(0, 0)).toBe(375);
    expect(resumeDelayMs(0, 0.999999)).toBe(625);
    expect(resumeDelayMs(10, 0)).toBe(22_500);
  });

  it('refuses an attempt that is not a non-negative integer', () => {
    for (const attempt of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => resumeDelayMs(attempt), String(attempt)).toThrow(RangeError);
    }
  });
});
