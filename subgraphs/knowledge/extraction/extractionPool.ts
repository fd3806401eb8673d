/**
 * A warm pool of extraction worker threads (issue 13, "The document pipeline"): `extractDocument`
 * of a book is seconds of CPU (≈ 40 ms per 2000-character chunk with compromise), so it runs off
 * the main thread; a fresh worker per document paid the thread's start-up (its own module graph:
 * tsx, compromise, ≈ 0.3–1 s) every time and ran one document at a time. The pool keeps up to
 * `size` workers alive between documents and runs up to `size` extractions at once; more wait in
 * FIFO order.
 *
 * - Workers start on first use and stay; idle ones are `unref()`ed, so they never keep a process
 *   alive on their own.
 * - A worker that dies (crash, `process.exit` in the NLP, resource limits) fails the extraction it
 *   was running with that error and is replaced for the next one.
 * - A worker that cannot start at all (no tsx loader, resource limits) makes that extraction run
 *   on the main thread instead, with a warning (still correct, only less responsive: the
 *   behaviour of the former fresh-worker path).
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../../eventstore/index.ts';
import { extractDocument, type DocumentExtraction } from './extractDocument.ts';

const WORKER_URL = new URL('./extractWorker.mjs', import.meta.url);

/** Most workers a pool may have. */
export const MAX_EXTRACTION_WORKERS = 64;

/** The default pool size: the cores this process may use (`os.availableParallelism()`), at most {@link MAX_EXTRACTION_WORKERS}. */
export function defaultExtractionWorkers(): number {
  return Math.max(1, Math.min(MAX_EXTRACTION_WORKERS, availableParallelism()));
}

/** One chunk of a document, as the extraction reads it. */
export interface ExtractionChunk {
  chunkIndex: number;
  text: string;
}

/** A pool of extraction workers. */
export interface ExtractionPool {
  /** Most extractions run at once (the number of workers). */
  readonly size: number;
  /**
   * Extracts a document's entities and relations on a pool worker (queued while all are busy).
   * @throws whatever the extraction throws; Error `extraction worker exited with code N` when its worker died; Error `extraction pool is closed` after `close()`
   */
  extract(chunks: readonly ExtractionChunk[]): Promise<DocumentExtraction>;
  /** Terminates the workers; queued and running extractions reject. Idempotent. */
  close(): Promise<void>;
}

/** Options of {@link createExtractionPool}. */
export interface ExtractionPoolOptions {
  /** Workers (and extractions at once), 1..{@link MAX_EXTRACTION_WORKERS}. @default defaultExtractionWorkers() */
  size?: number;
  logger: Logger;
}

interface Task {
  chunks: readonly ExtractionChunk[];
  resolve(result: DocumentExtraction): void;
  reject(error: unknown): void;
}

interface PoolWorker {
  worker: Worker;
  online: boolean;
  task: (Task & { id: number }) | null;
}

type WorkerReply = { id: number; result: DocumentExtraction } | { id: number; error: { message: string; name?: string; stack?: string } };

/**
 * Creates a pool (no thread starts before the first extraction).
 * @throws RangeError when `size` is not an integer from 1 to {@link MAX_EXTRACTION_WORKERS}
 */
export function createExtractionPool(options: ExtractionPoolOptions): ExtractionPool {
  const size = options.size ?? defaultExtractionWorkers();
  if (!Number.isInteger(size) || size < 1 || size > MAX_EXTRACTION_WORKERS) {
    throw new RangeError(`createExtractionPool: size must be an integer from 1 to ${MAX_EXTRACTION_WORKERS}, got ${size}`);
  }
  const { logger } = options;
  const idle: PoolWorker[] = [];
  const all = new Set<PoolWorker>();
  const queue: Task[] = [];
  let nextId = 1;
  let closed = false;

  function spawn(): PoolWorker {
    const entry: PoolWorker = { worker: new Worker(WORKER_URL), online: false, task: null };
    all.add(entry);
    entry.worker.once('online', () => (entry.online = true));
    entry.worker.on('message', (reply: WorkerReply) => {
      const task = entry.task;
      if (!task || task.id !== reply.id) return;
      entry.task = null;
      if ('result' in reply) task.resolve(reply.result);
      else task.reject(Object.assign(new Error(reply.error.message), { name: reply.error.name ?? 'Error', stack: reply.error.stack }));
      release(entry);
    });
    const died = (error: unknown) => {
      if (!all.delete(entry)) return;
      const at = idle.indexOf(entry);
      if (at >= 0) idle.splice(at, 1);
      const task = entry.task;
      entry.task = null;
      if (task && !closed) {
        if (!entry.online) {
          // The thread never started: this extraction runs here instead (and so does the next one's try).
          logger.warn({ err: error }, 'knowledge: extraction worker did not start; extracting on the main thread');
          extractDocument(task.chunks).then(task.resolve, task.reject);
        } else task.reject(error);
      }
      pump();
    };
    entry.worker.once('error', died);
    entry.worker.once('exit', (code) => died(new Error(`extraction worker exited with code ${code}`)));
    return entry;
  }

  function release(entry: PoolWorker): void {
    if (closed || !all.has(entry)) return;
    entry.worker.unref();
    idle.push(entry);
    pump();
  }

  function pump(): void {
    while (!closed && queue.length > 0) {
      let entry = idle.pop();
      if (!entry) {
        if (all.size >= size) return;
        try {
          entry = spawn();
        } catch (error) {
          const task = queue.shift()!;
          logger.warn({ err: error }, 'knowledge: extraction worker did not start; extracting on the main thread');
          extractDocument(task.chunks).then(task.resolve, task.reject);
          continue;
        }
      }
      const task = queue.shift()!;
      const id = nextId++;
      entry.task = { ...task, id };
      entry.worker.ref();
      entry.worker.postMessage({ id, chunks: task.chunks });
    }
  }

  return {
    size,
    extract(chunks) {
      if (closed) return Promise.reject(new Error('extraction pool is closed'));
      return new Promise<DocumentExtraction>((resolve, reject) => {
        queue.push({ chunks, resolve, reject });
        pump();
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      const error = new Error('extraction pool is closed');
      for (const task of queue.splice(0)) task.reject(error);
      const workers = [...all];
      all.clear();
      idle.length = 0;
      for (const entry of workers) entry.task?.reject(error);
      await Promise.all(workers.map((entry) => entry.worker.terminate().catch(() => {})));
    },
  };
}
