/** FLOWGRAPH_CURSOR_SECRET / FLOWGRAPH_CURSOR_RESUME_WINDOW_MS, and the development key `npm start` keeps. */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CursorExpiredError, InvalidCursorError } from '../eventstore/errors.ts';
import { CURSOR_SECRET_KEY, cursorCodecFor, parseCursorConfig } from './cursorConfig.ts';
import { ConfigError } from './env.ts';
import { websocketLimitsFromEnv } from './gatewayConfig.ts';

const binding = { field: 'runUpdated', args: { runId: 'r1' } };
const position = { transactionId: '10', globalPosition: '3' };

describe('cursor configuration', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  it('defaults to no keys and a 24 h resume window', () => {
    expect(parseCursorConfig({})).toEqual({ keys: undefined, resumeWindowMs: 86_400_000 });
    expect(parseCursorConfig({ FLOWGRAPH_CURSOR_SECRET: '', FLOWGRAPH_CURSOR_RESUME_WINDOW_MS: '' })).toEqual({ keys: undefined, resumeWindowMs: 86_400_000 });
  });

  it('reads rotated keys: the first signs, every one verifies', async () => {
    const oldKey = randomBytes(32);
    const newKey = randomBytes(32);
    const before = await cursorCodecFor(parseCursorConfig({ FLOWGRAPH_CURSOR_SECRET: oldKey.toString('base64') }), undefined, 'test');
    const cursor = before.issue(binding, position, Date.now());
    const rotated = await cursorCodecFor(
      parseCursorConfig({ FLOWGRAPH_CURSOR_SECRET: `${newKey.toString('hex')}, ${oldKey.toString('base64url')}` }),
      undefined,
      'test',
    );
    expect(rotated.verify(binding, cursor).position).toEqual(position);
    const dropped = await cursorCodecFor(parseCursorConfig({ FLOWGRAPH_CURSOR_SECRET: newKey.toString('base64') }), undefined, 'test');
    expect(() => dropped.verify(binding, cursor)).toThrow(InvalidCursorError);
  });

  it('applies the configured resume window', async () => {
    const config = parseCursorConfig({ FLOWGRAPH_CURSOR_SECRET: randomBytes(32).toString('base64'), FLOWGRAPH_CURSOR_RESUME_WINDOW_MS: '60000' });
    expect(config.resumeWindowMs).toBe(60_000);
    const codec = await cursorCodecFor(config, undefined, 'test');
    const old = codec.issue(binding, position, Date.now() - 61_000);
    expect(() => codec.verify(binding, old)).toThrow(CursorExpiredError);
  });

  it('refuses short or malformed keys and bad windows without echoing the key', () => {
    const short = randomBytes(16).toString('base64');
    expect(() => parseCursorConfig({ FLOWGRAPH_CURSOR_SECRET: short })).toThrow(ConfigError);
    try {
      parseCursorConfig({ FLOWGRAPH_CURSOR_SECRET: short });
    } catch (error) {
      expect((error as Error).message).toContain('FLOWGRAPH_CURSOR_SECRET');
      expect((error as Error).message).toContain('at least 32');
      expect((error as Error).message).not.toContain(short);
    }
    expect(() => parseCursorConfig({ FLOWGRAPH_CURSOR_SECRET: 'not a key!' })).toThrow(ConfigError);
    expect(() => parseCursorConfig({ FLOWGRAPH_CURSOR_RESUME_WINDOW_MS: '-1' })).toThrow(/FLOWGRAPH_CURSOR_RESUME_WINDOW_MS/);
    expect(() => parseCursorConfig({ FLOWGRAPH_CURSOR_RESUME_WINDOW_MS: '1.5' })).toThrow(ConfigError);
  });

  it('requires a key for a service run alone', async () => {
    await expect(cursorCodecFor(parseCursorConfig({}), undefined, 'workflows alone')).rejects.toThrow(/FLOWGRAPH_CURSOR_SECRET: required to run workflows alone/);
  });

  it('generates a development key once for npm start, kept with mode 600, and reuses it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-cursor-'));
    dirs.push(dir);
    const file = path.join(dir, 'secrets.json');
    const first = await cursorCodecFor(parseCursorConfig({}), file, 'npm start');
    const cursor = first.issue(binding, position, Date.now());
    const again = await cursorCodecFor(parseCursorConfig({}), file, 'npm start');
    expect(again.verify(binding, cursor).position).toEqual(position);
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>;
    expect(Buffer.from(stored[CURSOR_SECRET_KEY]!, 'base64url')).toHaveLength(32);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});

describe('websocket limits', () => {
  it('reads GATEWAY_WS_* and refuses nonsense', () => {
    expect(websocketLimitsFromEnv({ GATEWAY_WS_MAX_BUFFERED_BYTES: '65536', GATEWAY_WS_KEEP_ALIVE_INTERVAL_MS: '0' })).toMatchObject({
      maxBufferedBytes: 65_536,
      keepAliveIntervalMs: 0,
      maxSubscriptionsPerConnection: 100,
    });
    expect(() => websocketLimitsFromEnv({ GATEWAY_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION: '0' })).toThrow(/GATEWAY_WS_MAX_SUBSCRIPTIONS_PER_CONNECTION/);
    expect(() => websocketLimitsFromEnv({ GATEWAY_WS_MAX_MESSAGE_BYTES: 'lots' })).toThrow(ConfigError);
  });
});
