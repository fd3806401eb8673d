/**
 * Exact JSON numbers: flowgraph's JSON numbers are IEEE-754 doubles (JavaScript's `number`,
 * RFC 8259 §6 "good interoperability"), and a number's text is accepted only when a double
 * holds the value it denotes, so that every layer (API, event store, read models) gives back the
 * same value it was given. A text is **exact** when the shortest decimal of its nearest double
 * (`String(Number(text))`, ECMA-262 Number::toString) denotes the same decimal value: `100`,
 * `1e2`, `100.0`, `0.1`, `9007199254740992` (2^53) and `1e300` are exact;
 * `9007199254740993`, `9223372036854775807` (int64 max, which comes back as
 * `9223372036854776000`), `0.1000000000000000055` and `1e400` (no finite double) are not.
 * `-0` denotes the value 0 and is exact here (JSON text keeps no sign of zero through jsonb).
 *
 * The comparison is on decimal digits and exponents (no float arithmetic besides the one
 * `Number(text)` under test). Scanning a JSON text costs one regular-expression pass over it
 * unless it holds a number token of 16 or more digits (dots counted) or with an exponent:
 * only then are its number tokens checked one by one ({@link findInexactNumber}).
 */

/** Where an inexact number sits in a JSON text, and its text. */
export interface InexactNumber {
  /** Keys and array indices from the root to the number, e.g. `['variables', 'input', 'big']`. */
  readonly path: readonly (string | number)[];
  /** The number's text as written, e.g. `9007199254740993`. */
  readonly text: string;
}

/** Number grammar of JSON (RFC 8259 §6) and of GraphQL's IntValue/FloatValue (spec §2.9.1, §2.9.2). */
const NUMBER = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;
/**
 * A number token that may be inexact: 16+ characters of digits and dots, or an exponent, where
 * a JSON value can start (the text's start, or after `:`, `,` or `[`, then any whitespace). It
 * can also match inside a string (then the token-level scan finds nothing); it never misses a
 * number token. Anchoring on those three characters (not on every space) keeps prose cheap.
 */
