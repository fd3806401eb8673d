/**
 * Headless Chromium for the browser tests (issue 8): Debian's `chromium` (`/usr/bin/chromium`,
 * installed by `.ci/run`; `FLOWGRAPH_CHROMIUM` overrides the path) driven by `playwright-core`,
 * with the flags this closed network needs (without the background-networking ones Chromium
 * stalls on refused connections to Google's hosts). Screenshots go to
 * `test-artifacts/screenshots/` (git-ignored; CI keeps the folder as the run's artifacts).
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ROOT } from './process.ts';

/** The Chromium binary: `FLOWGRAPH_CHROMIUM`, else Debian's. */
export const CHROMIUM_PATH = process.env.FLOWGRAPH_CHROMIUM || '/usr/bin/chromium';

/** Flags for headless Chromium on this machine (see the file comment). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Where {@link screenshot} writes. */
export const SCREENSHOT_DIR = path.join(ROOT, 'test-artifacts', 'screenshots');

/**
 * Launches headless Chromium. Throws, naming the path and how to install it, when the binary is
 * missing (a test never skips for that: CI installs it).
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (apt-get install chromium) or set FLOWGRAPH_CHROMIUM`);
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 60_000 });
}

/** Saves a full-page PNG of `page` as `test-artifacts/screenshots/<name>.png`; returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^a-zA-Z0-9._-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Collects what a page reports that a test should fail on: uncaught errors and requests to any
 * origin but `allowedOrigin` (nothing may come from a CDN). Read `problems` after the test's steps.
 */
export function watchPage(page: Page, allowedOrigin: string): { problems: string[] } {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('request', (request) => {
    const url = request.url();
    if (url.startsWith('data:') || url.startsWith('blob:')) return;
    const origin = new URL(url).origin;
    const wsOrigin = allowedOrigin.replace(/^http/, 'ws');
    if (origin !== allowedOrigin && origin !== wsOrigin) problems.push(`request outside ${allowedOrigin}: ${url}`);
  });
  return { problems };
}
