/**
 * CPU profiles of a benchmark child, taken in-process through the inspector (only the measured
 * window, not start-up), written as `.cpuprofile` files (open them in Chrome DevTools) and
 * summarised as the functions with the most self time.
 */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import { getHeapSpaceStatistics } from 'node:v8';

/** One line of a summary. */
export interface SelfTime {
  functionName: string;
  /** `file:line` (relative to the repository when inside it). */
  location: string;
  selfMs: number;
  /** Share of all samples, %. */
  percent: number;
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface Profile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
}

let session: Session | undefined;

/** Starts sampling (every `intervalUs`). */
export async function startCpuProfile(intervalUs = 250): Promise<void> {
  session ??= new Session();
  try {
    session.connect();
  } catch {
    // already connected
  }
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
}

/** Stops sampling, writes the profile to `file` and returns the `top` functions by self time. */
export async function stopCpuProfile(file: string, top = 20): Promise<{ file: string; totalMs: number; top: SelfTime[] }> {
  if (!session) throw new Error('no profile running');
  const { profile } = (await session.post('Profiler.stop')) as unknown as { profile: Profile };
  await writeFile(file, JSON.stringify(profile));
  return { file, ...summarizeProfile(profile, top) };
}

/** Self time per function (name + file + line), largest first. */
export function summarizeProfile(profile: Profile, top = 20): { totalMs: number; top: SelfTime[] } {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfUs = new Map<string, { functionName: string; location: string; us: number }>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let totalUs = 0;
  const root = process.cwd();
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!);
    // timeDeltas[i] is the time before sample i; attribute the following delta to sample i.
    const us = Math.max(0, deltas[i + 1] ?? 0);
    if (!node) continue;
    totalUs += us;
    const { functionName, url, lineNumber } = node.callFrame;
    const file = url.replace(/^file:\/\//, '').replace(`${root}/`, '');
    const location = file ? `${file}:${lineNumber + 1}` : '';
    const key = `${functionName}@${location}`;
    const entry = selfUs.get(key) ?? { functionName: functionName || '(anonymous)', location, us: 0 };
    entry.us += us;
    selfUs.set(key, entry);
  }
  const sorted = [...selfUs.values()].sort((a, b) => b.us - a.us).slice(0, top);
  return {
    totalMs: totalUs / 1000,
    top: sorted.map((e) => ({ functionName: e.functionName, location: e.location, selfMs: e.us / 1000, percent: totalUs > 0 ? (100 * e.us) / totalUs : 0 })),
  };
}

/** The `memoryUsage`, `profileStart` and `profileStop { file }` commands of a bench child (serveBenchCommands): its memory now, {@link startCpuProfile}, {@link stopCpuProfile}. */
export const profileCommands = {
  /**
   * The child's memory now: `process.memoryUsage()` in bytes (rss, heapTotal, heapUsed,
   * external, arrayBuffers) and V8's heap spaces (`v8.getHeapSpaceStatistics()`: space name →
   * size and used bytes), so a benchmark can say what its RSS is made of.
   */
  memoryUsage(): { usage: NodeJS.MemoryUsage; spaces: Record<string, { sizeBytes: number; usedBytes: number }> } {
    const spaces = Object.fromEntries(
      getHeapSpaceStatistics().map((space) => [space.space_name, { sizeBytes: space.space_size, usedBytes: space.space_used_size }]),
    );
    return { usage: process.memoryUsage(), spaces };
  },
  async profileStart(): Promise<boolean> {
    await startCpuProfile();
    return true;
  },
  async profileStop(args: { file: string }) {
    return stopCpuProfile(args.file);
  },
};
