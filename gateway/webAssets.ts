/**
 * The gateway's browser pages (issue 8): the live monitoring page at `/monitor/` and the offline
 * explorer (GraphiQL) at `/graphiql/`, served from what `npm run build:web` (bin/build-web.mjs)
 * wrote to `web/dist/<page>/`. Static files only: the pages talk to the gateway's own `/graphql`
 * over graphql-ws, with the token the operator signs in with; nothing is fetched from a CDN.
 *
 * HTTP behaviour, per page:
 * - `GET|HEAD /<page>` → `308` to `/<page>/` (query kept), so the page's relative URLs resolve.
 * - `GET|HEAD /<page>/` and any path without a file extension → the page's `index.html`
 *   (`cache-control: no-cache`: revalidated on every load, so a rebuild is seen at once).
 * - `GET|HEAD /<page>/assets/<file>` (Vite's content-hashed output) → `cache-control: public,
 *   max-age=31536000, immutable`; other files `no-cache`. Every answer has `content-type` from
 *   the extension ({@link CONTENT_TYPES}; unknown ones `application/octet-stream`), `etag`
 *   (size and mtime; `If-None-Match` → `304`), `x-content-type-options: nosniff`,
 *   `referrer-policy: no-referrer` and the page's `content-security-policy` ({@link pageCsp}).
 * - Compressible files (scripts, styles, HTML, SVG, JSON, fonts but woff2) are sent gzip-encoded
 *   when the request accepts it (`vary: accept-encoding`); each file is compressed once and kept
 *   in memory (the two pages' assets are ~8 MiB, ~2 MiB gzipped).
 * - A missing file → `404`; a path that escapes the page's folder (`..`, encoded or not), holds
 *   a NUL or a backslash, or is not valid percent-encoding → `400`; another method → `405` with
 *   `allow: GET, HEAD`; the page not built → `503` naming `npm run build:web`.
 *
 * No token is needed for these files (they are the same for everyone and hold no data): every
 * query the page makes is authenticated like any other request.
 */
import { createHash } from 'node:crypto';
import { stat, readFile } from 'node:fs/promises';
import type http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';

const gzip = promisify(gzipCallback);

/** The pages the gateway serves, by URL prefix: `/monitor` and `/graphiql`. */
export const WEB_PAGES = ['monitor', 'graphiql'] as const;
/** One of {@link WEB_PAGES}. */
export type WebPage = (typeof WEB_PAGES)[number];

/** Where `npm run build:web` writes (`web/dist`, beside this folder in the source tree and in `npm run build`'s tree). */
export const DEFAULT_WEB_ROOT = fileURLToPath(new URL('../web/dist', import.meta.url));

/** Content types by file extension (lower case, with the dot). */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.webp': 'image/webp',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.ttf': 'font/ttf',
  '.wasm': 'application/wasm',
  '.txt': 'text/plain; charset=utf-8',
};

const COMPRESSIBLE = new Set(['.html', '.js', '.mjs', '.css', '.json', '.map', '.svg', '.ttf', '.txt', '.ico', '.wasm']);
const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * The Content-Security-Policy of a page: scripts, styles, fonts, images and workers from the
 * gateway's own origin only (styles also inline: Preact's `style` props and Monaco set them;
 * images and fonts also `data:`, workers also `blob:`, as Monaco creates them), connections to
 * the origin and its websocket (`ws:`/`wss:` of `host`), never framed (`frame-ancestors 'none'`).
 * @param host the request's `Host` header (the websocket origin), or undefined
 */
