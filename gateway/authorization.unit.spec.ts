/**
 * What a verified caller may run (gateway/authorization.ts) and who the caller is
 * (gateway/auth.ts `createAuthenticator`), without a server:
 *
 * - the policy read from the real `supergraph.graphql` (the four admin-only parking mutations),
 *   the SDL handed to Apollo (`for: SECURITY` removed, nothing else), and `authorizeOperation`
 *   on the real API schema and on a small schema exercising fields, types, interfaces, unions,
 *   fragments, inline fragments, aliases and the OR / AND of scopes;
 * - `createAuthenticator` on tokens: the role claim (string, array: highest wins, unknown names
 *   ignored, dotted paths), no flowgraph role (FORBIDDEN), the subject's rules, the clock
 *   tolerance, the credential spellings, anonymous mode, and the generic refusal.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Supergraph } from '@apollo/federation-internals';
import { SignJWT } from 'jose';
import type { Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { parseAuthConfig } from '../config/authConfig.ts';
import { ConfigError } from '../config/env.ts';
import { REPO_ROOT } from '../db/migrate.ts';
import type { Role } from '../federation/roles.ts';
import { ANONYMOUS_SUBJECT, createAuthenticator, INVALID_TOKEN_MESSAGE, MAX_TOKEN_LENGTH, MISSING_TOKEN_MESSAGE, type Authenticate, type Identity } from './auth.ts';
import { authorizationPolicyOf, authorizeOperation, executableSupergraphSdl, type AuthorizationPolicy } from './authorization.ts';

/** graphql-js as Apollo and gateway/authorization.ts load it (CommonJS). */
const graphql = createRequire(import.meta.url)('graphql') as typeof import('graphql');

const SUPERGRAPH_SDL = readFileSync(path.join(REPO_ROOT, 'supergraph.graphql'), 'utf8');
const PARKING_FIELDS = ['Mutation.contentParking', 'Mutation.knowledgeParking', 'Mutation.monitoringParking', 'Mutation.workflowsParking'];

const who = (role: Role): Identity => ({ subject: `${role}-1`, role });

/** The error `act` throws (fails when it does not throw). */
function thrown(act: () => unknown): any {
  try {
    act();
  } catch (error) {
    return error;
  }
  throw new Error('expected an error');
}
async function rejection(promise: Promise<unknown>): Promise<any> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}

