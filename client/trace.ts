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
 * (<ms after its cause>)`. Runs of more than `maxRepeats` consecutive siblings of the same
 * type (a book's hundreds of DocumentChunked) are folded into one line.
 */
export function formatTrace(trace: TraceView | null, options: { maxRepeats?: number } = {}): string {
  if (!trace) return '  (monitoring has not observed this correlation id)';
  const maxRepeats = options.maxRepeats ?? 3;
  const lines = [
    `  ${trace.eventCount} events from ${trace.sources.join(', ')} over ${(trace.durationMs / 1000).toFixed(2)} s${trace.truncated ? ' (truncated)' : ''}`,
  ];
  let i = 0;
  while (i < trace.events.length) {
    const line = trace.events[i]!;
    let j = i + 1;
    while (j < trace.events.length && trace.events[j]!.event.type === line.event.type && trace.events[j]!.depth === line.depth) j++;
    const run = j - i;
    const shown = run > maxRepeats ? 1 : run;
    for (let k = i; k < i + shown; k++) lines.push(formatLine(trace.events[k]!));
    if (run > maxRepeats) {
      const lastOfRun = trace.events[j - 1]!;
      lines.push(`${'  '.repeat(line.depth + 1)}  … ${run - 1} more ${line.event.source}.${line.event.type} until +${lastOfRun.sinceTraceStartMs.toFixed(0)} ms`);
    }
    i = j;
  }
  return lines.join('\n');
}

function formatLine(line: TraceLine): string {
  const since = `+${line.sinceTraceStartMs.toFixed(0)} ms`.padStart(11);
  const after = line.durationSinceCauseMs === null ? '' : ` (${line.durationSinceCauseMs.toFixed(0)} ms after its cause)`;
  return `${since}  ${'  '.repeat(line.depth)}${line.event.source}.${line.event.type}${after}`;
}
