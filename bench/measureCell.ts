/**
 * `cellRunner`: drives N concurrent writers against one `TargetSession`, one phase at a time
 * (warm-up or measured slice), and accumulates throughput and latency over the measured
 * slices. Slices of several targets are interleaved by the caller so that every target sees
 * the same background load.
 */
import type { TargetSession } from './targets.ts';

/** What the measured slices of one cell produced. */
export interface CellMeasurement {
  /** Appends completed in measured slices (all writers). */
  appends: number;
  /** Sum over measured slices of (slice start → last writer's last append returned), in ms. */
  elapsedMs: number;
  /** Appends per second: `appends / elapsedMs * 1000`. */
  appendsPerSecond: number;
  /** Latency percentiles of one append call, in ms (client side, queueing in the pool included). */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /**
   * CPU time of this Node process per append over the measured slices, in µs (user + system,
   * `process.cpuUsage`): the client-side cost of one append, what instrumentation adds to; slices
   * of different targets never overlap, so only background work of other targets can leak in.
   */
  cpuMicrosPerAppend: number;
  /** Appends per writer over all phases, warm-up included (for verification). */
  totalAppendsPerWriter: number[];
}

/** Runs phases of one cell; see `cellRunner`. */
export interface CellRunner {
  /**
   * Runs every writer's loop — `session.append(w)` back to back — until `ms` have passed; an
   * append started before the deadline finishes and, when `measured`, counts (the slice's
   * elapsed time includes it). The first phase makes at least one append per writer, so every
   * stream exists before anything is measured.
   * @throws the first error an append throws (the other writers stop at their next append)
   */
  run(ms: number, measured: boolean): Promise<void>;
  /** Totals of the measured slices so far. */
  result(): CellMeasurement;
}

/** Creates the runner of one cell with `writers` concurrent writers. */
export function cellRunner(session: TargetSession, writers: number): CellRunner {
  const totals = Array.from({ length: writers }, () => 0);
  const latencies: number[] = [];
  let elapsedMs = 0;
  let cpuMicros = 0;
  let first = true;

  return {
    async run(ms, measured) {
      const atLeastOne = first;
      first = false;
      let failed: unknown;
      session.enter?.();
      const cpuStart = process.cpuUsage();
      const start = performance.now();
      const deadline = start + ms;
      await Promise.all(
        Array.from({ length: writers }, async (_, w) => {
          let done = 0;
          while (failed === undefined && (performance.now() < deadline || (atLeastOne && done === 0))) {
            const t0 = performance.now();
            try {
              await session.append(w);
            } catch (error) {
              failed ??= error;
              return;
            }
            if (measured) latencies.push(performance.now() - t0);
            totals[w]!++;
            done++;
          }
        }),
      );
      // A target's background work (flowgraph-traced: exporting its spans) is finished and timed inside its own run.
      await session.leave?.();
      if (failed !== undefined) throw failed;
      if (measured) {
        elapsedMs += performance.now() - start;
        const cpu = process.cpuUsage(cpuStart);
        cpuMicros += cpu.user + cpu.system;
      }
    },
    result() {
      const sorted = [...latencies].sort((a, b) => a - b);
      const pct = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
      return {
        appends: sorted.length,
        elapsedMs,
        appendsPerSecond: elapsedMs > 0 ? (sorted.length / elapsedMs) * 1000 : NaN,
        p50Ms: pct(50),
        p99Ms: pct(99),
        maxMs: sorted[sorted.length - 1] ?? NaN,
        cpuMicrosPerAppend: sorted.length > 0 ? cpuMicros / sorted.length : NaN,
        totalAppendsPerWriter: [...totals],
      };
    },
  };
}
