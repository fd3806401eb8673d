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
 * Reads the trace of `correlationId` until `until(trace)` holds, every `intervalMs` (default 250),
 * for at most `timeoutMs` (default 10,000); returns the last trace read (which may still fail
 * `until`, or be `null`, when time ran out: the caller decides what that means).
 *
 * Monitoring's read model is eventually consistent: it consumes each service's integration
 * events at its own position (NATS durable consumers; the in-process transport's lanes,
 * `broker/in-process.ts`), so when a run has completed in workflows, monitoring may not have
 * observed every knowledge or content event of it yet.
 * @throws what `fetchTrace` throws (GraphQL or HTTP errors); RangeError for a non-positive interval or a negative timeout
 */
export async function fetchTraceWhen(
  client: GatewayClient,
  correlationId: string,
  until: (trace: TraceView) => boolean,
  options: { first?: number; timeoutMs?: number; intervalMs?: number } = {},
): Promise<TraceView | null> {
  const intervalMs = options.intervalMs ?? 250;
  const timeoutMs = options.timeoutMs ?? 10_000;
  if (!(intervalMs > 0)) throw new RangeError(`fetchTraceWhen: intervalMs must be > 0, got ${intervalMs}`);
  if (!(timeoutMs >= 0)) throw new RangeError(`fetchTraceWhen: timeoutMs must be >= 0, got ${timeoutMs}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const trace = await fetchTrace(client, correlationId, options.first);
    if ((trace && until(trace)) || Date.now() >= deadline) return trace;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * `until` for a document pipeline run's trace (client/pipeline.ts): monitoring has observed the
 * run's end in workflows (`RunFailed` or `RunCancelled`: nothing more), and for `RunCompleted`
 * also every `DocumentChunked` of content (`chunkCount`, when known) and knowledge's
 * `DocumentEntitiesExtracted`.
 */
export function pipelineTraceComplete(chunkCount: number | null | undefined): (trace: TraceView) => boolean {
  return (trace) => {
    const types = trace.events.map((e) => `${e.event.source}.${e.event.type}`);
    if (types.includes('workflows.RunFailed') || types.includes('workflows.RunCancelled')) return true;
    if (!types.includes('workflows.RunCompleted')) return false;
    const chunks = types.filter((t) => t === 'content.DocumentChunked').length;
    return types.includes('knowledge.DocumentEntitiesExtracted') && (chunkCount == null || chunks >= chunkCount);
  };
}

/**
 * Formats a trace as an indented tree, one line per event: `+<ms since start>  <source>.<Type>
 * (<ms after its cause>)`. When one cause has more than `maxRepeats` consecutive effects that
 * caused nothing further (a book's hundreds of DocumentChunked, an extraction's
 * EntityMentioned and RelationObserved), the first `maxRepeats` are shown and the rest folded
 * into one line counting them per type. Effects that caused more are always shown.
 */
export function formatTrace(trace: TraceView | null, options: { maxRepeats?: number } = {}): string {
  if (!trace) return '  (monitoring has not observed this correlation id)';
  const maxRepeats = options.maxRepeats ?? 3;
  const lines = [
    `  ${trace.eventCount} events from ${trace.sources.join(', ')} over ${(trace.durationMs / 1000).toFixed(2)} s${trace.truncated ? ' (truncated)' : ''}`,
  ];
  const events = trace.events;
  const isLeaf = (k: number) => k + 1 >= events.length || events[k + 1]!.depth <= events[k]!.depth;
  let i = 0;
  while (i < events.length) {
    const line = events[i]!;
    // A run of effects of one cause that caused nothing themselves (chunks, mentions...).
    let j = i;
    while (j < events.length && events[j]!.depth === line.depth && events[j]!.causeEventId === line.causeEventId && line.causeEventId !== null && isLeaf(j)) j++;
    if (j - i > maxRepeats) {
      for (let k = i; k < i + maxRepeats; k++) lines.push(formatLine(events[k]!));
      const counts = new Map<string, number>();
      for (const folded of events.slice(i + maxRepeats, j)) {
        const name = `${folded.event.source}.${folded.event.type}`;
        counts.set(name, (counts.get(name) ?? 0) + 1);
      }
      const summary = [...counts].map(([name, n]) => `${n} ${name}`).join(', ');
      lines.push(`${' '.repeat(11)}  ${'  '.repeat(line.depth)}… ${summary} more (until +${events[j - 1]!.sinceTraceStartMs.toFixed(0)} ms)`);
      i = j;
      continue;
    }
    lines.push(formatLine(line));
    i++;
  }
  return lines.join('\n');
}

function formatLine(line: TraceLine): string {
  const since = `+${line.sinceTraceStartMs.toFixed(0)} ms`.padStart(11);
  const after = line.durationSinceCauseMs === null ? '' : ` (${line.durationSinceCauseMs.toFixed(0)} ms after its cause)`;
  return `${since}  ${'  '.repeat(line.depth)}${line.event.source}.${line.event.type}${after}`;
}
