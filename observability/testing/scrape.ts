/**
 * Test helper: reads a `/metrics` endpoint and parses the Prometheus text exposition format
 * strictly (every line a comment, blank, or `name{labels} value`; a line that is none of these
 * fails the parse), so that tests check both the values and that the output stays well-formed.
 */

/** One sample: metric name (with any `_bucket`/`_sum`/`_count` suffix), labels, value. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** A parsed scrape. */
export interface Scrape {
  samples: Sample[];
  /** The `# HELP` text of each metric family. */
  help: Map<string, string>;
  /** The `# TYPE` of each metric family. */
  types: Map<string, string>;
  /**
   * The value of the one sample named `name` whose labels include `labels` (others may be
   * present); 0 when none matches (a counter not incremented yet).
   * @throws Error when several match
   */
  value(name: string, labels?: Record<string, string>): number;
  /** Every sample named `name` whose labels include `labels`. */
  all(name: string, labels?: Record<string, string>): Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL_VALUE = '"(?:[^"\\\\\\n]|\\\\[\\\\"n])*"';
const LABEL = `[a-zA-Z_][a-zA-Z0-9_]*=${LABEL_VALUE}`;
const SAMPLE_LINE = new RegExp(`^(${NAME})(?:\\{((?:${LABEL})(?:,${LABEL})*,?)?\\})? (-?(?:[0-9.]+(?:e[+-]?[0-9]+)?)|[+-]?Inf|NaN)$`, 'i');
const LABEL_PAIR = new RegExp(`([a-zA-Z_][a-zA-Z0-9_]*)=(${LABEL_VALUE})`, 'g');

/**
 * Parses an exposition text.
 * @throws Error naming the first line that is not valid exposition format
 */
export function parseExposition(text: string): Scrape {
  const samples: Sample[] = [];
  const help = new Map<string, string>();
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const comment = /^# (HELP|TYPE) (\S+) (.*)$/.exec(line);
    if (comment) {
      (comment[1] === 'HELP' ? help : types).set(comment[2]!, comment[3]!);
      continue;
    }
    const match = SAMPLE_LINE.exec(line);
    if (!match) throw new Error(`not exposition format: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    for (const [, key, quoted] of (match[2] ?? '').matchAll(LABEL_PAIR)) {
      labels[key!] = quoted!.slice(1, -1).replace(/\\(.)/g, (_all, c: string) => (c === 'n' ? '\n' : c));
    }
    // Prometheus parses values with Go's ParseFloat, which takes NaN and Inf in any case (prom-client writes `Nan`).
    const text = match[3]!.toLowerCase();
    const value = text === 'nan' ? NaN : text.endsWith('inf') ? (text.startsWith('-') ? -Infinity : Infinity) : Number(text);
    samples.push({ name: match[1]!, labels, value });
  }
  const all = (name: string, labels: Record<string, string> = {}) =>
    samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  return {
    samples,
    help,
    types,
    all,
    value(name, labels = {}) {
      const found = all(name, labels);
      if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
      return found[0]?.value ?? 0;
    },
  };
}

/** GETs `<base>/metrics` (`base` any URL of the server, e.g. its `/graphql` URL) and parses it. @throws Error unless it is a 200 of `text/plain; version=0.0.4` */
export async function scrape(base: string): Promise<Scrape> {
  const response = await fetch(new URL('/metrics', base));
  const text = await response.text();
  if (response.status !== 200) throw new Error(`GET /metrics: HTTP ${response.status}: ${text}`);
  const type = response.headers.get('content-type') ?? '';
  if (!type.startsWith('text/plain; version=0.0.4')) throw new Error(`GET /metrics: content-type ${type}`);
  return parseExposition(text);
}
