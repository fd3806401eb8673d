/**
 * The append's input checks (eventstore/validate.ts) without a database: every string the store
 * takes must reach PostgreSQL unchanged, so U+0000 and unpaired UTF-16 surrogates are refused,
 * with a typed error naming the field, and paired surrogates (emoji) are accepted.
 */
import { describe, expect, it } from 'vitest';
import { EventStoreErrorCode, InvalidEventDataError, InvalidStreamIdError } from './errors.ts';
import { checkStreamId, prepareBatch } from './validate.ts';

const MAX = 256 * 1024;
const thrown = (fn: () => unknown): unknown => {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
};

describe('checkStreamId', () => {
  it.each([
    ['a lone high surrogate at the end', 'run-a\uD800'],
    ['a lone low surrogate', 'run-\uDC00b'],
    ['a low surrogate before a high one', 'run-\uDC00\uD800'],
  ])('refuses a stream id with %s: InvalidStreamIdError saying unpaired surrogate', (_label, streamId) => {
    const error = thrown(() => checkStreamId(streamId));
    expect(error).toBeInstanceOf(InvalidStreamIdError);
    expect((error as InvalidStreamIdError).code).toBe(EventStoreErrorCode.InvalidStreamId);
    expect((error as Error).message).toMatch(/unpaired UTF-16 surrogate/);
    // The message itself is valid Unicode (the id is quoted with the surrogate escaped).
    expect((error as Error).message.isWellFormed()).toBe(true);
  });

  it('accepts a stream id with an emoji (a paired surrogate) and keeps refusing U+0000', () => {
    expect(() => checkStreamId('run-😀')).not.toThrow();
    expect(() => checkStreamId('run-\u0000')).toThrow(/U\+0000/);
  });
});

describe('prepareBatch: strings of types, data and metadata', () => {
  it.each([
    ['a type with a lone surrogate', { type: 'Run\uD800', data: {} }, 'events[0].type'],
    ['a type with U+0000', { type: 'Run\u0000', data: {} }, 'events[0].type'],
    ['a data string with a lone surrogate', { type: 'A', data: { reason: 'x\uD83D' } }, 'events[0].data.reason'],
    ['a data string with U+0000', { type: 'A', data: { reason: 'x\u0000' } }, 'events[0].data.reason'],
    ['a metadata string with a lone surrogate', { type: 'A', data: {}, metadata: { actor: '\uDE00' } }, 'events[0].metadata.actor'],
  ])('refuses %s with InvalidEventDataError naming it', (_label, event, path) => {
    const error = thrown(() => prepareBatch('s-1', [event], undefined, MAX));
    expect(error).toBeInstanceOf(InvalidEventDataError);
    expect((error as InvalidEventDataError).path).toBe(path);
  });

  it('refuses a lone surrogate in the batch metadata, naming options.metadata', () => {
    const error = thrown(() => prepareBatch('s-1', [{ type: 'A', data: {} }], { correlationId: 'c\uD800' }, MAX));
    expect((error as InvalidEventDataError).path).toBe('options.metadata.correlationId');
  });
});
