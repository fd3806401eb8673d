/**
 * Tracing for tests: registers the global provider (as `startTracing` does when on) with the
 * SDK's `InMemorySpanExporter` behind a `SimpleSpanProcessor`, so every span is readable as soon
 * as it ends.
 *
 * ```ts
 * const tracing = startTestTracing();
 * // ... drive a request ...
 * const spans = tracing.spans(); // finished spans, in end order
 * await tracing.shutdown();
 * ```
 */
import { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { registerProvider } from '../tracing.ts';

/** Test tracing: the finished spans and the means to reset and stop. */
export interface TestTracing {
  exporter: InMemorySpanExporter;
  /** Every span finished so far. */
  spans(): ReadableSpan[];
  /** Forgets the spans finished so far. */
  reset(): void;
  /** Unregisters the provider (the api is a no-op again). Idempotent. */
  shutdown(): Promise<void>;
}

/**
 * Registers a provider whose resource `service.name` is `serviceName` (default `flowgraph-test`).
 * @throws Error when a provider is already registered by flowgraph in this process
 */
export function startTestTracing(serviceName = 'flowgraph-test'): TestTracing {
  const exporter = new InMemorySpanExporter();
  const { shutdown } = registerProvider(serviceName, {}, [new SimpleSpanProcessor(exporter)]);
  return {
    exporter,
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    shutdown,
  };
}
