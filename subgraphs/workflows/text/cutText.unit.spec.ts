import { describe, expect, it } from 'vitest';
import { cutToCodePoints } from './cutText.ts';

describe('cutToCodePoints', () => {
  it('never splits a surrogate pair: an emoji straddling the limit in UTF-16 units counts as one character', () => {
    const text = 'x'.repeat(1999) + '😀' + 'y';
    const cut = cutToCodePoints(text, 2000);
    expect(cut).toBe('x'.repeat(1999) + '😀');
    expect(cut.isWellFormed()).toBe(true);
    // A UTF-16 cut (the old `slice(0, 2000)`) leaves a lone high surrogate.
    expect(text.slice(0, 2000).isWellFormed()).toBe(false);
  });

  it('keeps at most the limit in code points, and short text as it is', () => {
    expect(cutToCodePoints('😀😀😀', 2)).toBe('😀😀');
    expect(cutToCodePoints('abc', 3)).toBe('abc');
    expect(cutToCodePoints('abcd', 0)).toBe('');
    expect(cutToCodePoints('a😀b', 5)).toBe('a😀b');
  });
});
