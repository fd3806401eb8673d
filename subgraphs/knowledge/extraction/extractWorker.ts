/**
 * Worker-thread entry of the extraction pool (`extractionPool.ts`): for each message
 * `{ id, chunks }` runs `extractDocument` and posts `{ id, result }` or `{ id, error }` back; the
 * thread stays for the next document. compromise is CPU-bound; off the main thread it no longer
 * delays the process's other services, relays and consumers.
 */
import { parentPort } from 'node:worker_threads';
import { extractDocument } from './extractDocument.ts';

parentPort!.on('message', async ({ id, chunks }: { id: number; chunks: { chunkIndex: number; text: string }[] }) => {
  try {
    parentPort!.postMessage({ id, result: await extractDocument(chunks, { yieldBetweenChunks: false }) });
  } catch (error) {
    const e = error instanceof Error ? error : new Error(String(error));
    parentPort!.postMessage({ id, error: { message: e.message, name: e.name, stack: e.stack } });
  }
});
