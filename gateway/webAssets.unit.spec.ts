/**
 * gateway/webAssets.ts over a real HTTP server on a temporary page tree: redirects, content
 * types, cache headers, ETag revalidation, gzip, the page's own routes, hostile paths, methods,
 * an unbuilt page and a rebuild picked up without a restart.
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebAssets } from './webAssets.ts';

let root: string;
let server: http.Server;
let base: string;
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(4000))});\n`;

beforeAll(async () => {
  root = await mkdtemp(path.join(os.tmpdir(), 'web-assets-'));
  await mkdir(path.join(root, 'monitor', 'assets'), { recursive: true });
  await writeFile(path.join(root, 'monitor', 'index.html'), '<!doctype html><title>monitor</title>');
  await writeFile(path.join(root, 'monitor', 'assets', 'index-abc123.js'), SCRIPT);
  await writeFile(path.join(root, 'monitor', 'assets', 'font-1.woff2'), Buffer.from([0x77, 0x4f, 0x46, 0x32]));
  await writeFile(path.join(root, 'monitor', 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
  await writeFile(path.join(root, 'secret.txt'), 'outside the page');
  const assets = createWebAssets({ root });
  server = http.createServer((req, res) => {
    const { pathname, search } = new URL(req.url ?? '/', 'http://x.invalid');
    const page = assets.pageOf(pathname);
    if (!page) {
      res.writeHead(404).end();
      return;
    }
    void assets.handle(req, res, page, pathname, search);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await rm(root, { recursive: true, force: true });
});

/** A raw GET (no automatic decompression, the path sent exactly as given). */
function get(pathname: string, headers: http.OutgoingHttpHeaders = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${pathname}`, { method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('web assets', () => {
  it('redirects /monitor to /monitor/, keeping the query', async () => {
    const res = await get('/monitor?x=1');
    expect(res.status).toBe(308);
    expect(res.headers.location).toBe('/monitor/?x=1');
  });

  it('serves index.html revalidated on every load, with the page CSP and nosniff', async () => {
    const res = await get('/monitor/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['content-security-policy']).toContain(`ws://127.0.0.1:${new URL(base).port}`);
    expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
    expect(res.body.toString()).toContain('<title>monitor</title>');
  });

  it("answers the page's own routes (no extension) with index.html", async () => {
    const res = await get('/monitor/runs/abc');
    expect(res.status).toBe(200);
    expect(res.body.toString()).toContain('<title>monitor</title>');
  });

  it('serves hashed assets as immutable with their content type, gzip when accepted', async () => {
    const plain = await get('/monitor/assets/index-abc123.js');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.toString()).toBe(SCRIPT);
    const zipped = await get('/monitor/assets/index-abc123.js', { 'accept-encoding': 'gzip, br' });
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.headers.vary).toBe('accept-encoding');
    expect(Number(zipped.headers['content-length'])).toBeLessThan(SCRIPT.length / 10);
    expect(gunzipSync(zipped.body).toString()).toBe(SCRIPT);
    const font = await get('/monitor/assets/font-1.woff2', { 'accept-encoding': 'gzip' });
    expect(font.headers['content-type']).toBe('font/woff2');
    expect(font.headers['content-encoding']).toBeUndefined();
    const svg = await get('/monitor/favicon.svg');
    expect(svg.headers['content-type']).toBe('image/svg+xml');
    expect(svg.headers['cache-control']).toBe('no-cache');
  });

  it('answers 304 to a matching If-None-Match, and HEAD without a body', async () => {
    const first = await get('/monitor/assets/index-abc123.js');
    const etag = first.headers.etag!;
    expect(etag).toMatch(/^"[\w-]+"$/);
    const again = await get('/monitor/assets/index-abc123.js', { 'if-none-match': `"other", W/${etag}` });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const head = await get('/monitor/assets/index-abc123.js', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(Number(head.headers['content-length'])).toBe(SCRIPT.length);
    expect(head.body.length).toBe(0);
  });

  it('refuses other methods with 405 and Allow', async () => {
    const res = await get('/monitor/', {}, 'POST');
    expect(res.status).toBe(405);
    expect(res.headers.allow).toBe('GET, HEAD');
  });

  it.each([
    ['/monitor/%2e%2e/secret.txt'],
    ['/monitor/assets/..%2F..%2Fsecret.txt'],
    ['/monitor/..%5csecret.txt'],
    ['/monitor/a%00.js'],
    ['/monitor/%E0%A4%A'],
    // WHATWG URL parsing already resolves an encoded `..` segment: that path leaves /monitor/ (404 here).
  ])('refuses the hostile path %s (400, or 404 once the URL parser resolved it out of the page) and never reads outside the page', async (hostile) => {
    const res = await get(hostile);
    expect([400, 404]).toContain(res.status);
    if (!hostile.includes('%2e%2e/')) expect(res.status).toBe(400);
    expect(res.body.toString()).not.toContain('outside the page');
  });

  it('answers 404 for a missing file and 503 naming the build for an unbuilt page', async () => {
    const missing = await get('/monitor/assets/nope-1.js');
    expect(missing.status).toBe(404);
    const unbuilt = await get('/graphiql/');
    expect(unbuilt.status).toBe(503);
    expect(unbuilt.body.toString()).toContain('npm run build:web');
  });

  it('serves a rebuilt file without a restart', async () => {
    const file = path.join(root, 'monitor', 'index.html');
    await writeFile(file, '<!doctype html><title>rebuilt page</title>');
    const res = await get('/monitor/');
    expect(res.body.toString()).toContain('rebuilt page');
  });
});
