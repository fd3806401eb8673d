/**
 * Vite build of the gateway's `/graphiql/` page (`npm run build:web`, bin/build-web.mjs): assets
 * with content hashes under `web/dist/graphiql/assets/`, served by the gateway (gateway/webAssets.ts).
 * Nothing is loaded from a CDN: every script, style, font and worker is bundled.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';


export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/graphiql/',
  
  logLevel: 'warn',
  build: {
    outDir: fileURLToPath(new URL('../dist/graphiql', import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 4096,
  },
});