describe('the policy and the SDL of the real supergraph', () => {
  it('finds exactly the four parking mutations, each [["admin"]], and no restricted type', () => {
    const policy = authorizationPolicyOf(SUPERGRAPH_SDL);
    expect([...policy.fields.keys()].sort()).toEqual(PARKING_FIELDS);
    for (const field of PARKING_FIELDS) expect(policy.fields.get(field), field).toEqual([['admin']]);
    expect(policy.types.size).toBe(0);
    // The parking queries are not restricted.
    expect(policy.fields.has('Query.workflowsParking')).toBe(false);
  });

  it('executableSupergraphSdl removes `for: SECURITY` from the requiresScopes link and nothing else', () => {
    const executable = executableSupergraphSdl(SUPERGRAPH_SDL);
    const at = SUPERGRAPH_SDL.indexOf('for: SECURITY');
    expect(at).toBeGreaterThan(0);
    expect(executable).toBe(SUPERGRAPH_SDL.slice(0, at) + SUPERGRAPH_SDL.slice(at + 'for: SECURITY'.length));
    expect(executable).toContain('@link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION)');
    expect(executable).toContain('@requiresScopes(scopes: [["admin"]])');
    // Apollo refuses the original (a SECURITY feature it does not implement) and loads the result, with the same policy.
    expect(() => Supergraph.build(SUPERGRAPH_SDL)).toThrow(/SECURITY/);
    expect(() => Supergraph.build(executable)).not.toThrow();
    expect(authorizationPolicyOf(executable).fields).toEqual(authorizationPolicyOf(SUPERGRAPH_SDL).fields);
  });

  it('executableSupergraphSdl leaves an SDL without the link as is, and finds `for:` in any argument position', () => {
    const plain = 'schema @link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION) { query: Query } type Query { a: Int }';
    expect(executableSupergraphSdl(plain)).toBe(plain);
    expect(authorizationPolicyOf(plain).fields.size).toBe(0);
    const reordered = 'schema @link(for: SECURITY, url: "https://specs.apollo.dev/requiresScopes/v0.1") { query: Query } type Query { a: Int @requiresScopes(scopes: [["admin"]]) }';
    const result = executableSupergraphSdl(reordered);
    expect(result).not.toContain('SECURITY');
    expect(graphql.print(graphql.parse(result))).toContain('@link(url: "https://specs.apollo.dev/requiresScopes/v0.1")');
  });

  it('reads a directive renamed by `@link(as:)`, and ignores a same-named directive without the link', () => {
    const renamed = authorizationPolicyOf('schema @link(url: "https://specs.apollo.dev/requiresScopes/v0.1", as: "needs") { query: Query } type Query { a: Int @needs(scopes: [["admin"]]) b: Int @requiresScopes(scopes: [["admin"]]) }');
    expect([...renamed.fields]).toEqual([['Query.a', [['admin']]]]);
    expect(authorizationPolicyOf('type Query { a: Int @requiresScopes(scopes: [["admin"]]) }').fields.size).toBe(0);
  });

  describe('authorizeOperation on the real API schema', () => {
    const policy = authorizationPolicyOf(SUPERGRAPH_SDL);
    const schema = Supergraph.build(executableSupergraphSdl(SUPERGRAPH_SDL)).apiSchema().toGraphQLJSSchema();
    const check = (source: string, role: Role) => {
      const document = graphql.parse(source);
      expect(graphql.validate(schema, document), source).toEqual([]);
      const operation = graphql.getOperationAST(document)!;
      return () => authorizeOperation(policy, schema, document, operation, who(role));
    };

    it('refuses an operator every parking mutation with FORBIDDEN {field, requiredRole: admin, role: operator}; admin passes', () => {
      for (const field of PARKING_FIELDS) {
        const name = field.split('.')[1]!;
        const source = `mutation { ${name} { retryParkedEvent(id: "1") { id } } }`;
        const error = thrown(check(source, 'operator'));
        expect(error).toBeInstanceOf(graphql.GraphQLError);
        expect(error.message).toBe(`Forbidden: ${field} needs the admin role (the caller's role is operator)`);
        expect(error.extensions).toEqual({ code: 'FORBIDDEN', field, requiredRole: 'admin', role: 'operator', http: { status: 403 } });
        expect(check(source, 'admin')).not.toThrow();
      }
    });

    it('finds a parking field through a fragment, an inline fragment and an alias', () => {
      for (const source of [
        'mutation { ...M } fragment M on Mutation { workflowsParking { skipParkedEvent(id: "1") { id } } }',
        'mutation { ... on Mutation { monitoringParking { retryParkedEvent(id: "1") { id } } } }',
        'mutation { ... { ... on Mutation { release: contentParking { retryParkedEvent(id: "1") { id } } } } }',
        'mutation { ...A } fragment A on Mutation { ...B } fragment B on Mutation { k: knowledgeParking { skipParkedEvent(id: "1") { id } } }',
      ]) {
        expect(thrown(check(source, 'operator')).extensions, source).toMatchObject({ code: 'FORBIDDEN', requiredRole: 'admin', role: 'operator' });
      }
    });

    it('lets a viewer query and subscribe (parking queries included), an operator mutate; refuses a viewer any mutation', () => {
      expect(check('{ workflows { id } workflowsParking { parkedCount } }', 'viewer')).not.toThrow();
      expect(check('subscription { runUpdated(runId: "r") { cursor } }', 'viewer')).not.toThrow();
      expect(check('mutation { startRun(workflowId: "w") { id } }', 'operator')).not.toThrow();
      const error = thrown(check('mutation { startRun(workflowId: "w") { id } }', 'viewer'));
      expect(error.message).toBe("Forbidden: a mutation needs the operator role (the caller's role is viewer)");
      expect(error.extensions).toEqual({ code: 'FORBIDDEN', operation: 'mutation', requiredRole: 'operator', role: 'viewer', http: { status: 403 } });
    });
  });
});

