import { describe, expect, it } from 'vitest';
import { BadUserInputError } from '../errors.ts';
import { decodeText } from './decodeText.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);
const BOM = [0xef, 0xbb, 0xbf];

function rejection(run: () => unknown): BadUserInputError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(BadUserInputError);
    expect((error as BadUserInputError).code).toBe('BAD_USER_INPUT');
    return error as BadUserInputError;
  }
  throw new Error('expected a BadUserInputError');
}

describe('decodeText', () => {
  it('decodes UTF-8 without a BOM and reports the input size in bytes', () => {
    expect(decodeText(utf8('Café au lait\n'))).toEqual({ text: 'Café au lait\n', sizeBytes: 14 });
  });

  it('strips a UTF-8 BOM from bytes (the size still counts it)', () => {
    expect(decodeText(new Uint8Array([...BOM, ...utf8('Hello')]))).toEqual({ text: 'Hello', sizeBytes: 8 });
  });

  it('strips a leading U+FEFF from a string, and only one', () => {
    expect(decodeText('\uFEFF\uFEFFHi').text).toBe('\uFEFFHi');
  });

  it('normalises CRLF and lone CR to LF', () => {
    expect(decodeText(utf8('a\r\nb\rc\n\r\nd')).text).toBe('a\nb\nc\n\nd');
    expect(decodeText('one\r\n\r\ntwo\r').text).toBe('one\n\ntwo\n');
  });

  it('rejects NUL bytes as BINARY_CONTENT (bytes and strings)', () => {
    expect(rejection(() => decodeText(new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x00, 0x01]))).reason).toBe('BINARY_CONTENT');
    expect(rejection(() => decodeText('text\u0000more')).details).toMatchObject({ reason: 'BINARY_CONTENT', field: 'text' });
  });

  it('rejects UTF-16 text (it is full of NUL bytes) as BINARY_CONTENT', () => {
    expect(rejection(() => decodeText(new Uint8Array(Buffer.from('\uFEFFhello', 'utf16le')))).reason).toBe('BINARY_CONTENT');
  });

  it('rejects invalid UTF-8 (Latin-1 bytes, truncated sequences) as INVALID_UTF8', () => {
    expect(rejection(() => decodeText(new Uint8Array([0x63, 0x61, 0x66, 0xe9]))).reason).toBe('INVALID_UTF8');
    expect(rejection(() => decodeText(new Uint8Array([0x61, 0xe2, 0x82]))).reason).toBe('INVALID_UTF8');
  });

  it('rejects a string with an unpaired surrogate as INVALID_UTF8, accepts paired ones', () => {
    expect(rejection(() => decodeText('a\uD800b')).reason).toBe('INVALID_UTF8');
    expect(rejection(() => decodeText('a\uDC00')).reason).toBe('INVALID_UTF8');
    expect(decodeText('emoji 😀').text).toBe('emoji 😀');
  });

  it.each([
    ['an empty string', ''],
    ['only whitespace', ' \n\t\r\n  '],
    ['only a BOM', '\uFEFF'],
    ['a BOM and CRLFs', '\uFEFF\r\n\r\n'],
  ])('rejects %s as EMPTY_DOCUMENT', (_label, input) => {
    expect(rejection(() => decodeText(input)).reason).toBe('EMPTY_DOCUMENT');
    expect(rejection(() => decodeText(utf8(input))).reason).toBe('EMPTY_DOCUMENT');
  });

  it('rejects empty bytes as EMPTY_DOCUMENT and names the given field', () => {
    expect(rejection(() => decodeText(new Uint8Array(0), 'corpusFile')).details).toEqual({ reason: 'EMPTY_DOCUMENT', field: 'corpusFile' });
  });
});
