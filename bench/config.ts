/**
 * Configuration of `npm run bench:append`, parsed once from flags and environment into a typed
 * object (flags win over environment, environment over defaults). Fails fast with a message
 * naming the bad value.
 */
import { Command } from 'commander';
import { z } from 'zod';

/** Default admin connection: the machine's PostgreSQL (trust auth, user postgres). */
export const DEFAULT_ADMIN_URL = 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * The implementations compared: flowgraph's event store as the services run it without
 * observability (`flowgraph`), with the service's Prometheus metrics (`flowgraph-metrics`), and
 * with metrics and OpenTelemetry tracing exporting over OTLP/HTTP (`flowgraph-traced`); flowgraph with a
 * `pg_notify` after every commit, the wake-up hints not coalesced per interval (`flowgraph-notify-each`); Emmett; plain INSERTs.
 */
export const TARGET_NAMES = ['flowgraph', 'flowgraph-notify-each', 'flowgraph-metrics', 'flowgraph-traced', 'emmett', 'plain'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

/** Parsed configuration of one benchmark run. */
export interface BenchConfig {
  /** Superuser connection used to create and drop one database per cell. */
  adminUrl: string;
  /** Measured time per cell, in ms. @default 5000 */
  durationMs: number;
  /** Unmeasured time per cell before measuring (creates the streams, warms caches and plans), in ms. @default 1000 */
  warmupMs: number;
  /** Concurrent writers of the single-event workload. @default [1, 4, 16] */
  singleWriters: number[];
  /** Concurrent writers of the batch workload. @default [1, 4] */
  batchWriters: number[];
  /** Measured slices per cell, interleaved across targets (each `durationMs / rounds` long). @default 5 */
  rounds: number;
  /** Events per batch append. @default 100 */
  batchSize: number;
  /** Implementations to run, in this order within each workload. @default all three */
  targets: TargetName[];
  /** Run `CHECKPOINT` before each workload so it starts without the previous one's dirty pages. @default true */
  checkpoint: boolean;
}

const positiveInt = z.coerce.number().int().positive();
const intList = z
  .string()
  .transform((s, ctx) => {
    const parts = s.split(',').map((p) => p.trim()).filter((p) => p !== '');
    const numbers = parts.map(Number);
    if (numbers.some((n) => !Number.isSafeInteger(n) || n < 1 || n > 256)) {
      ctx.addIssue({ code: 'custom', message: `expected a comma-separated list of integers 1..256, got "${s}"` });
      return z.NEVER;
    }
    return numbers;
  });

const schema = z.object({
  adminUrl: z.string().url(),
  durationMs: positiveInt.max(600_000),
  warmupMs: z.coerce.number().int().min(0).max(600_000),
  singleWriters: intList,
  batchWriters: intList,
  batchSize: positiveInt.max(10_000),
  rounds: positiveInt.max(1000),
  targets: z.string().transform((s, ctx) => {
    const names = s.split(',').map((p) => p.trim()).filter((p) => p !== '');
    const bad = names.filter((n) => !(TARGET_NAMES as readonly string[]).includes(n));
    if (bad.length > 0 || names.length === 0) {
      ctx.addIssue({ code: 'custom', message: `expected some of ${TARGET_NAMES.join(',')}, got "${s}"` });
      return z.NEVER;
    }
    return names as TargetName[];
  }),
  checkpoint: z.boolean(),
});

/**
 * Parses `argv` (as `process.argv`) and `env`.
 * Flags: `--url`, `--duration <s>`, `--warmup <s>`, `--writers <list>`, `--batch-writers <list>`,
 * `--batch-size <n>`, `--rounds <n>`, `--targets <list>`, `--no-checkpoint`.
 * Environment: `FLOWGRAPH_ADMIN_DATABASE_URL`, `BENCH_DURATION_S`, `BENCH_WARMUP_S`,
 * `BENCH_WRITERS`, `BENCH_BATCH_WRITERS`, `BENCH_BATCH_SIZE`, `BENCH_ROUNDS`, `BENCH_TARGETS`.
 * @throws Error listing every invalid setting
 */
export function parseBenchConfig(argv: readonly string[], env: NodeJS.ProcessEnv): BenchConfig {
  const program = new Command('bench:append')
    .description('Append throughput of flowgraph vs Emmett vs plain INSERTs on one PostgreSQL')
    .option('--url <url>', 'admin (superuser) connection string; env FLOWGRAPH_ADMIN_DATABASE_URL')
    .option('--duration <seconds>', 'measured seconds per cell; env BENCH_DURATION_S (default 5)')
    .option('--warmup <seconds>', 'warm-up seconds per cell; env BENCH_WARMUP_S (default 1)')
    .option('--writers <list>', 'writers of the single-event workload; env BENCH_WRITERS (default 1,4,16)')
    .option('--batch-writers <list>', 'writers of the batch workload; env BENCH_BATCH_WRITERS (default 1,4)')
    .option('--batch-size <n>', 'events per batch; env BENCH_BATCH_SIZE (default 100)')
    .option('--rounds <n>', 'measured slices per cell, interleaved across targets; env BENCH_ROUNDS (default 5)')
    .option('--targets <list>', 'flowgraph,flowgraph-notify-each,flowgraph-metrics,flowgraph-traced,emmett,plain; env BENCH_TARGETS (default all)')
    .option('--no-checkpoint', 'do not run CHECKPOINT before each workload');
  program.parse([...argv]);
  const o = program.opts<Record<string, string | boolean | undefined>>();
  const seconds = (v: unknown, fallback: number) => (v === undefined || v === '' ? fallback : Math.round(Number(v) * 1000));
  const raw = {
    adminUrl: o.url ?? (env.FLOWGRAPH_ADMIN_DATABASE_URL || DEFAULT_ADMIN_URL),
    durationMs: seconds(o.duration ?? env.BENCH_DURATION_S, 5000),
    warmupMs: seconds(o.warmup ?? env.BENCH_WARMUP_S, 1000),
    singleWriters: o.writers ?? (env.BENCH_WRITERS || '1,4,16'),
    batchWriters: o.batchWriters ?? (env.BENCH_BATCH_WRITERS || '1,4'),
    batchSize: o.batchSize ?? (env.BENCH_BATCH_SIZE || '100'),
    rounds: o.rounds ?? (env.BENCH_ROUNDS || '5'),
    targets: o.targets ?? (env.BENCH_TARGETS || TARGET_NAMES.join(',')),
    checkpoint: o.checkpoint !== false,
  };
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`bench:append: invalid configuration\n${lines.join('\n')}`);
  }
  return parsed.data;
}
