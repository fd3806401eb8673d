/**
 * Per-request context of every subgraph: who asks (the identity the gateway signed and this
 * subgraph verified, `federation/gatewayIdentity.ts`; DESIGN.md "Auth") and the ids every
 * appended event's metadata carries. There is no plain actor header: an actor only ever comes
 * from a verified identity.
 */
import { randomUUID } from 'node:crypto';
import { GraphQLError } from 'graphql';
import type { EventMetadata } from '../eventstore/index.ts';
import type { GatewayIdentity } from './gatewayIdentity.ts';
import { roleAllows, type Role } from './roles.ts';
import { isValidTraceparent } from '../observability/tracer.ts';

/** Metadata a request gives the events it appends: `actorRole` is the verified role of `actor`. */
export type RequestMetadata = Pick<EventMetadata, 'actor' | 'correlationId' | 'causationId' | 'traceparent'> & { actorRole?: Role };

/** Header carrying the correlation id of the user request (propagated across services). */
export const CORRELATION_HEADER = 'x-correlation-id';
/** W3C Trace Context header, recorded as event metadata `traceparent` when well-formed. */
export const TRACEPARENT_HEADER = 'traceparent';

/** What resolvers receive. */
export interface RequestContext {
  /** The verified caller. */
  identity: GatewayIdentity;
  /**
   * Metadata for events appended by this request: `actor` / `actorRole` the verified subject and
   * role, `causationId` a fresh id of the request, `traceparent` the client's when sent.
   */
  meta: RequestMetadata & { actor: string; actorRole: Role; correlationId: string; causationId: string };
}

const SAFE_HEADER = /^[\x21-\x7e]{1,200}$/;

/**
 * Builds the context of a request from its VERIFIED `identity` and its headers (lower-case
 * names; only the correlation id and traceparent are read). A missing or malformed correlation
 * id becomes a new UUID; a traceparent that is not valid W3C Trace Context (garbage, oversized,
 * all-zero ids: `observability/tracer.ts` `isValidTraceparent`) is dropped.
 */
export function contextFromIdentity(identity: GatewayIdentity, header: (name: string) => string | undefined): RequestContext {
  const correlationId = header(CORRELATION_HEADER)?.trim();
  const traceparent = header(TRACEPARENT_HEADER)?.trim();
  return {
    identity,
    meta: {
      actor: identity.subject,
      actorRole: identity.role,
      correlationId: correlationId && SAFE_HEADER.test(correlationId) ? correlationId : randomUUID(),
      causationId: randomUUID(),
      ...(isValidTraceparent(traceparent) ? { traceparent } : {}),
    },
  };
}

/** The error a subgraph answers when the verified role may not do what was asked (`extensions.code` `FORBIDDEN`, HTTP 403). */
export function forbidden(required: Role, role: Role, what: string): GraphQLError {
  return new GraphQLError(`Forbidden: ${what} needs role ${required} (the caller has ${role})`, {
    extensions: { code: 'FORBIDDEN', requiredRole: required, http: { status: 403 } },
  });
}

/**
 * Defense in depth at the subgraph (the gateway checks first): throws {@link forbidden} unless
 * the context's verified role allows `required`.
 * @throws GraphQLError `FORBIDDEN`
 */
export function requireRole(context: RequestContext, required: Role, what: string): void {
  const role = context.identity.role;
  if (!roleAllows(role, required)) throw forbidden(required, role, what);
}
