/**
 * The process logger: pino. JSON lines on stdout (one object per line, what log shippers read),
 * or readable coloured lines (pino-pretty) when a person watches a terminal.
 *
 * Every line written inside an OpenTelemetry span carries its `trace_id` and `span_id` (W3C hex,
 * the OpenTelemetry log data model's names), so a log line leads to its trace and back
 * (observability/tracing.ts). With tracing off no span is ever active and nothing is added.
 */
import { isSpanContextValid, trace } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';
import pretty from 'pino-pretty';
import { z } from 'zod';
import { parseEnv, type LogLevel } from './env.ts';

/** How log lines are written: `json` (one JSON object per line) or `pretty` (readable lines). */
export type LogFormat = 'json' | 'pretty';

/**
 * `LOG_FORMAT`: `json`, `pretty`, or unset/empty/`auto` for `pretty` when stdout is a terminal
 * (`isTTY`) and `json` otherwise (a pipe, a file, a container's log driver).
 * @throws ConfigError naming `LOG_FORMAT` for any other value
 */
export function logFormatFromEnv(env: NodeJS.ProcessEnv, isTTY: boolean = process.stdout.isTTY === true): LogFormat {
  const { LOG_FORMAT } = parseEnv(env, {
    LOG_FORMAT: z.preprocess((value) => (value === '' ? undefined : value), z.enum(['json', 'pretty', 'auto']).default('auto')),
  });
  if (LOG_FORMAT === 'auto') return isTTY ? 'pretty' : 'json';
  return LOG_FORMAT;
}

/** Options of {@link createLogger}. */
export interface CreateLoggerOptions {
  /** @default `logFormatFromEnv(process.env)` */
  format?: LogFormat;
  /** Where lines go. @default stdout */
  destination?: NodeJS.WritableStream;
}

/** `trace_id`/`span_id` of the active span, or nothing when there is none (tracing off). */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const context = span.spanContext();
  return isSpanContextValid(context) ? { trace_id: context.traceId, span_id: context.spanId } : {};
}

/**
 * A pino logger at `level` (from `LOG_LEVEL`) whose lines carry `name: 'flowgraph'` (and
 * `trace_id`/`span_id` inside a span); services and the gateway log through children
 * (`logger.child({ service: 'workflows' })`). `pretty` writes synchronously on the main thread
 * (no worker transport), so nothing is lost when the process exits.
 * @throws ConfigError when `format` is not given and `LOG_FORMAT` is invalid
 */
export function createLogger(level: LogLevel, options: CreateLoggerOptions = {}): Logger {
  const format = options.format ?? logFormatFromEnv(process.env);
  const settings = { name: 'flowgraph', level, mixin: traceFields };
  if (format === 'pretty') {
    return pino(
      settings,
      pretty({
        sync: true,
        colorize: options.destination === undefined ? process.stdout.isTTY === true : false,
        translateTime: 'SYS:HH:MM:ss.l',
        ignore: 'pid,hostname,name',
        // The service or component first, like a prefix: "INFO (workflows): ...".
        messageFormat: '{if service}[{service}] {end}{if component}[{component}] {end}{msg}',
        ...(options.destination ? { destination: options.destination } : {}),
      }),
    );
  }
  return options.destination ? pino(settings, options.destination) : pino(settings);
}

