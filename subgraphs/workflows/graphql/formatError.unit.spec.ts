import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { WrongExpectedVersionError } from '../../../eventstore/index.ts';
import { IllegalTransitionError } from '../errors.ts';
import { INTERNAL_ERROR_MESSAGE, createFormatError } from './formatError.ts';

function capture() {
  const logged: unknown[] = [];
  const logger = { debug() {}, info() {}, warn() {}, error: (obj: object) => logged.push(obj) };
  return { logged, format: createFormatError(logger) };
}
const resolverError = (original: Error) => new GraphQLError(original.message, { path: ['completeStep'], originalError: original });

describe('formatError', () => {
  it('keeps a domain error message, its code and details', () => {
    const { format, logged } = capture();
    const error = resolverError(new IllegalTransitionError('Run r1 is CANCELLED', { runId: 'r1', runStatus: 'CANCELLED' }));
    expect(format({ message: error.message, path: ['completeStep'] }, error)).toEqual({
      message: 'Run r1 is CANCELLED',
      path: ['completeStep'],
      extensions: { code: 'ILLEGAL_TRANSITION', runId: 'r1', runStatus: 'CANCELLED' },
    });
    expect(logged).toEqual([]);
  });

  it('keeps an event store error code', () => {
    const { format } = capture();
    const error = resolverError(new WrongExpectedVersionError('run-1', '3', 4));
    expect(format({ message: error.message }, error).extensions).toEqual({ code: 'WRONG_EXPECTED_VERSION' });
  });

  it('turns an unexpected error (e.g. SQL) into INTERNAL_SERVER_ERROR with a generic message, and logs it', () => {
    const { format, logged } = capture();
    const sqlError = Object.assign(new Error('relation "workflow_runs" does not exist'), { code: '42P01' });
    const formatted = format({ message: sqlError.message, path: ['run'], extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['at x'] } }, resolverError(sqlError));
    expect(formatted).toEqual({ message: INTERNAL_ERROR_MESSAGE, path: ['run'], extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(JSON.stringify(formatted)).not.toContain('workflow_runs');
    expect(logged).toHaveLength(1);
  });

  it("keeps GraphQL's own validation errors and their code, without a stack trace", () => {
    const { format } = capture();
    const error = new GraphQLError('Cannot query field "nope" on type "Query".');
    const formatted = format({ message: error.message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED', stacktrace: ['at y'] } }, error);
    expect(formatted).toEqual({ message: error.message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
  });
});
