import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { createLifecycle, SHUTDOWN_GRACE_MS } from './lifecycle.ts';

/** A pino logger whose records are kept in `records`. */
function recordingLogger() {
  const records: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { logger, records };
}

describe('createLifecycle', () => {
  it('closes in reverse order within the grace period and does not force an exit', async () => {
    const { logger } = recordingLogger();
    const exits: number[] = [];
    const lifecycle = createLifecycle(logger, { shutdownGraceMs: 1_000, exit: (code) => void exits.push(code), handleSignals: false });
    const closed: string[] = [];
    lifecycle.defer('first', () => void closed.push('first'));
    lifecycle.defer('second', async () => void closed.push('second'));
    const before = process.exitCode;
    await lifecycle.shutdown('test');
    expect(closed).toEqual(['second', 'first']);
    expect(process.exitCode).toBe(0);
    process.exitCode = before;
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(exits).toEqual([]);
  });

  it('abandons a closer that never finishes once the grace period is over: exit code 1, naming it (a hung handler cannot hang the stop)', async () => {
    const { logger, records } = recordingLogger();
    let exited: (code: number) => void;
    const exit = new Promise<number>((resolve) => (exited = resolve));
    const lifecycle = createLifecycle(logger, { shutdownGraceMs: 100, exit: (code) => exited(code), handleSignals: false });
    lifecycle.defer('fine', () => undefined);
    lifecycle.defer('nats consumer', () => new Promise<void>(() => {}));
    void lifecycle.shutdown('test');
    expect(await exit).toBe(1);
    expect(records.find((r) => r.msg?.toString().startsWith('shutdown grace period over'))).toMatchObject({ resource: 'nats consumer', graceMs: 100 });
  });

  it('gives a process 35 s by default, inside docker-compose\'s 40 s stop_grace_period', async () => {
    expect(SHUTDOWN_GRACE_MS).toBe(35_000);
    const { readFileSync } = await import('node:fs');
    const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');
    const periods = [...compose.matchAll(/stop_grace_period:\s*(\d+)s/g)].map((m) => Number(m[1]) * 1000);
    expect(periods.length).toBeGreaterThan(0);
    for (const period of periods) expect(period).toBeGreaterThan(SHUTDOWN_GRACE_MS);
  });
});
