/**
 * A stand-in for an OpenTelemetry Collector, run as a child process of the benchmarks
 * (`spawnBenchChild('otlp-sink', 'otlpSink.ts')`): it accepts OTLP/HTTP trace exports
 * (`POST /v1/traces`, JSON or protobuf), answers 200 `{}` like a collector, counts requests,
 * bytes and (for JSON bodies) spans, and keeps nothing. Being another process, its parsing does
 * not count in the measured process's CPU, as a real collector's would not.
 *
 * Commands: `start` → `{ url }` (the endpoint base, e.g. `http://127.0.0.1:39145`: set it as
 * `OTEL_EXPORTER_OTLP_ENDPOINT`); `stats` → `{ requests, bytes, spans }`.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveBenchCommands } from './childProcess.ts';

let requests = 0;
let bytes = 0;
let spans = 0;
const server = http.createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    requests++;
    bytes += body.length;
    if (String(req.headers['content-type']).startsWith('application/json')) {
      try {
        const parsed = JSON.parse(body.toString('utf8')) as { resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }> };
        for (const r of parsed.resourceSpans ?? []) for (const s of r.scopeSpans ?? []) spans += s.spans?.length ?? 0;
      } catch {
        // counted as bytes only
      }
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{}');
  });
});

serveBenchCommands(
  {
    async start() {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
    },
    stats: () => ({ requests, bytes, spans }),
  },
  async () => {
    server.close();
  },
);
