import { describe, expect, it } from 'vitest';
import { contextFromIdentity, requireRole } from './requestContext.ts';

const headers = (h: Record<string, string>) => (name: string) => h[name];

describe('contextFromIdentity', () => {
  it('records the verified subject and role, the correlation id and a valid traceparent', () => {
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const { meta } = contextFromIdentity({ subject: 'alice', role: 'operator' }, headers({ 'x-correlation-id': 'corr-1', traceparent }));
    expect(meta).toMatchObject({ actor: 'alice', actorRole: 'operator', correlationId: 'corr-1', traceparent });
    expect(meta.causationId).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('never takes the actor from a header; generates a correlation id; drops malformed values', () => {
    const { meta } = contextFromIdentity({ subject: 'bob', role: 'viewer' }, headers({ 'x-flowgraph-actor': 'mallory', 'x-correlation-id': 'bad id\n', traceparent: 'nope' }));
    expect(meta.actor).toBe('bob');
    expect(meta.actorRole).toBe('viewer');
    expect(meta.correlationId).toMatch(/^[0-9a-f-]{36}$/);
    expect(meta.traceparent).toBeUndefined();
  });
});

describe('requireRole', () => {
  it('refuses a lesser role with FORBIDDEN and admits an equal or greater one', () => {
    const viewer = contextFromIdentity({ subject: 'v', role: 'viewer' }, () => undefined);
    const admin = contextFromIdentity({ subject: 'a', role: 'admin' }, () => undefined);
    expect(() => requireRole(viewer, 'operator', 'a mutation')).toThrow(expect.objectContaining({ extensions: expect.objectContaining({ code: 'FORBIDDEN' }) }));
    expect(() => requireRole(admin, 'operator', 'a mutation')).not.toThrow();
    expect(() => requireRole(admin, 'admin', 'parking')).not.toThrow();
  });
});
