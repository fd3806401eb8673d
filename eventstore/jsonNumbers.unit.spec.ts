import { describe, expect, it } from 'vitest';
import { describeInexactNumber, findInexactNumber, formatJsonPath, inexactNumberRefusal, isExactNumberText, parseJsonExactly } from './jsonNumbers.ts';

describe('isExactNumberText', () => {
  it('accepts every text whose value a double holds, however it is spelled', () => {
    for (const text of ['0', '-0', '100', '1e2', '1E+2', '100.0', '100.00e0', '0.1', '-5', '123.456', '9007199254740992', '-9007199254740992', '1e300', '1' + '0'.repeat(300), '5e-324', '1.7976931348623157e308', '0.30000000000000004', '0.000000000000001', '1e-7', '0.0000001']) {
      expect(isExactNumberText(text), text).toBe(true);
    }
  });

  it('refuses texts a double would round: 2^53 + 1, int64 max, 2^63, 0.1000000000000000055, 1e400, 1e-400', () => {
    for (const text of ['9007199254740993', '9223372036854775807', '9223372036854775808', '0.1000000000000000055', '1e400', '-1e400', '1e-400', '12345678901234567890', '3.141592653589793238']) {
      expect(isExactNumberText(text), text).toBe(false);
    }
  });

  it('checks a number of a million digits in linear time (a long run of zeros followed by a digit used to backtrack quadratically: minutes)', () => {
    const long = '0.1' + '0'.repeat(1_000_000) + '1';
    expect(isExactNumberText(long)).toBe(false);
    expect(isExactNumberText('1' + '0'.repeat(1_000_000) + 'e-1000000')).toBe(true);
    expect(findInexactNumber(`{"v": ${long}}`)?.path).toEqual(['v']);
  });

  it('refuses what is not a number', () => {
    for (const text of ['', '-', '1.', '.5', '1e', 'NaN', 'Infinity', '0x10', ' 1']) expect(isExactNumberText(text), text).toBe(false);
  });
});

describe('findInexactNumber', () => {
  it('names the first inexact number and its path through objects and arrays', () => {
    expect(findInexactNumber('{"variables":{"input":{"big":9007199254740993}}}')).toEqual({ path: ['variables', 'input', 'big'], text: '9007199254740993' });
    expect(findInexactNumber('[1, [2, 3], {"a b": [0.5, 1e400]}]')).toEqual({ path: [2, 'a b', 1], text: '1e400' });
    expect(findInexactNumber('{"k\\"ey": -0.1000000000000000055}')).toEqual({ path: ['k"ey'], text: '-0.1000000000000000055' });
    expect(findInexactNumber('12345678901234567890')).toEqual({ path: [], text: '12345678901234567890' });
  });

  it('finds numbers after any whitespace (pretty-printed bodies) and at the top level', () => {
    expect(findInexactNumber('{\n  "a":\n\t  9007199254740993\n}')).toEqual({ path: ['a'], text: '9007199254740993' });
    expect(findInexactNumber('[\r\n 1,\r\n -1e400]')).toEqual({ path: [1], text: '-1e400' });
    expect(findInexactNumber(' \n0.1000000000000000055 ')).toEqual({ path: [], text: '0.1000000000000000055' });
  });

  it('is not fooled by numbers inside strings, escaped quotes or exact long numbers', () => {
    expect(findInexactNumber('{"q":"mutation { startRun(input: {big: 9007199254740993}) }","v":"\\"1e400"}')).toBeUndefined();
    expect(findInexactNumber('{"id":"3e4f9e2a-1234-4e56-9e78-123456789abc","n":[1e300, 0.30000000000000004, 9007199254740992]}')).toBeUndefined();
    expect(findInexactNumber('{"a":[],"b":{},"c":[{}, []],"d":true,"e":null,"f":9007199254740993}')).toEqual({ path: ['f'], text: '9007199254740993' });
  });
});

describe('parseJsonExactly and the messages', () => {
  it('parses exact JSON as JSON.parse does and returns the inexact number instead of a rounded value', () => {
    expect(parseJsonExactly('{"a":[1,2.5,"x"]}')).toEqual({ value: { a: [1, 2.5, 'x'] } });
    expect(parseJsonExactly('{"a":9007199254740993}')).toEqual({ inexact: { path: ['a'], text: '9007199254740993' } });
  });

  it('formats paths and says what the number would have become', () => {
    expect(formatJsonPath([])).toBe('$');
    expect(formatJsonPath(['variables', 'input', 0, 'a-b'])).toBe('variables.input[0]["a-b"]');
    expect(describeInexactNumber({ path: ['big'], text: '9007199254740993' }, ['variables'])).toMatch(/9007199254740993 at variables\.big .*would become 9007199254740992/);
    expect(describeInexactNumber({ path: [], text: '1e400' })).toMatch(/beyond the largest double/);
    expect(inexactNumberRefusal('{"variables":{"x":[9223372036854775807]}}')).toEqual({
      message: expect.stringContaining('9223372036854775807'),
      extensions: { code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: '9223372036854775807', jsonPath: 'variables.x[0]' },
    });
    expect(inexactNumberRefusal('{"query":"{ a }","variables":{"x":1}}')).toBeUndefined();
    const huge = `9${'1'.repeat(99_999)}`;
    const refusal = inexactNumberRefusal(`{"n":${huge}}`)!;
    expect(refusal.extensions.value).toBe(`${'9' + '1'.repeat(29)}…${'1'.repeat(30)} (100000 characters)`);
    expect(refusal.message.length).toBeLessThan(300);
  });
});
