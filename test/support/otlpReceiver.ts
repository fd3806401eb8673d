/**
 * A real OTLP/HTTP trace receiver for tests (opentelemetry-proto's OTLP/HTTP, JSON encoding, as
 * `@opentelemetry/exporter-trace-otlp-http` 0.223 sends it: `POST /v1/traces`,
 * `Content-Type: application/json`, ids as hex strings).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One OTLP/JSON attribute (`KeyValue`). */
export interface KeyValue {
  key: string;
  value: { stringValue?: string; intValue?: number | string; boolValue?: boolean };
}
/** The parts of an OTLP/JSON span the test reads. */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes: KeyValue[];
}
export interface ExportRequest {
  resourceSpans: Array<{ resource: { attributes: KeyValue[] }; scopeSpans: Array<{ scope: { name: string }; spans: OtlpSpan[] }> }>;
}

/** OTLP's SpanKind enum (opentelemetry-proto trace.proto). */
export const SPAN_KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

export const attribute = (attributes: KeyValue[], key: string) => {
  const value = attributes.find((a) => a.key === key)?.value;
  return value?.stringValue ?? value?.intValue ?? value?.boolValue;
};

/** A running receiver. */
export interface OtlpReceiver {
  /** Base URL, for `OTEL_EXPORTER_OTLP_ENDPOINT`. */
  url: string;
  /** Every export request received: its content type and decoded JSON body. */
  received: Array<{ contentType: string | undefined; body: ExportRequest }>;
  /** Every span received, across requests and resources, with its resource's attributes. */
  spans(): Array<OtlpSpan & { resource: KeyValue[] }>;
  close(): Promise<void>;
}

/** A minimal OTLP/HTTP receiver on a free loopback port: records every `POST /v1/traces` (JSON, gzip or not), answers 200 `{}`. */
export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const received: Array<{ contentType: string | undefined; body: ExportRequest }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      let raw = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') raw = gunzipSync(raw);
      received.push({ contentType: req.headers['content-type'], body: JSON.parse(raw.toString('utf8')) as ExportRequest });
      // OTLP/HTTP: a full success is 200 with an ExportTraceServiceResponse, here empty.
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    spans: () =>
      received.flatMap((r) => r.body.resourceSpans.flatMap((rs) => rs.scopeSpans.flatMap((scope) => scope.spans.map((span) => ({ ...span, resource: rs.resource.attributes }))))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
