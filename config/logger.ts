/** The process logger: pino, JSON lines on stdout. */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './env.ts';

/**
 * A pino logger at `level` (from `LOG_LEVEL`) whose lines carry `name: 'flowgraph'`; services
 * and the gateway log through children (`logger.child({ service: 'workflows' })`).
 */
export function createLogger(level: LogLevel): Logger {
  return pino({ name: 'flowgraph', level });
}