describe('authorizeOperation on a schema exercising every kind of restriction', () => {
  const SDL = /* GraphQL */ `
    schema @link(url: "https://specs.apollo.dev/requiresScopes/v0.1", for: SECURITY) { query: Query mutation: Mutation subscription: Subscription }
    enum link__Purpose { SECURITY EXECUTION }
    directive @link(url: String, as: String, for: link__Purpose) repeatable on SCHEMA
    directive @requiresScopes(scopes: [[String!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM

    type Query { public: Public secret: Secret node(id: ID!): Node search: [SearchResult!]! }
    type Public { id: ID! notes: String @requiresScopes(scopes: [["operator"]]) salary: Int @requiresScopes(scopes: [["admin"]]) }
    type Secret @requiresScopes(scopes: [["admin"]]) { id: ID! }
    interface Node { id: ID! owner: String }
    type A implements Node { id: ID! owner: String @requiresScopes(scopes: [["admin"]]) }
    type B implements Node { id: ID! owner: String }
    union SearchResult = A | Public
    type Mutation {
      doThing: Int
      parking: Parking @requiresScopes(scopes: [["admin"]])
      both: Int @requiresScopes(scopes: [["operator", "admin"]])
      either: Int @requiresScopes(scopes: [["viewer"], ["nobody"]])
      impossible: Int @requiresScopes(scopes: [["superuser"]])
    }
    type Parking { retry(id: ID!): Int }
    type Subscription { ticks: Int secretTicks: Int @requiresScopes(scopes: [["admin"]]) }
  `;
  const policy: AuthorizationPolicy = authorizationPolicyOf(SDL);
  const schema = graphql.buildSchema(SDL);
  const run = (source: string, role: Role, operationName?: string) => {
    const document = graphql.parse(source);
    const operation = graphql.getOperationAST(document, operationName)!;
    return () => authorizeOperation(policy, schema, document, operation, who(role));
  };
  const refusal = (source: string, role: Role) => thrown(run(source, role)).extensions;

  it('reads fields and types from the SDL', () => {
    expect(Object.fromEntries(policy.fields)).toEqual({
      'Public.notes': [['operator']],
      'Public.salary': [['admin']],
      'A.owner': [['admin']],
      'Mutation.parking': [['admin']],
      'Mutation.both': [['operator', 'admin']],
      'Mutation.either': [['viewer'], ['nobody']],
      'Mutation.impossible': [['superuser']],
      'Subscription.secretTicks': [['admin']],
    });
    expect(Object.fromEntries(policy.types)).toEqual({ Secret: [['admin']] });
  });

  it('a field: the least role holding its scopes passes, a lesser one is refused naming the field', () => {
    expect(run('{ public { id } }', 'viewer')).not.toThrow();
    expect(refusal('{ public { notes } }', 'viewer')).toEqual({ code: 'FORBIDDEN', field: 'Public.notes', requiredRole: 'operator', role: 'viewer', http: { status: 403 } });
    expect(run('{ public { notes } }', 'operator')).not.toThrow();
    expect(refusal('{ public { salary } }', 'operator')).toMatchObject({ field: 'Public.salary', requiredRole: 'admin', role: 'operator' });
    expect(run('{ public { notes salary } }', 'admin')).not.toThrow();
  });

  it('a type: every field returning it is refused, naming the type', () => {
    const error = thrown(run('{ secret { id } }', 'operator'));
    expect(error.message).toBe("Forbidden: the type Secret needs the admin role (the caller's role is operator)");
    expect(error.extensions).toEqual({ code: 'FORBIDDEN', type: 'Secret', requiredRole: 'admin', role: 'operator', http: { status: 403 } });
    expect(run('{ secret { __typename } }', 'admin')).not.toThrow();
  });

  it('through aliases, fragments (nested, repeated, cyclic), inline fragments with and without type condition, and @skip', () => {
    for (const source of [
      '{ p: public { s: salary } }',
      'query { ...Q } fragment Q on Query { public { salary } }',
      '{ public { ...F } } fragment F on Public { ...G } fragment G on Public { salary }',
      '{ public { ...G id } other: public { ...G } } fragment G on Public { salary }',
      '{ public { ...F } } fragment F on Public { ...F salary }',
      '{ public { ... { salary } } }',
      '{ ... on Query { public { ... on Public { salary } } } }',
      '{ public { salary @skip(if: true) } }',
      '{ public @include(if: false) { salary } }',
    ]) {
      expect(refusal(source, 'operator'), source).toMatchObject({ code: 'FORBIDDEN', field: 'Public.salary', requiredRole: 'admin' });
    }
  });

  it('an interface field restricted on one implementation is refused through the interface; a union member through its inline fragment', () => {
    expect(run('{ node(id: "1") { id } }', 'operator')).not.toThrow();
    expect(refusal('{ node(id: "1") { owner } }', 'operator')).toMatchObject({ field: 'A.owner', requiredRole: 'admin' });
    expect(refusal('{ node(id: "1") { ... on A { owner } } }', 'operator')).toMatchObject({ field: 'A.owner' });
    expect(run('{ node(id: "1") { ... on B { owner } } }', 'operator')).not.toThrow();
    expect(refusal('{ search { ... on Public { salary } } }', 'operator')).toMatchObject({ field: 'Public.salary' });
    expect(run('{ search { __typename ... on A { id } } }', 'viewer')).not.toThrow();
  });

  it('the operation type first, then its fields: mutations, AND, OR, and scopes no role holds', () => {
    expect(refusal('mutation { doThing }', 'viewer')).toEqual({ code: 'FORBIDDEN', operation: 'mutation', requiredRole: 'operator', role: 'viewer', http: { status: 403 } });
    expect(run('mutation { doThing }', 'operator')).not.toThrow();
    expect(refusal('mutation { doThing parking { retry(id: "1") } }', 'operator')).toMatchObject({ field: 'Mutation.parking', requiredRole: 'admin', role: 'operator' });
    expect(run('mutation { parking { retry(id: "1") } }', 'admin')).not.toThrow();
    // AND: every scope of the list.
    expect(refusal('mutation { both }', 'operator')).toMatchObject({ field: 'Mutation.both', requiredRole: 'admin' });
    expect(run('mutation { both }', 'admin')).not.toThrow();
    // OR: one of the lists.
    expect(run('mutation { either }', 'operator')).not.toThrow();
    const impossible = thrown(run('mutation { impossible }', 'admin'));
    expect(impossible.message).toBe('Forbidden: Mutation.impossible needs the scopes [["superuser"]], which no flowgraph role holds');
    expect(impossible.extensions).toEqual({ code: 'FORBIDDEN', field: 'Mutation.impossible', role: 'admin', http: { status: 403 } });
  });

  it('subscriptions need viewer, their restricted fields their role; only the selected operation of a document counts', () => {
    expect(run('subscription { ticks }', 'viewer')).not.toThrow();
    expect(refusal('subscription { secretTicks }', 'operator')).toMatchObject({ field: 'Subscription.secretTicks', requiredRole: 'admin' });
    const document = 'query Open { public { id } } query Closed { public { salary } } mutation Change { doThing }';
    expect(run(document, 'viewer', 'Open')).not.toThrow();
    expect(thrown(run(document, 'viewer', 'Closed')).extensions).toMatchObject({ field: 'Public.salary' });
    expect(thrown(run(document, 'viewer', 'Change')).extensions).toMatchObject({ operation: 'mutation' });
  });

  it('an empty policy only checks the operation type', () => {
    const empty = authorizationPolicyOf('type Query { a: Int }');
    const document = graphql.parse('mutation { parking { retry(id: "1") } }');
    const operation = graphql.getOperationAST(document)!;
    expect(() => authorizeOperation(empty, schema, document, operation, who('operator'))).not.toThrow();
    expect(thrown(() => authorizeOperation(empty, schema, document, operation, who('viewer'))).extensions.operation).toBe('mutation');
  });
});

