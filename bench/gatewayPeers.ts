/**
 * `npm run bench:gateway -- --peers` (issue 13, "Gateway"): flowgraph's gateway beside the stock
 * `@apollo/gateway` and Hive Gateway on three queries over flowgraph's own subgraphs and
 * supergraph, in one run. See bench/README.md (`npm run bench:gateway`) and bench/gateway.ts.
 *
 * Targets, each gateway alone in its child process:
 * - `flowgraph`: gateway/server.ts `startGateway` as bench/httpGateway.ts starts it (default
 *   settings: client tokens verified, every request carries `Authorization: Bearer <HS256 JWT>`);
 * - `flowgraph-nodedupe`: the same with `dedupeInFlight: false`;
 * - `stock`: `@apollo/gateway` + `@apollo/server`, no plugin added (bench/peerGateway.ts);
 * - `hive`, `hive-nodedupe`: Hive Gateway, default settings, and with the HTTP transport's
 *   `deduplicateInflightRequests: false` (bench/peerGateway.ts);
 * - `direct`: the workflows subgraph itself, Q1 only (the ceiling: Q1 is one subgraph fetch).
 * The four subgraphs run in one more child (bench/peerServices.ts) on fresh databases.
 *
 * Queries: Q1 `workflows(first) { id name steps { name kind } }`; Q2 `runs(first: 20, after)`
 * with `steps { name status }` and `timeline(first: 5) { event { type source } }`; Q3
 * `documents(first: 10, after)` with `entities(first: 10) { id name kind }`. Workloads:
 * `identical` (every client sends the same variables: Q1 `first: 20`, Q2/Q3 the first page) and
 * `distinct` (client i sends variant i of 20: Q1 `first: 11 + i`, Q2/Q3 `after` the i-th
 * cursor, so no two in-flight requests, and none of their subgraph fetches, are the same).
 *
 * Every answer is checked: before measuring, each variant's answer through each target must equal
 * the reference's data (the direct subgraph for Q1, the stock gateway for Q2/Q3) without errors;
 * during the load, an answer whose text differs from that target's checked text is parsed and
 * compared again; a wrong answer aborts the run.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { SelfTime } from './cpuProfile.ts';
import { createMigratedBenchDatabase, type BenchDatabase } from './benchDatabase.ts';
import { processCpuMicros, processRssBytes, spawnBenchChild, type BenchChild } from './childProcess.ts';
import { benchClientToken, benchSubgraphIdentity, installBenchCredentials } from './credentials.ts';

export const PEER_TARGETS = ['flowgraph', 'flowgraph-nodedupe', 'stock', 'hive', 'hive-nodedupe', 'direct'] as const;
export type PeerTarget = (typeof PEER_TARGETS)[number];
export const PEER_QUERIES = ['Q1', 'Q2', 'Q3'] as const;
export type PeerQuery = (typeof PEER_QUERIES)[number];
export const PEER_WORKLOADS = ['identical', 'distinct'] as const;
export type PeerWorkload = (typeof PEER_WORKLOADS)[number];

/** Issue 13's targets, same run: flowgraph ≥ 3× stock, ≥ Hive default, RSS ≤ stock. */
export const PEER_GOALS = { vsStock: 3, vsHive: 1 } as const;

const QUERIES: Record<PeerQuery, string> = {
  Q1: 'query Q1($first: Int) { workflows(first: $first) { id name steps { name kind } } }',
  Q2: 'query Q2($after: String) { runs(first: 20, after: $after) { edges { node { id status steps { name status } timeline(first: 5) { event { type source } } } } } }',
  Q3: 'query Q3($after: String) { documents(first: 10, after: $after) { edges { node { id title entities(first: 10) { id name kind } } } } }',
};
/** Variants of the distinct workload (client i sends variant i mod this). */
const DISTINCT_VARIANTS = 20;

export interface PeerOptions {
  adminUrl: string;
  concurrency: number;
  duration: number;
  warmup: number;
  rounds: number;
  targets: PeerTarget[];
  queries: PeerQuery[];
  workloads: PeerWorkload[];
  /**
   * After the rounds, CPU-profile flowgraph's and then stock's gateway (those of them in `targets`)
   * under Q1 in `workloads[0]` for `duration` s each; the top self time is printed and the
   * `.cpuprofile` files are left in the temporary directory. Needs Q1 in `queries`.
   */
  profile: boolean;
}

