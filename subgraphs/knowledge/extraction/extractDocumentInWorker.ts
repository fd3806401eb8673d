/**
 * `extractDocument` on a worker thread: the NLP of a book takes seconds of CPU (≈ 40 ms per
 * 2000-character chunk) that would otherwise stall everything else sharing the event loop —
 * in `npm start`, the gateway and the other three services.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../../eventstore/index.ts';
import { extractDocument, type DocumentExtraction } from './extractDocument.ts';

const WORKER_URL = new URL('./extractWorker.mjs', import.meta.url);

/**
 * Runs the extraction of `chunks` on a fresh worker thread and resolves with its result. When
 * the worker cannot start (no tsx loader, resource limits), logs a warning and extracts on the
 * main thread instead (still correct, only less responsive).
 * @throws whatever the extraction itself throws
 */
export async function extractDocumentInWorker(chunks: readonly { chunkIndex: number; text: string }[], logger: Logger): Promise<DocumentExtraction> {
  let started = false;
  try {
    return await new Promise<DocumentExtraction>((resolve, reject) => {
      const worker = new Worker(WORKER_URL, { workerData: { chunks } });
      worker.once('online', () => (started = true));
      worker.once('message', (result: DocumentExtraction) => {
        resolve(result);
        void worker.terminate();
      });
      worker.once('error', reject);
      worker.once('exit', (code) => {
        if (code !== 0) reject(new Error(`extraction worker exited with code ${code}`));
      });
    });
  } catch (error) {
    if (started) throw error;
    logger.warn({ err: error }, 'knowledge: extraction worker did not start; extracting on the main thread');
    return extractDocument(chunks);
  }
}