const MAYBE_INEXACT = /(?:^|[:,[])\s*-?(?:[0-9.]{16}|[0-9.]+[eE])/;

/**
 * Whether a double holds the value `text` denotes exactly (this module's header).
 * @param text a JSON number or a GraphQL IntValue/FloatValue's source text (`ast.value`)
 * @returns false for anything that is not such a number
 */
export function isExactNumberText(text: string): boolean {
  const match = NUMBER.exec(text);
  if (!match) return false;
  const [, , int = '', frac = '', exp] = match;
  // At most 15 digits and no exponent: DBL_DIG (C11 §5.2.4.2.2) guarantees the round trip, and
  // the value lies within 1e-15 .. 1e15, far from underflow and overflow.
  if (exp === undefined && int.length + frac.length <= 15) return true;
  const value = Number(text);
  if (!Number.isFinite(value)) return false;
  return sameDecimal(canonicalDecimal(text), canonicalDecimal(String(value)));
}

/**
 * The first number of a JSON text that a double cannot hold exactly, with its path.
 * Cheap when there is none to suspect: see the module's header.
 * @param json a valid JSON text (parse it first; on invalid JSON the answer is unspecified)
 * @returns undefined when every number is exact
 */
export function findInexactNumber(json: string): InexactNumber | undefined {
  if (!MAYBE_INEXACT.test(json)) return undefined;
  return scanNumbers(json);
}

/**
 * `JSON.parse(json)`, or the first inexact number found instead of a rounded value.
 * @param json a valid JSON text (e.g. a jsonb column's text)
 * @returns `{ value }`, or `{ inexact }` naming the number that would have been rounded
 * @throws SyntaxError from `JSON.parse` for invalid JSON
 */
export function parseJsonExactly(json: string): { value: unknown; inexact?: undefined } | { value?: undefined; inexact: InexactNumber } {
  const inexact = findInexactNumber(json);
  if (inexact) return { inexact };
  return { value: JSON.parse(json) as unknown };
}

/**
 * A path as JavaScript-like text: `variables.input.big`, `items[2]`, `data["a b"]`; `$` for the root.
 * @param path keys and array indices from the root
 */
export function formatJsonPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const step of path) {
    if (typeof step === 'number') out += `[${step}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(step)) out += out === '' ? step : `.${step}`;
    else out += `[${JSON.stringify(step)}]`;
  }
  return out === '' ? '$' : out;
}

/**
 * A number's text for a message: as is up to 64 characters, else its first and last 30 with
 * the length between (jsonb prints `1e400` with all 401 digits; a request may hold millions).
 */
export function shortNumberText(text: string): string {
  return text.length <= 64 ? text : `${text.slice(0, 30)}…${text.slice(-30)} (${text.length} characters)`;
}

/**
 * One sentence for a client: the number, where it is, and what a double would have made of it.
 * @param inexact what {@link findInexactNumber} found
 * @param prefix path steps before the JSON text's own (e.g. `['variables']` for a variables object)
 */
export function describeInexactNumber(inexact: InexactNumber, prefix: readonly (string | number)[] = []): string {
  const nearest = Number(inexact.text);
  const becomes = Number.isFinite(nearest) ? `would become ${String(nearest)}` : 'is beyond the largest double';
  return `The number ${shortNumberText(inexact.text)} at ${formatJsonPath([...prefix, ...inexact.path])} cannot be kept exactly: JSON numbers are IEEE-754 doubles and it ${becomes}; send it as a string`;
}

/** A GraphQL error (as sent, `GraphQLFormattedError`'s shape) refusing an inexact number of a request. */
export interface InexactNumberRefusal {
  message: string;
  extensions: { code: 'BAD_USER_INPUT'; reason: 'INEXACT_NUMBER'; value: string; jsonPath: string };
}

/**
 * The error to answer (HTTP 400, or a graphql-ws `error` message) when a request's raw JSON
 * (an HTTP body, a `variables` query parameter, a graphql-ws `subscribe` message) holds a
 * number that parsing has already rounded: `BAD_USER_INPUT` with `reason: 'INEXACT_NUMBER'`,
 * the number's text as `value` (shortened past 64 characters, {@link shortNumberText}) and its
 * place as `jsonPath` (e.g. `variables.input.big`).
 * @param json the raw text as received; text that is not valid JSON yields undefined (other
 *   checks refuse it)
 * @param prefix path steps to put before the text's own (e.g. `['variables']`)
 * @returns undefined when every number is exact (the usual case, one regular-expression pass)
 */
export function inexactNumberRefusal(json: string, prefix: readonly (string | number)[] = []): InexactNumberRefusal | undefined {
  let inexact: InexactNumber | undefined;
  try {
    inexact = findInexactNumber(json);
  } catch {
    return undefined;
  }
  if (!inexact) return undefined;
  return {
    message: describeInexactNumber(inexact, prefix),
    extensions: { code: 'BAD_USER_INPUT', reason: 'INEXACT_NUMBER', value: shortNumberText(inexact.text), jsonPath: formatJsonPath([...prefix, ...inexact.path]) },
  };
}

interface Decimal {
  negative: boolean;
  /** Significant digits without leading or trailing zeros; '' for zero. */
  digits: string;
  /** value = digits × 10^exponent */
  exponent: number;
}

/** A number text (matched by NUMBER or printed by Number::toString) as sign, digits and exponent. */
function canonicalDecimal(text: string): Decimal {
  const match = NUMBER.exec(text);
  if (!match) throw new TypeError(`not a decimal number: ${text}`);
  const [, sign, int = '', frac = '', exp = '0'] = match;
  // Index scans, not /0+$/: a regex anchored at the end backtracks quadratically over a long run
  // of zeros followed by another digit (a 100 KB number took 8.7 s).
  let start = 0;
  const all = int + frac;
  while (start < all.length && all.charCodeAt(start) === 48) start++;
  let end = all.length;
  while (end > start && all.charCodeAt(end - 1) === 48) end--;
  const digits = all.slice(start, end);
  const exponent = Number(exp) - frac.length + (all.length - end);
  return { negative: sign === '-' && digits !== '', digits, exponent: digits === '' ? 0 : exponent };
}

function sameDecimal(a: Decimal, b: Decimal): boolean {
  return a.negative === b.negative && a.digits === b.digits && a.exponent === b.exponent;
}

/** Walks every token of a valid JSON text, keeping the path, and checks each number token. */
function scanNumbers(json: string): InexactNumber | undefined {
  const path: (string | number)[] = [];
  /** Per open container: true for an object. */
  const objects: boolean[] = [];
  let expectKey = false;
  const n = json.length;
  let i = 0;
  while (i < n) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const end = stringEnd(json, i);
      if (expectKey) {
        const raw = json.slice(i, end);
        path[path.length - 1] = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
        expectKey = false;
      }
      i = end;
    } else if (c === 0x7b /* { */) {
      objects.push(true);
      path.push('');
      expectKey = true;
      i++;
    } else if (c === 0x5b /* [ */) {
      objects.push(false);
      path.push(0);
      i++;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      objects.pop();
      path.pop();
      expectKey = false;
      i++;
    } else if (c === 0x2c /* , */) {
      if (objects.at(-1)) expectKey = true;
      else if (objects.length > 0) path[path.length - 1] = (path[path.length - 1] as number) + 1;
      i++;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      let end = i + 1;
      while (end < n && isNumberChar(json.charCodeAt(end))) end++;
      const text = json.slice(i, end);
      if (!isExactNumberText(text)) return { path: [...path], text };
      i = end;
    } else {
      i++; // whitespace, ':', and the letters of true/false/null
    }
  }
  return undefined;
}

/** Index just after the closing quote of the string starting at `start`. */
function stringEnd(json: string, start: number): number {
  let quote = json.indexOf('"', start + 1);
  while (quote !== -1) {
    let backslashes = 0;
    for (let k = quote - 1; json.charCodeAt(k) === 0x5c; k--) backslashes++;
    if (backslashes % 2 === 0) return quote + 1;
    quote = json.indexOf('"', quote + 1);
  }
  return json.length;
}

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}
