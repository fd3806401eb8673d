/**
 * Worker-thread entry of `extractDocumentInWorker`: runs `extractDocument` on the chunks it is
 * given (`workerData.chunks`) and posts the result back. compromise is CPU-bound; off the main
 * thread it no longer delays the process's other services, relays and consumers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { extractDocument } from './extractDocument.ts';

const { chunks } = workerData as { chunks: { chunkIndex: number; text: string }[] };
parentPort!.postMessage(await extractDocument(chunks, { yieldBetweenChunks: false }));
