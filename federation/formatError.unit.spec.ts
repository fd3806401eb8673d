import { GraphQLError } from 'graphql';
import { describe, expect, it } from 'vitest';
import { WrongExpectedVersionError } from '../eventstore/index.ts';
import { IllegalTransitionError, WorkflowsError } from '../subgraphs/workflows/errors.ts';
import { INTERNAL_ERROR_MESSAGE, UNAVAILABLE_MESSAGE, classifyDatabaseError, createSubgraphFormatError, type DeliberateError } from './formatError.ts';

function capture() {
  const logged: { level: string; obj: unknown }[] = [];
  const logger = {
    debug() {},
    info() {},
    warn: (obj: object) => logged.push({ level: 'warn', obj }),
    error: (obj: object) => logged.push({ level: 'error', obj }),
  };
  const format = createSubgraphFormatError({ name: 'workflows', logger, isDeliberate: (e): e is DeliberateError => e instanceof WorkflowsError });
  return { logged, format };
}
const resolverError = (original: Error) => new GraphQLError(original.message, { path: ['completeStep'], originalError: original });
const sqlError = (message: string, code: string) => Object.assign(new Error(message), { code });
/** The shape Prisma 7 over @prisma/adapter-pg throws (PrismaClientKnownRequestError). */
const prismaError = (originalCode: string) =>
  Object.assign(new Error('Invalid `prisma.run.findUnique()` invocation'), {
    code: 'P2010',
    meta: { driverAdapterError: Object.assign(new Error('DriverAdapterError'), { cause: { originalCode, originalMessage: 'x', kind: 'postgres' } }) },
  });

describe('createSubgraphFormatError', () => {
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
    const error = sqlError('relation "workflow_runs" does not exist', '42P01');
    const formatted = format({ message: error.message, path: ['run'], extensions: { code: 'INTERNAL_SERVER_ERROR', stacktrace: ['at x'] } }, resolverError(error));
    expect(formatted).toEqual({ message: INTERNAL_ERROR_MESSAGE, path: ['run'], extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    expect(JSON.stringify(formatted)).not.toContain('workflow_runs');
    expect(logged).toMatchObject([{ level: 'error' }]);
  });

  it("keeps GraphQL's own validation errors and their code, without a stack trace", () => {
    const { format } = capture();
    const error = new GraphQLError('Cannot query field "nope" on type "Query".');
    const formatted = format({ message: error.message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED', stacktrace: ['at y'] } }, error);
    expect(formatted).toEqual({ message: error.message, extensions: { code: 'GRAPHQL_VALIDATION_FAILED' } });
  });

  it('answers a NUL byte PostgreSQL refused (pg or Prisma) with BAD_USER_INPUT, without the SQL', () => {
    const { format, logged } = capture();
    for (const original of [sqlError('invalid byte sequence for encoding "UTF8": 0x00', '22021'), prismaError('22021')]) {
      const formatted = format({ message: original.message, path: ['run'] }, resolverError(original));
      expect(formatted).toEqual({ message: 'Text arguments may not contain U+0000 (NUL)', path: ['run'], extensions: { code: 'BAD_USER_INPUT' } });
    }
    expect(logged).toEqual([]);
  });

  it('answers an unreachable database with SERVICE_UNAVAILABLE and logs a warning', () => {
    const { format, logged } = capture();
    const errors = [
      new Error('timeout exceeded when trying to connect'),
      sqlError('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
      sqlError('terminating connection due to administrator command', '57P01'),
      prismaError('08006'),
    ];
    for (const original of errors) {
      expect(format({ message: original.message, path: ['runs'] }, resolverError(original))).toEqual({
        message: UNAVAILABLE_MESSAGE,
        path: ['runs'],
        extensions: { code: 'SERVICE_UNAVAILABLE' },
      });
    }
    expect(logged.map((l) => l.level)).toEqual(['warn', 'warn', 'warn', 'warn']);
  });
});

describe('classifyDatabaseError', () => {
  it('follows cause chains and leaves other errors alone', () => {
    expect(classifyDatabaseError(Object.assign(new Error('outer'), { cause: sqlError('x', '53300') }))).toBe('UNAVAILABLE');
    expect(classifyDatabaseError(prismaError('22003'))).toBe('OUT_OF_RANGE');
    expect(classifyDatabaseError(sqlError('duplicate key', '23505'))).toBeUndefined();
    expect(classifyDatabaseError('not an error')).toBeUndefined();
  });
});