export function pageCsp(host: string | undefined): string {
  const sockets = host && /^[\w.:[\]-]+$/.test(host) ? ` ws://${host} wss://${host}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    `connect-src 'self'${sockets}`,
    "worker-src 'self' blob:",
    "frame-ancestors 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "object-src 'none'",
  ].join('; ');
}

/** Options of {@link createWebAssets}. */
export interface WebAssetsOptions {
  /** Folder holding `<page>/index.html` for each page. @default {@link DEFAULT_WEB_ROOT} */
  root?: string;
}

/** The handler of {@link createWebAssets}. */
export interface WebAssets {
  /** The page a request path belongs to (`/monitor`, `/monitor/...`), or undefined. */
  pageOf(pathname: string): WebPage | undefined;
  /** Answers a request whose path {@link WebAssets.pageOf} matched. Never throws for a bad path (answers 400/404). */
  handle(req: http.IncomingMessage, res: http.ServerResponse, page: WebPage, pathname: string, search: string): Promise<void>;
}

interface CachedFile {
  /** mtime and size the entry was read at. */
  key: string;
  body: Buffer;
  gzipped?: Buffer;
  etag: string;
}

/**
 * The pages' static-file handler (see the file comment for the HTTP behaviour). Files are read
 * on request (a rebuild is picked up without a restart); their contents and gzip encodings are
 * cached by path, mtime and size.
 */
export function createWebAssets(options: WebAssetsOptions = {}): WebAssets {
  const root = path.resolve(options.root ?? DEFAULT_WEB_ROOT);
  const cache = new Map<string, CachedFile>();

  const read = async (file: string): Promise<CachedFile | undefined> => {
    let info;
    try {
      info = await stat(file);
    } catch {
      return undefined;
    }
    if (!info.isFile()) return undefined;
    const key = `${info.mtimeMs}:${info.size}`;
    const cached = cache.get(file);
    if (cached?.key === key) return cached;
    const body = await readFile(file);
    const entry: CachedFile = { key, body, etag: `"${createHash('sha1').update(body).digest('base64url').slice(0, 27)}"` };
    cache.set(file, entry);
    return entry;
  };

  return {
    pageOf(pathname) {
      for (const page of WEB_PAGES) if (pathname === `/${page}` || pathname.startsWith(`/${page}/`)) return page;
      return undefined;
    },
    async handle(req, res, page, pathname, search) {
      req.resume();
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' });
        res.end(`Method ${req.method} not allowed on /${page}/: use GET\n`);
        return;
      }
      if (pathname === `/${page}`) {
        res.writeHead(308, { location: `/${page}/${search}` });
        res.end();
        return;
      }
      const pageRoot = path.join(root, page);
      let relative: string;
      try {
        relative = decodeURIComponent(pathname.slice(page.length + 2));
      } catch {
        return plain(res, 400, 'Bad percent-encoding in the path\n');
      }
      const segments = relative.split('/');
      if (relative.includes('\0') || relative.includes('\\') || segments.some((s) => s === '..' || s === '.')) {
        return plain(res, 400, 'Bad path\n');
      }
      let file = path.join(pageRoot, ...segments.filter((s) => s !== ''));
      if (file !== pageRoot && !file.startsWith(pageRoot + path.sep)) return plain(res, 400, 'Bad path\n');
      const index = path.join(pageRoot, 'index.html');
      // The page's own routes (no extension) and its root get index.html.
      if (relative === '' || relative.endsWith('/') || path.extname(file) === '') file = index;
      const entry = await read(file);
      if (!entry) {
        if (file === index || !(await read(index))) {
          return plain(res, 503, `The /${page}/ page is not built: run \`npm run build:web\` (npm start builds it when missing)\n`);
        }
        return plain(res, 404, `No file /${page}/${relative}\n`);
      }
      const ext = path.extname(file).toLowerCase();
      const headers: http.OutgoingHttpHeaders = {
        'content-type': CONTENT_TYPES[ext] ?? 'application/octet-stream',
        'cache-control': relative.startsWith('assets/') ? IMMUTABLE : 'no-cache',
        etag: entry.etag,
        'x-content-type-options': 'nosniff',
        'referrer-policy': 'no-referrer',
        'content-security-policy': pageCsp(req.headers.host),
      };
      const compressible = COMPRESSIBLE.has(ext) && entry.body.length > 1024;
      if (compressible) headers.vary = 'accept-encoding';
      if (ifNoneMatch(req.headers['if-none-match'], entry.etag)) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      let body = entry.body;
      if (compressible && /\bgzip\b/i.test(String(req.headers['accept-encoding'] ?? ''))) {
        entry.gzipped ??= await gzip(entry.body, { level: 6 });
        body = entry.gzipped;
        headers['content-encoding'] = 'gzip';
      }
      headers['content-length'] = body.length;
      res.writeHead(200, headers);
      res.end(req.method === 'HEAD' ? undefined : body);
    },
  };
}

function plain(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff' });
  res.end(text);
}

/** Whether an `If-None-Match` header names `etag` (or is `*`), weak or strong (RFC 9110 §13.1.2). */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === etag || t === `W/${etag}`;
  });
}