// ---------------------------------------------------------------------------------------------

const SECRET = 'unit-test-secret-of-at-least-32-characters';
const ISSUER = 'unit-issuer';
const AUDIENCE = 'unit-audience';
const KEY = new TextEncoder().encode(SECRET);

/** An HS256 token of SECRET with the configured issuer and audience, valid for an hour from `nowS`; `claims` override. */
function token(claims: Record<string, unknown>, nowS = Math.floor(Date.now() / 1000)): Promise<string> {
  return new SignJWT({ sub: 'sam', role: 'operator', iss: ISSUER, aud: AUDIENCE, iat: nowS, exp: nowS + 3600, ...claims }).setProtectedHeader({ alg: 'HS256', typ: 'JWT' }).sign(KEY);
}
const header = async (claims: Record<string, unknown>) => ({ headers: { authorization: `Bearer ${await token(claims)}` } });

/** A logger recording what it is given (pino's call shape: object, message). */
function recordingLogger() {
  const lines: { level: string; object: unknown; message: unknown }[] = [];
  const at = (level: string) => (object: unknown, message?: unknown) => void lines.push({ level, object, message });
  const logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as Logger;
  return { logger, lines };
}

async function expectInvalid(authenticate: Authenticate, input: Parameters<Authenticate>[0], what: string) {
  const error = await rejection(authenticate(input));
  expect(error, what).toBeInstanceOf(graphql.GraphQLError);
  expect(error.message, what).toBe(`Not authenticated: ${INVALID_TOKEN_MESSAGE}`);
  expect(error.extensions, what).toEqual({ code: 'UNAUTHENTICATED', http: { status: 401 } });
}
async function expectNoRole(authenticate: Authenticate, input: Parameters<Authenticate>[0], what: string) {
  const error = await rejection(authenticate(input));
  expect(error, what).toBeInstanceOf(graphql.GraphQLError);
  expect(error.message, what).toBe('Forbidden: token grants no flowgraph role');
  expect(error.extensions, what).toEqual({ code: 'FORBIDDEN', http: { status: 403 } });
}

