/** Run ids: random, or derived from an idempotency key so that a repeated start finds its run. */
import { createHash, randomUUID } from 'node:crypto';

/** Namespace of derived run ids (a fixed random UUID; changing it breaks idempotency of stored keys). */
export const RUN_ID_NAMESPACE = '6f1f3c8e-7b1a-4a53-9a53-3f2f0e0c9b7d';

/**
 * The id of the run started by `startRun(workflowId, idempotencyKey)`: a UUID v5 (SHA-1,
 * RFC 9562 §5.5) of `workflowId + "\n" + key` in `RUN_ID_NAMESPACE` when a key is given, so
 * concurrent duplicates race for the same stream (`no_stream` lets exactly one append win);
 * a random UUID v4 otherwise.
 */
export function runIdFor(workflowId: string, idempotencyKey: string | null): string {
  if (idempotencyKey === null) return randomUUID();
  const ns = Buffer.from(RUN_ID_NAMESPACE.replace(/-/g, ''), 'hex');
  const hash = createHash('sha1').update(ns).update(`${workflowId}\n${idempotencyKey}`, 'utf8').digest();
  const b = Buffer.from(hash.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
