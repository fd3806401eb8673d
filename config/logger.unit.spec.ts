/** The process logger (config/logger.ts): LOG_FORMAT, readable lines, trace ids on lines inside a span. */
import { PassThrough } from 'node:stream';
import { context, trace, TraceFlags } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from './env.ts';
import { createLogger, logFormatFromEnv } from './logger.ts';

function capture() {
  const stream = new PassThrough();
  const chunks: string[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk.toString('utf8')));
  return { stream, text: () => chunks.join('') };
}

describe('LOG_FORMAT', () => {
  it('auto (unset, empty or "auto") is pretty on a terminal and json otherwise; json and pretty are taken as given', () => {
    expect(logFormatFromEnv({}, true)).toBe('pretty');
    expect(logFormatFromEnv({}, false)).toBe('json');
    expect(logFormatFromEnv({ LOG_FORMAT: '' }, true)).toBe('pretty');
    expect(logFormatFromEnv({ LOG_FORMAT: 'auto' }, false)).toBe('json');
    expect(logFormatFromEnv({ LOG_FORMAT: 'json' }, true)).toBe('json');
    expect(logFormatFromEnv({ LOG_FORMAT: 'pretty' }, false)).toBe('pretty');
  });

  it.each(['JSON', 'text', 'yes', ' pretty'])('refuses %j with a ConfigError naming LOG_FORMAT', (value) => {
    expect(() => logFormatFromEnv({ LOG_FORMAT: value }, true)).toThrow(ConfigError);
    expect(() => logFormatFromEnv({ LOG_FORMAT: value }, true)).toThrow(/LOG_FORMAT/);
  });
});

describe('createLogger', () => {
  it('json: one JSON object per line with level, name and message', () => {
    const out = capture();
    const logger = createLogger('info', { format: 'json', destination: out.stream });
    logger.child({ service: 'workflows' }).info({ runId: 'r1' }, 'run started');
    logger.debug('not at this level');
    const lines = out.text().trim().split('\n');
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ level: 30, name: 'flowgraph', service: 'workflows', runId: 'r1', msg: 'run started' });
    expect(line.trace_id).toBeUndefined();
  });

  it('pretty: a readable line (level word, [service] prefix, message), not JSON', () => {
    const out = capture();
    createLogger('info', { format: 'pretty', destination: out.stream }).child({ service: 'content' }).warn({ documentId: 'd1' }, 'slow document');
    const text = out.text();
    expect(text).toMatch(/WARN.*\[content\] slow document/);
    expect(text).toContain('documentId: "d1"');
    expect(() => JSON.parse(text.split('\n')[0]!)).toThrow();
  });

  describe('inside a span', () => {
    const manager = new AsyncLocalStorageContextManager();
    beforeAll(() => {
      context.setGlobalContextManager(manager.enable());
    });
    afterAll(() => {
      context.disable();
    });

    it('lines carry trace_id and span_id of the active span; lines outside it do not', () => {
      const out = capture();
      const logger = createLogger('info', { format: 'json', destination: out.stream });
      const span = trace.wrapSpanContext({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.SAMPLED });
      context.with(trace.setSpan(context.active(), span), () => logger.info('inside'));
      logger.info('outside');
      const [inside, outside] = out.text().trim().split('\n').map((l) => JSON.parse(l));
      expect(inside).toMatchObject({ msg: 'inside', trace_id: '4bf92f3577b34da6a3ce929d0e0e4736', span_id: '00f067aa0ba902b7' });
      expect(outside.msg).toBe('outside');
      expect(outside.trace_id).toBeUndefined();
    });

    it('an invalid span context (all-zero ids) adds nothing', () => {
      const out = capture();
      const logger = createLogger('info', { format: 'json', destination: out.stream });
      const span = trace.wrapSpanContext({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: TraceFlags.NONE });
      context.with(trace.setSpan(context.active(), span), () => logger.info('zero'));
      expect(JSON.parse(out.text().trim()).trace_id).toBeUndefined();
    });
  });
});
