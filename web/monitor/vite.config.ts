/**
 * Vite build of the gateway's `/monitor/` page (`npm run build:web`, bin/build-web.mjs): assets
 * with content hashes under `web/dist/monitor/assets/`, served by the gateway (gateway/webAssets.ts).
 * Nothing is loaded from a CDN: every script, style, font and worker is bundled.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import preact from '@preact/preset-vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/monitor/',
  plugins: [preact()],
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/monitor', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
  },
});
