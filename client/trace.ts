/**
 * Reading and printing a cross-service trace (monitoring's `trace(correlationId)`): the chain
 * of integration events one request caused, in causal order, with timings.
 */
import type { GatewayClient } from './gatewayClient.ts';

/** One event of a trace. */
export interface TraceLine {
  depth: number;
  /** Its cause's event id when the cause is in the trace. */
  causeEventId: string | null;
  durationSinceCauseMs: number | null;
  sinceTraceStartMs: number;
  event: { eventId: string; source: string; type: string; actor: string | null; streamId: string };
}

/** A trace as `npm run demo` shows it. */
export interface TraceView {
  correlationId: string;
  eventCount: number;
  durationMs: number;
  sources: string[];
  truncated: boolean;
  events: TraceLine[];
}

/** Fetches the trace of `correlationId` through the gateway. `null` when monitoring saw nothing of it. */
export async function fetchTrace(client: GatewayClient, correlationId: string, first = 1000): Promise<TraceView | null> {
  const { trace } = await client.mustQuery<{ trace: TraceView | null }>(
    /* GraphQL */ `query($id: ID!, $first: Int) { trace(correlationId: $id, first: $first) {
      correlationId eventCount durationMs sources truncated
      events { depth causeEventId durationSinceCauseMs sinceTraceStartMs event { eventId source type actor streamId } }
    } }`,
    { id: correlationId, first },
  );
  return trace;
}

/**
 * Formats a trace as an indented tree, one line per event: `+<ms since start>  <source>.<Type>
 * (<ms after its cause>)`. When one cause has more than `maxRepeats` direct effects (a book's
 * hundreds of DocumentChunked, an extraction's EntityMentioned and RelationObserved), the
 * first `maxRepeats` are shown and the rest of them, with everything they caused, is folded
 * into one line counting events per type.
 */
export function formatTrace(trace: TraceView | null, options: { maxRepeats?: number } = {}): string {
  if (!trace) return '  (monitoring has not observed this correlation id)';
  // Types that several siblings share are folded, other effects stay visible.
  const maxRepeats = options.maxRepeats ?? 3;
  const lines = [
    `  ${trace.eventCount} events from ${trace.sources.join(', ')} over ${(trace.durationMs / 1000).toFixed(2)} s${trace.truncated ? ' (truncated)' : ''}`,
  ];
  const events = trace.events;
  let i = 0;
  while (i < events.length) {
    const line = events[i]!;
    // The segment of `line` and its later siblings of the same type and cause, with all their
    // descendants.
    let end = i + 1;
    let siblings = 1;
    while (end < events.length) {
      const next = events[end]!;
      if (next.depth > line.depth) end++;
      else if (next.depth === line.depth && next.causeEventId === line.causeEventId && next.event.type === line.event.type && line.causeEventId !== null) {
        siblings++;
        end++;
      } else break;
    }
    // Trailing descendants belong to the last sibling only if it is folded; keep them visible
    // when they are effects of a sibling shown in full (handled below by `k`).
    if (siblings <= maxRepeats) {
      lines.push(formatLine(line));
      i++;
      continue;
    }
    // Show the first siblings (with their own effects), fold the rest of the segment.
    let shown = 0;
    let k = i;
    while (k < end && (shown < maxRepeats || events[k]!.depth > line.depth)) {
      if (events[k]!.depth === line.depth) shown++;
      lines.push(formatLine(events[k]!));
      k++;
    }
    const counts = new Map<string, number>();
    for (const folded of events.slice(k, end)) {
      const name = `${folded.event.source}.${folded.event.type}`;
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    const last = events[end - 1]!;
    const summary = [...counts].map(([name, n]) => `${n} ${name}`).join(', ');
    lines.push(`${' '.repeat(11)}  ${'  '.repeat(line.depth)}… ${summary} (until +${last.sinceTraceStartMs.toFixed(0)} ms)`);
    i = end;
  }
  return lines.join('\n');
}

function formatLine(line: TraceLine): string {
  const since = `+${line.sinceTraceStartMs.toFixed(0)} ms`.padStart(11);
  const after = line.durationSinceCauseMs === null ? '' : ` (${line.durationSinceCauseMs.toFixed(0)} ms after its cause)`;
  return `${since}  ${'  '.repeat(line.depth)}${line.event.source}.${line.event.type}${after}`;
}
