import { describe, expect, it } from 'vitest';
import { errors as natsErrors } from '@nats-io/transport-node';
import { ConnectionLostError, TransactionConflictError, WrongExpectedVersionError } from './errors.ts';
import { DuplicateDeliveryError } from './inbox.ts';
import { createParkingLot, EventRejectedError, isTransientConsumerError } from './parking.ts';
import type { EventStore } from './store.ts';

describe('which consumer failures never count towards parking', () => {
  it.each([
    ['a connection the database ended inside a transaction', new ConnectionLostError('rolled back', Object.assign(new Error('terminating connection'), { code: '57P01' }))],
    ['a connection failure (SQLSTATE class 08)', Object.assign(new Error('connection failure'), { code: '08006' })],
    ['an administrator shutdown (57P01) wrapped as a cause', new Error('handler failed', { cause: Object.assign(new Error('terminating'), { code: '57P01' }) })],
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })],
    ['a NATS disconnect', new natsErrors.ConnectionError('disconnected')],
    ['a closed NATS connection', new natsErrors.ClosedConnectionError()],
    ['a concurrent writer', new WrongExpectedVersionError('run-1', '3', 4)],
    ['a transaction conflict', new TransactionConflictError('run-1')],
    ['a concurrent duplicate delivery', new DuplicateDeliveryError('workflows', ['00000000-0000-4000-8000-000000000000'])],
  ])('%s is transient', (_what, error) => {
    expect(isTransientConsumerError(error)).toBe(true);
  });

  it.each([
    ['a bug in the handler', new TypeError("Cannot read properties of undefined (reading 'id')")],
    ['a payload the schema rejects', new EventRejectedError('StepStarted', 'runId: Required')],
    ['a constraint violation', Object.assign(new Error('duplicate key'), { code: '23505' })],
    ['a raised exception', Object.assign(new Error('poison'), { code: 'P0001' })],
  ])('%s counts', (_what, error) => {
    expect(isTransientConsumerError(error)).toBe(false);
  });
});

describe('createParkingLot', () => {
  it.each([0, -1, 1.5, Number.NaN])('refuses maxAttempts %s', (maxAttempts) => {
    expect(() => createParkingLot({ store: { pool: {} } as unknown as EventStore, maxAttempts })).toThrow(/maxAttempts must be an integer ≥ 1/);
  });
});

describe('EventRejectedError.fromZod', () => {
  it('lists every issue with its path', () => {
    const error = EventRejectedError.fromZod('DocumentChunked', { issues: [{ path: ['chunkIndex'], message: 'Too small' }, { path: [], message: 'Bad root' }] });
    expect(error.message).toBe("DocumentChunked rejected by the consumer's schema: chunkIndex: Too small; (root): Bad root");
  });
});