interface Cell {
  target: PeerTarget;
  query: PeerQuery;
  workload: PeerWorkload;
}
interface Round extends Cell {
  requests: number;
  seconds: number;
  latenciesMs: number[];
  gatewayCpuUs: number;
  servicesCpuUs: number;
  maxRssBytes: number;
  /** The gateway's memory at the end of the round (its `memoryUsage` command), bytes; undefined for `direct`. */
  memory?: GatewayMemory;
}

/** What a gateway child's RSS is made of at one moment (bench/cpuProfile.ts `memoryUsage`, no GC forced), bytes. */
interface GatewayMemory {
  rss: number;
  heapTotal: number;
  heapUsed: number;
  /** V8's young generation (`new_space`) size. */
  newSpace: number;
  /** Off-heap memory V8 knows of (`external`, ArrayBuffers included). */
  external: number;
}

async function gatewayMemory(child: BenchChild): Promise<GatewayMemory> {
  const { usage, spaces } = await child.call<{ usage: NodeJS.MemoryUsage; spaces: Record<string, { sizeBytes: number }> }>('memoryUsage');
  return { rss: usage.rss, heapTotal: usage.heapTotal, heapUsed: usage.heapUsed, newSpace: spaces.new_space?.sizeBytes ?? NaN, external: usage.external };
}

