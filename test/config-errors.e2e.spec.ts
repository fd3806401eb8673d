/**
 * Every command checks the environment before it starts anything: a bad `LOG_LEVEL` (or a bad
 * database variable) gets the same message from each, naming the variable, with no stack, exit
 * code 2, and nothing created (no data directory, no supergraph written).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnNpm } from './support/process.ts';

describe('a bad variable, whatever the command', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'flowgraph-config-errors-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  /** [script, args]: every npm script that starts flowgraph or works on its databases. */
  const commands = (): Array<[string, string[]]> => [
    ['start', []],
    ['start:service', ['workflows']],
    ['start:service', ['gateway']],
    ['db:migrate', []],
    ['rebuild', ['--service', 'workflows', '--no-progress']],
    ['compose', [path.join(dir, 'supergraph.graphql')]],
    ['demo', ['--files', 'a.txt']],
  ];

  /** Runs each command with `env`; returns its exit and the lines naming `variable`. */
  async function runAll(env: Record<string, string>, variable: string, only?: string[]) {
    const results = [];
    for (const [script, args] of commands().filter(([script]) => !only || only.includes(script))) {
      const proc = spawnNpm(script, args, { NODE_ENV: 'development', FLOWGRAPH_DATA_DIR: path.join(dir, 'data'), ...env });
      const exit = await proc.exited;
      results.push({ command: `${script} ${args.join(' ')}`, exit, output: proc.output(), lines: proc.output().split('\n').filter((l) => l.includes(`${variable}:`)) });
    }
    return results;
  }

  it('LOG_LEVEL: every command exits 2 with the same one-line reason before starting anything', async () => {
    const results = await runAll({ LOG_LEVEL: 'loud' }, 'LOG_LEVEL');
    const expected = '  LOG_LEVEL: Invalid option: expected one of "fatal"|"error"|"warn"|"info"|"debug"|"trace"|"silent" (got "loud")';
    for (const { command, exit, output, lines } of results) {
      expect(exit, `${command}:\n${output}`).toEqual({ code: 2, signal: null });
      expect(lines, command).toEqual([expected]);
      expect(output, command).not.toMatch(/^\s+at /m);
    }
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
    expect(existsSync(path.join(dir, 'supergraph.graphql'))).toBe(false);
  }, 120_000);

  // Variables only the serving commands read (issue 9): npm start and start:service, a subgraph and the gateway.
  it.each([
    ['LOG_FORMAT', 'xml', '  LOG_FORMAT: Invalid option: expected one of "json"|"pretty"|"auto" (got "xml")'],
    ['FLOWGRAPH_READINESS_TIMEOUT_MS', '0', /^ {2}FLOWGRAPH_READINESS_TIMEOUT_MS: .* \(got "0"\)$/],
    ['FLOWGRAPH_METRICS', 'maybe', /^ {2}FLOWGRAPH_METRICS: expected on or off .*\(got "maybe"\)$/],
  ] as const)('%s: npm start and start:service (a subgraph, the gateway) exit 2 naming it before starting anything', async (variable, value, expected) => {
    // A subgraph alone needs its database URL first (never connected to here).
    const results = await runAll({ [variable]: value, WORKFLOWS_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none' }, variable, ['start', 'start:service']);
    expect(results).toHaveLength(3);
    for (const { command, exit, output, lines } of results) {
      expect(exit, `${command}:\n${output}`).toEqual({ code: 2, signal: null });
      expect(lines, command).toHaveLength(1);
      if (typeof expected === 'string') expect(lines[0], command).toBe(expected);
      else expect(lines[0], command).toMatch(expected);
      expect(output, command).not.toMatch(/^\s+at /m);
    }
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
  }, 120_000);

  it('a database variable: npm start, db:migrate and rebuild exit 2 with the same reason before starting anything', async () => {
    const results = await runAll({ FLOWGRAPH_EMBEDDED_PG_PORT: 'lots' }, 'FLOWGRAPH_EMBEDDED_PG_PORT', ['start', 'db:migrate', 'rebuild']);
    expect(results).toHaveLength(3);
    const [first] = results;
    expect(first!.lines).toHaveLength(1);
    for (const { command, exit, output, lines } of results) {
      expect(exit, `${command}:\n${output}`).toEqual({ code: 2, signal: null });
      expect(lines, command).toEqual(first!.lines);
      expect(output, command).not.toMatch(/^\s+at /m);
    }
    expect(existsSync(path.join(dir, 'data'))).toBe(false);
  }, 120_000);
});
