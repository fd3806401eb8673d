/**
 * Which errors a background worker (extractor, deadline scanner, consumer) retries instead of
 * turning them into a business failure or counting them as a poison event's failed attempt.
 */
import { ConnectionLostError, TransactionConflictError } from '../eventstore/index.ts';
import { classifyDatabaseError } from './formatError.ts';

/** SQLSTATEs of a transaction PostgreSQL rolled back for a concurrent one (PostgreSQL appendix A, class 40). */
const RETRY_TRANSACTION_SQLSTATES = new Set(['40001', '40P01']);

/**
 * True when `error` says the database could not be used for now, not that the work is wrong:
 * an unavailable database as `classifyDatabaseError` recognises it (connection refused or
 * reset, SQLSTATE class 08, 57P01 admin shutdown, 57P03 cannot connect now, pool connect
 * timeout...), the event store's ConnectionLostError (its session ended inside a transaction),
 * its TransactionConflictError, and a serialization failure or deadlock (40001, 40P01).
 * Follows `cause` chains as `classifyDatabaseError` does.
 */
export function isTransientDatabaseError(error: unknown): boolean {
  if (error instanceof ConnectionLostError || error instanceof TransactionConflictError) return true;
  if (classifyDatabaseError(error) === 'UNAVAILABLE') return true;
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRY_TRANSACTION_SQLSTATES.has(code);
}
