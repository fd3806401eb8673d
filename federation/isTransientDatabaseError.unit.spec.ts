import { describe, expect, it } from 'vitest';
import { ConnectionLostError, TransactionConflictError, WrongExpectedVersionError } from '../eventstore/index.ts';
import { isTransientDatabaseError } from './isTransientDatabaseError.ts';

const pgError = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isTransientDatabaseError', () => {
  it.each([
    ['a refused connection', Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' })],
    ['a reset connection', Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' })],
    ['57P01 admin shutdown', pgError('57P01', 'terminating connection due to administrator command')],
    ['57P03 cannot connect now', pgError('57P03', 'the database system is starting up')],
    ['a connection failure (class 08)', pgError('08006')],
    ['a serialization failure', pgError('40001')],
    ['a deadlock', pgError('40P01')],
    ['the pool failing to connect in time', new Error('timeout exceeded when trying to connect')],
    ['a session ended inside a transaction', new ConnectionLostError('rolled back', pgError('57P01'))],
    ['a transaction conflict', new TransactionConflictError('s-1')],
    ['an unavailable database as the cause of another error', new Error('extraction failed', { cause: pgError('57P03') })],
  ])('retries %s', (_label, error) => {
    expect(isTransientDatabaseError(error)).toBe(true);
  });

  it.each([
    ['a unique violation', pgError('23505')],
    ['a syntax error', pgError('42601')],
    ['a wrong expected version (the caller re-decides)', new WrongExpectedVersionError('s-1', '0', 1)],
    ['a plain error', new Error('compromise failed')],
    ['a value that is not an error', 'down'],
    ['null', null],
  ])('does not retry %s', (_label, error) => {
    expect(isTransientDatabaseError(error)).toBe(false);
  });
});
