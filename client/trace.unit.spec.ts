import { describe, expect, it } from 'vitest';
import type { GatewayClient } from './gatewayClient.ts';
import { fetchTraceWhen, pipelineTraceComplete, type TraceView } from './trace.ts';

/** A trace of `types` (`source.Type`), as monitoring answers it. */
function traceOf(types: string[]): TraceView {
  return {
    correlationId: 'c-1',
    eventCount: types.length,
    durationMs: 1,
    sources: [...new Set(types.map((t) => t.split('.')[0]!))].sort(),
    truncated: false,
    events: types.map((t, i) => {
      const [source, type] = t.split('.') as [string, string];
      return { depth: 0, causeEventId: null, durationSinceCauseMs: null, sinceTraceStartMs: i, event: { eventId: `e-${i}`, source, type, actor: null, streamId: 's' } };
    }),
  };
}

/** A client whose `trace` answers are `answers`, in order (the last one repeated); counts the reads. */
function clientAnswering(answers: (TraceView | null)[]): GatewayClient & { reads: number } {
  const client = {
    url: 'http://gateway.invalid/graphql',
    reads: 0,
    query: async () => {
      throw new Error('not used');
    },
    mustQuery: async <T>() => {
      const answer = answers[Math.min(client.reads, answers.length - 1)] ?? null;
      client.reads++;
      return { trace: answer } as T;
    },
  };
  return client;
}

describe('fetchTraceWhen', () => {
  const partial = traceOf(['workflows.RunStarted', 'workflows.StepStarted', 'content.DocumentChunked', 'workflows.RunCompleted']);
  const whole = traceOf(['workflows.RunStarted', 'workflows.StepStarted', 'content.DocumentChunked', 'content.DocumentChunked', 'knowledge.DocumentEntitiesExtracted', 'workflows.RunCompleted']);

  it('reads again until the condition holds, and returns that trace', async () => {
    const client = clientAnswering([null, partial, whole]);
    const trace = await fetchTraceWhen(client, 'c-1', pipelineTraceComplete(2), { intervalMs: 1 });
    expect(trace).toBe(whole);
    expect(client.reads).toBe(3);
  });

  it('returns the last trace read when time runs out, whether or not it holds', async () => {
    const client = clientAnswering([partial]);
    const started = Date.now();
    const trace = await fetchTraceWhen(client, 'c-1', pipelineTraceComplete(2), { intervalMs: 5, timeoutMs: 40 });
    expect(trace).toBe(partial);
    expect(client.reads).toBeGreaterThan(1);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(await fetchTraceWhen(clientAnswering([null]), 'c-1', () => true, { timeoutMs: 0 })).toBeNull();
  });

  it.each([0, -1, Number.NaN])('refuses intervalMs %s with a RangeError, reading nothing', async (intervalMs) => {
    const client = clientAnswering([whole]);
    await expect(fetchTraceWhen(client, 'c-1', () => true, { intervalMs })).rejects.toThrow(RangeError);
    expect(client.reads).toBe(0);
  });

  it.each([-1, Number.NaN])('refuses timeoutMs %s with a RangeError', async (timeoutMs) => {
    await expect(fetchTraceWhen(clientAnswering([whole]), 'c-1', () => true, { timeoutMs })).rejects.toThrow(RangeError);
  });
});

describe('pipelineTraceComplete', () => {
  it('needs the run to end; a completed one also needs every chunk and the extraction', () => {
    expect(pipelineTraceComplete(1)(traceOf(['workflows.RunStarted', 'content.DocumentChunked', 'knowledge.DocumentEntitiesExtracted']))).toBe(false);
    expect(pipelineTraceComplete(2)(traceOf(['content.DocumentChunked', 'knowledge.DocumentEntitiesExtracted', 'workflows.RunCompleted']))).toBe(false);
    expect(pipelineTraceComplete(1)(traceOf(['content.DocumentChunked', 'workflows.RunCompleted']))).toBe(false);
    expect(pipelineTraceComplete(1)(traceOf(['content.DocumentChunked', 'knowledge.DocumentEntitiesExtracted', 'workflows.RunCompleted']))).toBe(true);
    expect(pipelineTraceComplete(null)(traceOf(['knowledge.DocumentEntitiesExtracted', 'workflows.RunCompleted']))).toBe(true);
    expect(pipelineTraceComplete(100)(traceOf(['workflows.RunStarted', 'workflows.RunFailed']))).toBe(true);
    expect(pipelineTraceComplete(100)(traceOf(['workflows.RunStarted', 'workflows.RunCancelled']))).toBe(true);
  });
});
