/**
 * Per-request context of every subgraph: who asks (the identity the gateway verified,
 * DESIGN.md "Auth") and the ids every appended event's metadata carries.
 */
import { randomUUID } from 'node:crypto';
import type { EventMetadata } from '../eventstore/index.ts';

/** Metadata a request gives the events it appends. */
export type RequestMetadata = Pick<EventMetadata, 'actor' | 'correlationId' | 'causationId' | 'traceparent'>;

/** Header carrying the identity the gateway verified. */
export const ACTOR_HEADER = 'x-flowgraph-actor';
/** Header carrying the correlation id of the user request (propagated across services). */
export const CORRELATION_HEADER = 'x-correlation-id';
/** W3C Trace Context header, recorded as event metadata `traceparent` when well-formed. */
export const TRACEPARENT_HEADER = 'traceparent';
/** Actor when the header is absent (the gateway admits everyone as `operator` until auth lands). */
export const DEFAULT_ACTOR = 'operator';

/** What resolvers receive. */
export interface RequestContext {
  /** Metadata for events appended by this request: `causationId` is a fresh id of the request, `traceparent` the client's when sent. */
  meta: RequestMetadata & { actor: string; correlationId: string; causationId: string };
}

const SAFE_HEADER = /^[\x21-\x7e]{1,200}$/;
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * Builds the context from request headers (lower-case names). A missing or malformed actor
 * becomes `operator`; a missing or malformed correlation id a new UUID.
 */
export function contextFromHeaders(header: (name: string) => string | undefined): RequestContext {
  const actor = header(ACTOR_HEADER)?.trim();
  const correlationId = header(CORRELATION_HEADER)?.trim();
  const traceparent = header(TRACEPARENT_HEADER)?.trim();
  return {
    meta: {
      actor: actor && SAFE_HEADER.test(actor) ? actor : DEFAULT_ACTOR,
      correlationId: correlationId && SAFE_HEADER.test(correlationId) ? correlationId : randomUUID(),
      causationId: randomUUID(),
      ...(traceparent && TRACEPARENT.test(traceparent) ? { traceparent } : {}),
    },
  };
}
