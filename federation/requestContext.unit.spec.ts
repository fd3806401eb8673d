import { describe, expect, it } from 'vitest';
import { contextFromHeaders } from './requestContext.ts';

const headers = (h: Record<string, string>) => (name: string) => h[name];

describe('contextFromHeaders', () => {
  it('records the gateway-verified actor, the correlation id and a valid traceparent', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const { meta } = contextFromHeaders(headers({ 'x-flowgraph-actor': 'alice', 'x-correlation-id': 'corr-1', traceparent }));
    expect(meta).toMatchObject({ actor: 'alice', correlationId: 'corr-1', traceparent });
    expect(meta.causationId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('defaults the actor to operator and generates a correlation id; drops malformed values', () => {
    const { meta } = contextFromHeaders(headers({ 'x-flowgraph-actor': 'bad actor\n', traceparent: 'nope' }));
    expect(meta.actor).toBe('operator');
    expect(meta.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(meta.traceparent).toBeUndefined();
  });
});
