/**
 * Monitoring's own events. One `IntegrationEventObserved` per integration event of another
 * service, appended (with the inbox row) by `observeIntegrationEvent`, to the stream of its
 * correlation id so that a trace is one stream: `trace-<correlationId>`. Events without a
 * correlation id go to `observed-<source>`. The payload is bounded (no chunk text: see
 * summarizePayload.ts), so even a book's hundreds of chunk events stay small.
 */
import { createHash } from 'node:crypto';
import type { Json } from './summarizePayload.ts';

/** Type of monitoring's only event. */
export const INTEGRATION_EVENT_OBSERVED = 'IntegrationEventObserved';
/** Event types of monitoring's log. */
export const MONITORING_EVENT_TYPES = [INTEGRATION_EVENT_OBSERVED] as const;
/** Actor of every event monitoring appends (issue 3 contract: `system:<service>`). */
export const MONITORING_ACTOR = 'system:monitoring';

/** Payload of `IntegrationEventObserved`, schema version 1. */
export interface IntegrationEventObservedData {
  /** Publishing service. */
  source: string;
  /** The source's event id (UUID). */
  eventId: string;
  type: string;
  schemaVersion: number;
  streamId: string;
  streamPosition: number;
  correlationId: string | null;
  causationId: string | null;
  actor: string | null;
  /** `data.runId` of the observed payload when it is a string, else null. */
  runId: string | null;
  /** When the source stored it, ISO 8601. */
  occurredAt: string;
  /** Bounded payload summary (≤ 2048 bytes of JSON). */
  summary: Json;
  /**
   * W3C `traceparent` of the observed event's metadata when valid, else null; absent from
   * observations recorded before it was kept (read as null).
   */
  traceparent?: string | null;
}

/** Longest correlation id used verbatim in a stream id, in characters (longer ones are hashed). */
const MAX_VERBATIM_CORRELATION_ID = 400;

/** Stream of an observation: `trace-<correlationId>` (hashed when over 400 characters), or `observed-<source>` without one. */
export function observationStreamId(source: string, correlationId: string | null): string {
  if (correlationId === null) return `observed-${source}`;
  if (correlationId.length <= MAX_VERBATIM_CORRELATION_ID) return `trace-${correlationId}`;
  return `trace-sha256-${createHash('sha256').update(correlationId).digest('hex')}`;
}

/**
 * Event id of the observation of `(source, eventId)`: a name-based UUID (SHA-256, version
 * bits 8) so that a second append of the same observation is an idempotent duplicate, on top of
 * the inbox.
 */
export function observationEventId(source: string, eventId: string): string {
  const hex = createHash('sha256').update(`monitoring:${source}:${eventId}`).digest('hex').slice(0, 32).split('');
  hex[12] = '8';
  hex[16] = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}
