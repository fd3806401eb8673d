/**
 * Cutting user text to a length limit without breaking it: the limit counts code points
 * (Unicode scalar values, what PostgreSQL's `char_length` calls characters), so an emoji or any
 * other character outside the Basic Multilingual Plane (a UTF-16 surrogate pair) counts once and
 * is kept whole or dropped whole. A cut at a UTF-16 code unit could leave a lone high surrogate,
 * which is not valid Unicode: the event store refuses it (eventstore/validate.ts) and PostgreSQL's
 * driver would turn it into U+FFFD.
 */

/**
 * The first `maxCodePoints` code points of `text` (all of it when it has no more).
 * Combining sequences (e.g. an emoji with a skin-tone modifier or a ZWJ sequence) may lose their
 * trailing parts, but every code point kept is whole, so a well-formed `text` gives a well-formed
 * result. Lone surrogates already in `text` count as one code point each and are kept as they are.
 * @param maxCodePoints an integer ≥ 0
 * @example cutToCodePoints('ab😀', 2) === 'ab'; cutToCodePoints('ab😀', 3) === 'ab😀'
 */
export function cutToCodePoints(text: string, maxCodePoints: number): string {
  // A string of at most max UTF-16 units has at most max code points.
  if (text.length <= maxCodePoints) return text;
  let units = 0;
  let count = 0;
  for (const codePoint of text) {
    if (count === maxCodePoints) break;
    units += codePoint.length;
    count++;
  }
  return text.slice(0, units);
}
