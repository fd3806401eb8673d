/**
 * Test runs leave nothing in the machine's temporary directory: every worker (and every process
 * a test spawns) has `TMPDIR` in a directory of the run, removed at teardown (test/support/tmpdir.ts).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createRunTmpdir, RUN_DIR_PREFIX } from './support/tmpdir.ts';

describe('the test run temporary directory', () => {
  const parents: string[] = [];
  afterAll(async () => {
    for (const dir of parents) await rm(dir, { recursive: true, force: true });
  });

  it('is the TMPDIR of the test workers', () => {
    expect(path.basename(path.dirname(path.join(os.tmpdir(), 'x')))).toMatch(new RegExp(`^${RUN_DIR_PREFIX}\\d+-`));
    expect(process.env.TMPDIR).toBe(os.tmpdir());
  });

  it('is removed at teardown with whatever tests and the processes they spawned left in it', async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 'run-parent-'));
    parents.push(parent);
    const run = await createRunTmpdir(parent);
    // A spawned process that forgets its mkdtemp directory (mode 700, with a file inside).
    const child = spawnSync(process.execPath, ['-e', "const fs = require('node:fs'); const os = require('node:os'); const d = fs.mkdtempSync(os.tmpdir() + '/leak-'); fs.writeFileSync(d + '/f', 'x'); console.log(d)"], {
      env: { PATH: process.env.PATH, TMPDIR: run.dir },
      encoding: 'utf8',
    });
    const leaked = child.stdout.trim();
    expect(path.dirname(leaked)).toBe(run.dir);
    await mkdir(path.join(run.dir, 'nested', 'deeper'), { recursive: true });
    await writeFile(path.join(run.dir, 'nested', 'deeper', 'file'), 'x');
    await chmod(path.join(run.dir, 'nested'), 0o700);
    await run.remove();
    expect(existsSync(run.dir)).toBe(false);
    expect(await readdir(parent)).toEqual([]);
  });

  it('of a killed run is removed by the next run, and a live run keeps its own', async () => {
    const parent = await mkdtemp(path.join(os.tmpdir(), 'run-parent-'));
    parents.push(parent);
    const gone = spawnSync(process.execPath, ['-e', 'console.log(process.pid)'], { encoding: 'utf8' });
    const deadPid = Number(gone.stdout.trim());
    await mkdir(path.join(parent, `${RUN_DIR_PREFIX}${deadPid}-killed`, 'left'), { recursive: true });
    await mkdir(path.join(parent, `${RUN_DIR_PREFIX}${process.pid}-concurrent`));
    await mkdir(path.join(parent, 'someone-elses'));
    const run = await createRunTmpdir(parent);
    expect((await readdir(parent)).sort()).toEqual([path.basename(run.dir), `${RUN_DIR_PREFIX}${process.pid}-concurrent`, 'someone-elses'].sort());
    await run.remove();
  });
});