describe('createAuthenticator', () => {
  const config = parseAuthConfig({ GATEWAY_JWT_SECRET: SECRET, GATEWAY_JWT_ISSUER: ISSUER, GATEWAY_JWT_AUDIENCE: AUDIENCE });
  const authenticate = createAuthenticator(config);

  it('verifies a token into {subject, role, expiresAtMs = (exp + tolerance) in ms}', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    expect(await authenticate({ headers: { authorization: `Bearer ${await token({}, nowS)}` } })).toEqual({ subject: 'sam', role: 'operator', expiresAtMs: (nowS + 3600 + 5) * 1000 });
    // The scheme is case-insensitive; spaces around the token do not matter.
    expect((await authenticate({ headers: { authorization: `bearer   ${await token({ role: 'viewer' })}  ` } })).role).toBe('viewer');
  });

  it('a role claim array gives the highest flowgraph role; unknown names and non-strings are ignored; roles are case-sensitive', async () => {
    const cases: [unknown, Role][] = [
      [['viewer', 'admin', 'operator'], 'admin'],
      [['guest', 'operator', 'superuser'], 'operator'],
      [[42, null, 'viewer', { role: 'admin' }], 'viewer'],
      ['admin', 'admin'],
    ];
    for (const [role, expected] of cases) expect((await authenticate(await header({ role }))).role, JSON.stringify(role)).toBe(expected);
    for (const role of ['superuser', 'Admin', ['guest', 'ADMIN'], [], {}, 42, null, undefined, '']) {
      await expectNoRole(authenticate, await header({ role }), JSON.stringify(role));
    }
  });

  it('reads a dotted role claim path (the top-level claim of that exact name winning), and a renamed claim', async () => {
    const keycloak = createAuthenticator({ ...config, roleClaim: 'realm_access.roles' });
    expect((await keycloak(await header({ role: undefined, realm_access: { roles: ['offline_access', 'operator'] } }))).role).toBe('operator');
    expect((await keycloak(await header({ role: undefined, 'realm_access.roles': 'admin', realm_access: { roles: ['viewer'] } }))).role).toBe('admin');
    await expectNoRole(keycloak, await header({ role: 'admin' }), 'the default claim is not read');
    await expectNoRole(keycloak, await header({ role: undefined, realm_access: [{ roles: ['admin'] }] }), 'no path through arrays');
    await expectNoRole(keycloak, await header({ role: undefined, realm_access: 'admin' }), 'path through a string');
    const inherited = createAuthenticator({ ...config, roleClaim: 'constructor.name' });
    await expectNoRole(inherited, await header({}), 'inherited properties are no claims');
    const renamed = createAuthenticator({ ...config, roleClaim: 'https://flowgraph.example/role' });
    expect((await renamed(await header({ role: 'viewer', 'https://flowgraph.example/role': ['admin'] }))).role).toBe('admin');
  });

  it('a subject must be 1..200 characters, none a control or format character', async () => {
    expect((await authenticate(await header({ sub: 'x'.repeat(200) }))).subject).toBe('x'.repeat(200));
    expect((await authenticate(await header({ sub: 'José 🚀 <o@example.com>' }))).subject).toBe('José 🚀 <o@example.com>');
    for (const sub of ['', 'x'.repeat(201), 'line\nbreak', 'nul\u0000', 'tab\there', 'zero\u200bwidth', 'bidi\u202eevil', 42, ['sam'], undefined]) {
      await expectInvalid(authenticate, await header({ sub }), JSON.stringify(sub));
    }
  });

  it('checks exp, nbf and iat with the clock tolerance, against its clock', async () => {
    const nowS = 2_000_000_000;
    const at = (seconds: number) => createAuthenticator(config, { now: () => seconds * 1000 });
    const expiring = { headers: { authorization: `Bearer ${await token({ exp: nowS }, nowS - 60)}` } };
    expect((await at(nowS + 4)(expiring)).expiresAtMs).toBe((nowS + 5) * 1000);
    await expectInvalid(at(nowS + 6), expiring, 'exp beyond the tolerance');
    const notYet = { headers: { authorization: `Bearer ${await token({ nbf: nowS + 4 }, nowS)}` } };
    expect((await at(nowS)(notYet)).subject).toBe('sam');
    await expectInvalid(at(nowS), { headers: { authorization: `Bearer ${await token({ nbf: nowS + 6 }, nowS)}` } }, 'nbf beyond the tolerance');
    expect((await at(nowS)({ headers: { authorization: `Bearer ${await token({ iat: nowS + 4 }, nowS)}` } })).subject).toBe('sam');
    await expectInvalid(at(nowS), { headers: { authorization: `Bearer ${await token({ iat: nowS + 3600 }, nowS)}` } }, 'iat in the future');
    const strict = createAuthenticator({ ...config, clockToleranceSeconds: 0 }, { now: () => (nowS + 1) * 1000 });
    await expectInvalid(strict, expiring, 'exp without tolerance');
  });

  it('remembers a verified token until its exp or 60 s, never a refused one', async () => {
    const nowS = 2_000_000_000;
    let clockMs = nowS * 1000;
    const cached = createAuthenticator(config, { now: () => clockMs });
    const expiring = { headers: { authorization: `Bearer ${await token({ exp: nowS + 30 }, nowS)}` } };
    expect((await cached(expiring)).subject).toBe('sam');
    clockMs = (nowS + 34) * 1000; // within exp + 5 s tolerance: still the remembered identity
    expect(await cached(expiring)).toEqual({ subject: 'sam', role: 'operator', expiresAtMs: (nowS + 35) * 1000 });
    clockMs = (nowS + 36) * 1000; // past exp + tolerance: verified again, and refused
    await expectInvalid(cached, expiring, 'a remembered token past its exp');
    await expectInvalid(cached, expiring, 'and not remembered as valid after a refusal');
    // Proof that a remembered token is not verified again: with the clock moved back before its
    // nbf it is still accepted from the cache, while an authenticator without a cache refuses it.
    const later = { headers: { authorization: `Bearer ${await token({ nbf: nowS + 100, exp: nowS + 3600 }, nowS)}` } };
    clockMs = (nowS + 100) * 1000;
    expect((await cached(later)).subject).toBe('sam');
    clockMs = (nowS + 50) * 1000;
    expect((await cached(later)).subject).toBe('sam');
    const uncached = createAuthenticator(config, { now: () => clockMs, cacheEntries: 0 });
    await expectInvalid(uncached, later, 'uncached, before nbf');
    clockMs = (nowS + 36) * 1000;
    await expectInvalid(uncached, expiring, 'uncached, past exp');
  });

  it('refuses wrong issuer, audience, key, algorithm, missing exp, and oversized tokens with the one generic error', async () => {
    const nowS = Math.floor(Date.now() / 1000);
    const payload = { sub: 'sam', role: 'admin', iss: ISSUER, aud: AUDIENCE, exp: nowS + 3600 };
    const cases: [string, string][] = [
      ['issuer', await token({ iss: 'other' })],
      ['audience', await token({ aud: 'other' })],
      ['no issuer', await token({ iss: undefined })],
      ['key', await new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('x'.repeat(40)))],
      ['HS384', await new SignJWT(payload).setProtectedHeader({ alg: 'HS384' }).sign(KEY)],
      ['alg none', `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.`],
      ['no exp', await token({ exp: undefined })],
      ['oversized', `${await token({ padding: 'x'.repeat(MAX_TOKEN_LENGTH) })}`],
      ['garbage', 'not-a-jwt'],
    ];
    for (const [what, jwt] of cases) await expectInvalid(authenticate, { headers: { authorization: `Bearer ${jwt}` } }, what);
    // A token that is several audiences, one of them ours, passes.
    expect((await authenticate(await header({ aud: ['other', AUDIENCE] }))).subject).toBe('sam');
  });

  it('a missing token is UNAUTHENTICATED with its own message; an unusable credential is a bad token', async () => {
    for (const input of [{ headers: {} }, { connectionParams: undefined }, { connectionParams: {} }, { connectionParams: { authorization: null } }]) {
      const error = await rejection(authenticate(input));
      expect(error.message, JSON.stringify(input)).toBe(`Not authenticated: ${MISSING_TOKEN_MESSAGE}`);
      expect(error.extensions).toEqual({ code: 'UNAUTHENTICATED', http: { status: 401 } });
    }
    const good = await token({});
    for (const input of [
      { headers: { authorization: [`Bearer ${good}`, `Bearer ${good}`] } },
      { headers: { authorization: `Basic ${good}` } },
      { headers: { authorization: good } },
      { headers: { authorization: '' } },
      { headers: { authorization: `Bearer ${good} extra` } },
      { connectionParams: { authorization: 42 } },
      { connectionParams: { authorization: `Token ${good}` } },
      { connectionParams: { token: 42 } },
      { connectionParams: { token: '' } },
    ]) {
      await expectInvalid(authenticate, input, JSON.stringify(input).slice(0, 80));
    }
  });

  it('takes a websocket token from authorization, Authorization or token (bare or Bearer), never from other keys', async () => {
    const good = await token({ role: 'viewer' });
    for (const connectionParams of [{ authorization: `Bearer ${good}` }, { Authorization: `Bearer ${good}` }, { token: good }, { token: `Bearer ${good}` }, { authorization: null, token: good }]) {
      expect(await authenticate({ connectionParams }), JSON.stringify(Object.keys(connectionParams))).toMatchObject({ subject: 'sam', role: 'viewer' });
    }
    const missing = await rejection(authenticate({ connectionParams: { headers: { authorization: `Bearer ${good}` }, access_token: good } }));
    expect(missing.message).toBe(`Not authenticated: ${MISSING_TOKEN_MESSAGE}`);
  });

  it('logs the reason of a refusal at debug level only, never in the error', async () => {
    const { logger, lines } = recordingLogger();
    const logged = createAuthenticator(config, { logger });
    const error = await rejection(logged(await header({ iss: 'someone-else' })));
    expect(error.message).not.toMatch(/iss|issuer|someone/i);
    expect(lines.filter((line) => line.level === 'debug')).toHaveLength(1);
    expect(JSON.stringify(lines[0]!.object)).toMatch(/iss/);
    expect(lines.filter((line) => line.level === 'warn')).toEqual([]);
  });

  describe('anonymous mode', () => {
    it('admits a caller without a token as the anonymous role (never expiring), refuses a bad token, honours a good one, and warns once', async () => {
      const { logger, lines } = recordingLogger();
      const anonymous = createAuthenticator({ ...config, anonymousRole: 'viewer' }, { logger });
      expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
      expect(await anonymous({ headers: {} })).toEqual({ subject: ANONYMOUS_SUBJECT, role: 'viewer' });
      expect(await anonymous({ connectionParams: undefined })).toEqual({ subject: 'anonymous', role: 'viewer' });
      await expectInvalid(anonymous, { headers: { authorization: 'Bearer abc' } }, 'bad token');
      await expectInvalid(anonymous, { headers: { authorization: 'Basic abc' } }, 'other scheme');
      await expectInvalid(anonymous, { connectionParams: { token: 'abc' } }, 'bad websocket token');
      await expectNoRole(anonymous, await header({ role: 'guest' }), 'no role');
      expect((await anonymous(await header({ role: 'admin' }))).role).toBe('admin');
      expect(lines.filter((line) => line.level === 'warn')).toHaveLength(1);
    });

    it('without a verifier, admits callers without a token and refuses every token', async () => {
      const { logger, lines } = recordingLogger();
      const open = createAuthenticator(parseAuthConfig({ GATEWAY_ANONYMOUS_ROLE: 'operator' }), { logger });
      expect(String(lines.find((line) => line.level === 'warn')?.message)).toContain('ANONYMOUS MODE');
      expect(await open({ headers: {} })).toEqual({ subject: 'anonymous', role: 'operator' });
      await expectInvalid(open, await header({ role: 'admin' }), 'a token nobody can verify');
    });
  });

  it('refuses to be created with neither a verifier nor an anonymous role', () => {
    expect(() => createAuthenticator(parseAuthConfig({}))).toThrow(ConfigError);
    expect(() => createAuthenticator(parseAuthConfig({}))).toThrow(/GATEWAY_JWT_SECRET/);
  });

  it('refuses every token when its JWKS cannot be fetched, warning about the configuration', async () => {
    const { logger, lines } = recordingLogger();
    // Port 9 (discard) on loopback: nothing listens there.
    const jwks = createAuthenticator(parseAuthConfig({ GATEWAY_JWKS_URL: 'http://127.0.0.1:9/jwks.json', GATEWAY_JWT_ISSUER: ISSUER, GATEWAY_JWT_AUDIENCE: AUDIENCE }), {
      logger,
      jwks: { timeoutMs: 2_000 },
    });
    const rs = await new SignJWT({ sub: 'sam', role: 'admin', iss: ISSUER, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 60 })
      .setProtectedHeader({ alg: 'HS256', kid: 'k' })
      .sign(KEY);
    await expectInvalid(jwks, { headers: { authorization: `Bearer ${rs}` } }, 'HS256 against a JWKS');
    await expectInvalid(jwks, { headers: { authorization: `Bearer ${Buffer.from('{"alg":"ES256","kid":"k"}').toString('base64url')}.${Buffer.from('{}').toString('base64url')}.c2ln` } }, 'JWKS unreachable');
    expect(lines.some((line) => line.level === 'warn' && String(line.message).includes('JWKS'))).toBe(true);
  });
});