const log = (message: string) => process.stderr.write(`${message}\n`);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs the comparison; prints the table, the verdicts and the JSON line. Sets `process.exitCode` 1 on a MISS-free error. */
export async function runPeers(opts: PeerOptions): Promise<void> {
  installBenchCredentials();
  const children: BenchChild[] = [];
  const databases: BenchDatabase[] = [];
  let stopping = false;
  const cleanUp = async () => {
    for (const child of children.splice(0)) await child.stop().catch(() => {});
    for (const db of databases.splice(0)) await db.drop().catch(() => {});
  };
  process.once('SIGINT', () => {
    stopping = true;
    void cleanUp().finally(() => process.exit(130));
  });
  const loadAtStart = os.loadavg();
  try {
    log('preparing databases and starting the four subgraphs...');
    const dbUrls = {} as Record<'workflows' | 'content' | 'knowledge' | 'monitoring', string>;
    for (const service of ['workflows', 'content', 'knowledge', 'monitoring'] as const) {
      const db = await createMigratedBenchDatabase(opts.adminUrl, `gwpeer_${service}`, service);
      databases.push(db);
      dbUrls[service] = db.url;
    }
    const services = spawnBenchChild('services', 'peerServices.ts');
    children.push(services);
    const seed = { workflows: 30, documents: 30, runs: 30 };
    const t0 = Date.now();
    const { subgraphs } = await services.call<{ subgraphs: Record<string, string> }>('start', { urls: dbUrls, ...seed }, 420_000);
    log(`seeded ${seed.workflows} workflows, ${seed.documents} documents (pipeline runs), ${seed.runs} more runs in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

    const supergraphSdl = readFileSync(new URL('../supergraph.graphql', import.meta.url), 'utf8');
    const subgraphIdentity = await benchSubgraphIdentity({ subject: 'bench', role: 'operator' });
    const token = await benchClientToken('bench', 'operator');
    const gateways = new Map<PeerTarget, { child: BenchChild; url: string; idle: GatewayMemory }>();
    for (const target of opts.targets) {
      if (target === 'direct') continue;
      log(`starting ${target}...`);
      const flowgraph = target.startsWith('flowgraph');
      const child = spawnBenchChild(target, flowgraph ? 'httpGateway.ts' : 'peerGateway.ts');
      children.push(child);
      const { url } = flowgraph
        ? await child.call<{ url: string }>('start', { auth: 'on', supergraphSdl, urls: subgraphs, dedupeInFlight: target === 'flowgraph' })
        : await child.call<{ url: string }>('start', { kind: target.startsWith('hive') ? 'hive' : 'stock', supergraphSdl, urls: subgraphs, subgraphIdentity, dedupe: target === 'hive' });
      gateways.set(target, { child, url, idle: await gatewayMemory(child) });
    }
    const urlOf = (target: PeerTarget) => (target === 'direct' ? subgraphs.workflows! : gateways.get(target)!.url);
    const headersOf = (target: PeerTarget): Record<string, string> => ({
      'content-type': 'application/json',
      ...(target.startsWith('flowgraph') ? { authorization: `Bearer ${token}` } : {}),
      ...(target === 'direct' ? { 'x-flowgraph-identity': subgraphIdentity } : {}),
    });

    // Variants: [0] is the identical workload's; [0..19] the distinct one's.
    const direct = async (url: string, query: string) => {
      const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', 'x-flowgraph-identity': subgraphIdentity }, body: JSON.stringify({ query }) });
      const body = (await response.json()) as { data?: any; errors?: unknown };
      if (body.errors || !body.data) throw new Error(`${query}: ${JSON.stringify(body)}`);
      return body.data;
    };
    const runCursors: string[] = (await direct(subgraphs.workflows!, '{ runs(first: 100) { edges { cursor } } }')).runs.edges.map((e: { cursor: string }) => e.cursor);
    const documentCursors: string[] = (await direct(subgraphs.content!, '{ documents(first: 100) { edges { cursor } } }')).documents.edges.map((e: { cursor: string }) => e.cursor);
    if (runCursors.length < DISTINCT_VARIANTS + 20 || documentCursors.length < DISTINCT_VARIANTS + 10) {
      throw new Error(`seeding gave ${runCursors.length} runs and ${documentCursors.length} documents: too few for ${DISTINCT_VARIANTS} full distinct pages`);
    }
    const variants: Record<PeerQuery, Record<string, unknown>[]> = {
      Q1: [{ first: 20 }, ...Array.from({ length: DISTINCT_VARIANTS - 1 }, (_, i) => ({ first: i < 9 ? 11 + i : 12 + i }))],
      Q2: [{ after: null }, ...runCursors.slice(0, DISTINCT_VARIANTS - 1).map((after) => ({ after }))],
      Q3: [{ after: null }, ...documentCursors.slice(0, DISTINCT_VARIANTS - 1).map((after) => ({ after }))],
    };
    const bodies = Object.fromEntries(PEER_QUERIES.map((q) => [q, variants[q].map((v) => JSON.stringify({ query: QUERIES[q], variables: v }))])) as Record<PeerQuery, string[]>;
    const cells: Cell[] = [];
    for (const query of opts.queries) {
      for (const workload of opts.workloads) {
        for (const target of opts.targets) if (target !== 'direct' || query === 'Q1') cells.push({ target, query, workload });
      }
    }

    // References and per-target checked texts.
    const referenceTarget = (query: PeerQuery): PeerTarget => (query === 'Q1' ? 'direct' : 'stock');
    const reference = new Map<string, string>(); // `${query}/${variant}` → JSON of data
    const checkedText = new Map<string, string>(); // `${target}/${query}/${variant}` → raw answer text
    const post = async (target: PeerTarget, body: string) => {
      const response = await fetch(urlOf(target), { method: 'POST', headers: headersOf(target), body });
      return { status: response.status, text: await response.text() };
    };
    const dataOf = (target: PeerTarget, query: PeerQuery, variant: number, answer: { status: number; text: string }) => {
      let parsed: { data?: unknown; errors?: unknown };
      try {
        parsed = JSON.parse(answer.text);
      } catch {
        throw new Error(`${target} ${query} variant ${variant}: HTTP ${answer.status}, not JSON: ${answer.text.slice(0, 500)}`);
      }
      if (answer.status !== 200 || parsed.errors || !parsed.data) throw new Error(`${target} ${query} variant ${variant}: HTTP ${answer.status} ${answer.text.slice(0, 1000)}`);
      return JSON.stringify(parsed.data);
    };
    for (const query of opts.queries) {
      const ref = referenceTarget(query);
      // The reference target may not be among those measured: ask it anyway (stock is started only if measured).
      const refTarget = ref === 'stock' && !gateways.has('stock') ? [...gateways.keys()][0]! : ref;
      for (let v = 0; v < DISTINCT_VARIANTS; v++) reference.set(`${query}/${v}`, dataOf(refTarget, query, v, await post(refTarget, bodies[query][v]!)));
      const distinctData = new Set(Array.from({ length: DISTINCT_VARIANTS }, (_, v) => reference.get(`${query}/${v}`)));
      if (distinctData.size !== DISTINCT_VARIANTS) throw new Error(`${query}: the ${DISTINCT_VARIANTS} distinct variants gave only ${distinctData.size} different answers`);
      // The data is what the queries are meant to read: full pages, timelines and entities present.
      for (let v = 0; v < DISTINCT_VARIANTS; v++) {
        const data = JSON.parse(reference.get(`${query}/${v}`)!);
        const ok =
          query === 'Q1'
            ? data.workflows.length === variants.Q1[v]!.first && data.workflows.every((w: { steps: unknown[] }) => w.steps.length > 0)
            : query === 'Q2'
              ? data.runs.edges.length === 20 && data.runs.edges.every((e: any) => e.node.steps.length > 0 && e.node.timeline.length > 0)
              : data.documents.edges.length === 10 && data.documents.edges.every((e: any) => e.node.entities.length > 0);
        if (!ok) throw new Error(`${query} variant ${v}: the seeded data is not what the query should read: ${reference.get(`${query}/${v}`)!.slice(0, 1000)}`);
      }
    }
    for (const { target, query } of cells) {
      for (let v = 0; v < DISTINCT_VARIANTS; v++) {
        const key = `${target}/${query}/${v}`;
        if (checkedText.has(key)) continue;
        const answer = await post(target, bodies[query][v]!);
        const data = dataOf(target, query, v, answer);
        if (data !== reference.get(`${query}/${v}`)) throw new Error(`${target} ${query} variant ${v}: wrong answer\n got ${data.slice(0, 800)}\nwant ${reference.get(`${query}/${v}`)!.slice(0, 800)}`);
        checkedText.set(key, answer.text);
      }
    }
    log(`every target answers every variant as the reference (${checkedText.size} answers checked)`);

    const servicesPid = services.pid;
    async function load(cell: Cell, seconds: number, record: boolean): Promise<Round> {
      const { target, query, workload } = cell;
      const url = urlOf(target);
      const headers = headersOf(target);
      const pid = target === 'direct' ? undefined : gateways.get(target)!.child.pid;
      const latenciesMs: number[] = [];
      let requests = 0;
      let maxRssBytes = pid ? await processRssBytes(pid) : NaN;
      let sampling = true;
      const sampler = (async () => {
        while (sampling && pid) {
          await sleep(200);
          const rss = await processRssBytes(pid).catch(() => NaN);
          if (rss > maxRssBytes) maxRssBytes = rss;
        }
      })();
      const gw0 = pid ? await processCpuMicros(pid) : 0;
      const svc0 = await processCpuMicros(servicesPid);
      const start = performance.now();
      const deadline = start + seconds * 1000;
      let failure: Error | undefined;
      await Promise.all(
        Array.from({ length: opts.concurrency }, async (_, client) => {
          const v = workload === 'identical' ? 0 : client % DISTINCT_VARIANTS;
          const body = bodies[query][v]!;
          const expected = checkedText.get(`${target}/${query}/${v}`)!;
          while (!stopping && !failure && performance.now() < deadline) {
            const t = performance.now();
            let answer: { status: number; text: string };
            try {
              answer = await post(target, body);
            } catch (error) {
              failure = new Error(`${target} ${query} ${workload}: request failed: ${error instanceof Error ? error.message : String(error)}`);
              return;
            }
            const ms = performance.now() - t;
            if (answer.text !== expected) {
              try {
                const data = dataOf(target, query, v, answer);
                if (data !== reference.get(`${query}/${v}`)) throw new Error(`${target} ${query} variant ${v}: wrong answer under load: ${data.slice(0, 800)}`);
              } catch (error) {
                failure = error as Error;
                return;
              }
            }
            requests++;
            if (record) latenciesMs.push(ms);
          }
        }),
      );
      const elapsed = (performance.now() - start) / 1000;
      const gatewayCpuUs = pid ? (await processCpuMicros(pid)) - gw0 : NaN;
      const servicesCpuUs = (await processCpuMicros(servicesPid)) - svc0;
      sampling = false;
      await sampler;
      if (failure) throw failure;
      const memory = target === 'direct' ? undefined : await gatewayMemory(gateways.get(target)!.child);
      return { ...cell, requests, seconds: elapsed, latenciesMs, gatewayCpuUs, servicesCpuUs, maxRssBytes, ...(memory ? { memory } : {}) };
    }

    const cellName = (c: Cell) => `${c.query} ${c.workload} ${c.target}`;
    log(`warming up (${opts.warmup} s per cell, ${cells.length} cells)...`);
    for (const cell of cells) if (opts.warmup > 0) await load(cell, opts.warmup, false);
    const rounds: Round[] = [];
    const groups = opts.queries.flatMap((query) => opts.workloads.map((workload) => ({ query, workload })));
    for (let r = 0; r < opts.rounds; r++) {
      for (const group of groups) {
        const mine = cells.filter((c) => c.query === group.query && c.workload === group.workload);
        // Rotating order, so that drift falls on every target alike.
        const order = mine.map((_, i) => mine[(i + r) % mine.length]!);
        for (const cell of order) {
          log(`round ${r + 1}/${opts.rounds}: ${cellName(cell)}, ${opts.duration} s...`);
          rounds.push(await load(cell, opts.duration, true));
        }
      }
    }
    const loadAtEnd = os.loadavg();

    const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? NaN;
    const summaryOf = (cell: Cell) => {
      const mine = rounds.filter((r) => r.target === cell.target && r.query === cell.query && r.workload === cell.workload);
      const latencies = mine.flatMap((r) => r.latenciesMs).sort((a, b) => a - b);
      const requests = mine.reduce((s, r) => s + r.requests, 0);
      const seconds = mine.reduce((s, r) => s + r.seconds, 0);
      return {
        ...cell,
        rps: requests / seconds,
        roundRps: mine.map((r) => r.requests / r.seconds),
        p50Ms: quantile(latencies, 0.5),
        p99Ms: quantile(latencies, 0.99),
        gatewayCpuMsPerRequest: mine.reduce((s, r) => s + r.gatewayCpuUs, 0) / 1000 / Math.max(1, requests),
        servicesCpuMsPerRequest: mine.reduce((s, r) => s + r.servicesCpuUs, 0) / 1000 / Math.max(1, requests),
        rssMb: Math.max(...mine.map((r) => r.maxRssBytes)) / 1024 / 1024,
        requests,
        // The memory after the round with the highest RSS.
        memory: mine.reduce<Round | undefined>((best, r) => (best === undefined || r.maxRssBytes > best.maxRssBytes ? r : best), undefined)?.memory,
      };
    };
    const summaries = cells.map(summaryOf);
    const find = (query: PeerQuery, workload: PeerWorkload, target: PeerTarget) => summaries.find((s) => s.query === query && s.workload === workload && s.target === target);

    const cores = os.cpus().length;
    console.log(`\nbench:gateway --peers — ${opts.concurrency} closed-loop clients, ${opts.rounds} round(s) × ${opts.duration} s per cell after ${opts.warmup} s warm-up, rounds rotating across targets`);
    console.log(`node ${process.version}, ${cores} cores shared by the clients, the gateways and the subgraphs; load average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at start, ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')} at end`);
    for (const q of opts.queries) console.log(`${q}: ${QUERIES[q]}`);
    console.log('identical: every client the same variables; distinct: client i variant i of 20 (Q1 first 11..30, Q2/Q3 after the i-th cursor)\n');
    const col = (s: string, n: number) => s.padStart(n);
    const num = (n: number, digits: number) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
    console.log(`${'query'.padEnd(6)}${'workload'.padEnd(11)}${'target'.padEnd(20)}${col('rps', 8)}${col('p50 ms', 9)}${col('p99 ms', 9)}${col('gw CPU ms/req', 15)}${col('svc CPU ms/req', 16)}${col('gw RSS MB', 11)}${col('requests', 10)}`);
    for (const s of summaries) {
      console.log(
        `${s.query.padEnd(6)}${s.workload.padEnd(11)}${s.target.padEnd(20)}${col(num(s.rps, 1), 8)}${col(num(s.p50Ms, 1), 9)}${col(num(s.p99Ms, 1), 9)}${col(num(s.gatewayCpuMsPerRequest, 2), 15)}${col(num(s.servicesCpuMsPerRequest, 2), 16)}${col(num(s.rssMb, 0), 11)}${col(String(s.requests), 10)}`,
      );
    }

    // Issue 13's targets, per query and workload.
    const verdicts: { query: PeerQuery; workload: PeerWorkload; vsStock?: number; vsHive?: number; rssVsStock?: number; pass: { vsStock?: boolean; vsHive?: boolean; rss?: boolean } }[] = [];
    console.log(`\nflowgraph vs peers (issue 13: rps ≥ ${PEER_GOALS.vsStock}× stock, rps ≥ Hive default, RSS ≤ stock):`);
    for (const { query, workload } of groups) {
      const fg = find(query, workload, 'flowgraph');
      if (!fg) continue;
      const stock = find(query, workload, 'stock');
      const hive = find(query, workload, 'hive');
      const v: (typeof verdicts)[number] = { query, workload, pass: {} };
      const parts: string[] = [];
      if (stock) {
        v.vsStock = fg.rps / stock.rps;
        v.rssVsStock = fg.rssMb / stock.rssMb;
        v.pass.vsStock = v.vsStock >= PEER_GOALS.vsStock;
        v.pass.rss = fg.rssMb <= stock.rssMb;
        parts.push(`${v.vsStock.toFixed(2)}× stock ${v.pass.vsStock ? 'PASS' : 'MISS'}`);
      }
      if (hive) {
        v.vsHive = fg.rps / hive.rps;
        v.pass.vsHive = v.vsHive >= PEER_GOALS.vsHive;
        parts.push(`${v.vsHive.toFixed(2)}× hive ${v.pass.vsHive ? 'PASS' : 'MISS'}`);
      }
      if (stock) parts.push(`RSS ${fg.rssMb.toFixed(0)} / ${stock.rssMb.toFixed(0)} MB ${v.pass.rss ? 'PASS' : 'MISS'}`);
      const cpu = stock ? `; CPU/req ${(fg.gatewayCpuMsPerRequest / stock.gatewayCpuMsPerRequest).toFixed(2)}× stock` : '';
      const cpuHive = hive ? `, ${(fg.gatewayCpuMsPerRequest / hive.gatewayCpuMsPerRequest).toFixed(2)}× hive` : '';
      console.log(`  ${query} ${workload.padEnd(10)} ${parts.join(', ')}${cpu}${cpuHive}`);
      verdicts.push(v);
    }
    console.log(`  (rps per round: ${summaries.map((s) => `${s.query}/${s.workload[0]}/${s.target} ${s.roundRps.map((x) => x.toFixed(0)).join(',')}`).join('; ')})`);
    if (Math.max(loadAtStart[0]!, loadAtEnd[0]!) > cores) console.log(`  warning: the load average exceeded the ${cores} cores: other work shared the machine, the figures are indicative`);
    // What the RSS is made of: the idle gateway after start, and after the round of its peak.
    const mb = (bytes: number) => (bytes / 1024 / 1024).toFixed(0);
    const composition = (m: GatewayMemory) => `RSS ${mb(m.rss)} = heap ${mb(m.heapTotal)} (used ${mb(m.heapUsed)}, young ${mb(m.newSpace)}) + external ${mb(m.external)} + rest ${mb(m.rss - m.heapTotal - m.external)}`;
    console.log('\nmemory, MB (heap = V8 heap reserved; rest = code, stacks, native allocations):');
    for (const [target, { idle }] of gateways) console.log(`  ${target.padEnd(20)} idle after start: ${composition(idle)}`);
    for (const s of summaries) if (s.memory) console.log(`  ${`${s.query} ${s.workload} ${s.target}`.padEnd(36)} after its peak round: ${composition(s.memory)}`);

    // --profile: flowgraph's gateway, then stock's for comparison, each under Q1 in the first
    // workload given, for --duration s under the inspector's CPU profiler.
    const profiles: { target: PeerTarget; workload: PeerWorkload; file: string; rps: number; totalMs: number; top: SelfTime[] }[] = [];
    if (opts.profile && opts.queries.includes('Q1')) {
      const workload = opts.workloads[0]!;
      for (const target of ['flowgraph', 'stock'] as const) {
        const entry = gateways.get(target);
        if (!entry) continue;
        const file = path.join(os.tmpdir(), `bench-gateway-${target}-q1-${workload}-${Date.now()}.cpuprofile`);
        log(`profiling ${target} under Q1 ${workload} for ${opts.duration} s...`);
        await entry.child.call('profileStart');
        const round = await load({ target, query: 'Q1', workload }, opts.duration, false);
        const result = await entry.child.call<{ totalMs: number; top: SelfTime[] }>('profileStop', { file });
        const rps = round.requests / round.seconds;
        console.log(`\nCPU profile of ${target}'s gateway under Q1 ${workload} (${round.requests} requests, ${rps.toFixed(0)} rps while profiled; ${file}), top self time:`);
        for (const e of result.top.slice(0, 25)) console.log(`  ${e.percent.toFixed(1).padStart(5)} %  ${e.selfMs.toFixed(0).padStart(6)} ms  ${e.functionName}  ${e.location}`);
        profiles.push({ target, workload, file, rps, ...result });
      }
    }

    console.log(
      JSON.stringify({
        bench: 'gateway-peers',
        concurrency: opts.concurrency,
        rounds: opts.rounds,
        durationS: opts.duration,
        warmupS: opts.warmup,
        cores,
        loadAverage: { start: loadAtStart, end: loadAtEnd },
        queries: Object.fromEntries(opts.queries.map((q) => [q, QUERIES[q]])),
        results: summaries,
        goals: PEER_GOALS,
        verdicts,
        ...(profiles.length > 0 ? { profiles } : {}),
      }),
    );
  } finally {
    await cleanUp();
  }
}
