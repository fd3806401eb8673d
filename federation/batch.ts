/**
 * Per-request batching of the loads a subgraph's resolvers make per entity (DataLoader-style):
 * an `_entities` call resolves every representation in one synchronous pass, and graphql-js then
 * resolves a field of every entity of the list in one pass too, so the loads those resolvers ask
 * for in one tick are gathered and answered by one call of the batch function (one SQL query)
 * instead of one each.
 *
 * ```ts
 * const runs = perRequest(ctx, 'runs', () => createBatcher({ load: (ids: readonly string[]) => readModel.runsById(ids) }));
 * const run = await runs.load(id);
 * ```
 *
 * A batch runs once every load of the current tick is queued: after the promise jobs queued with
 * it (graphql-js completes list items in promise jobs) — the moment DataLoader picks, a
 * `process.nextTick` queued from a promise job. Equal keys (by `keyOf`) of one batch are loaded
 * once. Nothing is cached past a batch: a later load (e.g. after a mutation of the same
 * operation) reads the current state, as it did before batching.
 */

/** Options of {@link createBatcher}. */
export interface BatcherOptions<K, V> {
  /**
   * Loads distinct keys (by `keyOf`), at most `maxBatchSize` of them; answers one value or Error
   * per key, in the same order. A thrown error (or rejection) fails every load of the batch.
   */
  load(keys: readonly K[]): Promise<readonly (V | Error)[]>;
  /** Identity of a key (equal strings are loaded once per batch). @default String(key) */
  keyOf?: (key: K) => string;
  /** Most keys per call of `load` (larger batches are split). @default 1000 */
  maxBatchSize?: number;
}

/** Loads one key through the current batch. */
export interface Batcher<K, V> {
  /** Queues `key` in the current batch; resolves with its value, rejects with its Error or the batch's. */
  load(key: K): Promise<V>;
}

/** Default `maxBatchSize`: a batch stays one bounded statement (e.g. 10,000 representations are 10 queries). */
export const DEFAULT_MAX_BATCH_SIZE = 1000;

interface Pending<K, V> {
  key: K;
  waiters: { resolve: (value: V) => void; reject: (error: unknown) => void }[];
}

const resolved = Promise.resolve();

/** Creates a batcher (one per request: see {@link perRequest}). */
export function createBatcher<K, V>(options: BatcherOptions<K, V>): Batcher<K, V> {
  const keyOf = options.keyOf ?? ((key: K) => String(key));
  const maxBatchSize = options.maxBatchSize ?? DEFAULT_MAX_BATCH_SIZE;
  if (!Number.isInteger(maxBatchSize) || maxBatchSize < 1) throw new Error(`maxBatchSize must be an integer ≥ 1, got ${maxBatchSize}`);
  let queue: Map<string, Pending<K, V>> | undefined;

  async function dispatch(batch: Pending<K, V>[]): Promise<void> {
    let values: readonly (V | Error)[];
    try {
      values = await options.load(batch.map((p) => p.key));
      if (values.length !== batch.length) throw new Error(`batch load answered ${values.length} values for ${batch.length} keys`);
    } catch (error) {
      for (const p of batch) for (const w of p.waiters) w.reject(error);
      return;
    }
    batch.forEach((p, i) => {
      const value = values[i]!;
      for (const w of p.waiters) {
        if (value instanceof Error) w.reject(value);
        else w.resolve(value as V);
      }
    });
  }

  function flush(): void {
    const pending = [...(queue?.values() ?? [])];
    queue = undefined;
    for (let i = 0; i < pending.length; i += maxBatchSize) void dispatch(pending.slice(i, i + maxBatchSize));
  }

  return {
    load(key) {
      return new Promise<V>((resolve, reject) => {
        if (!queue) {
          queue = new Map();
          void resolved.then(() => process.nextTick(flush));
        }
        const id = keyOf(key);
        const pending = queue.get(id);
        if (pending) pending.waiters.push({ resolve, reject });
        else queue.set(id, { key, waiters: [{ resolve, reject }] });
      });
    },
  };
}

const byRequest = new WeakMap<object, Map<string, Batcher<any, any>>>();

/**
 * The batcher named `name` of the request whose context is `context` (created by `create` on
 * first use, dropped with the context). A context that is not an object (none given) gets a new
 * batcher each call: no batching, but no sharing across requests either.
 */
export function perRequest<K, V>(context: unknown, name: string, create: () => Batcher<K, V>): Batcher<K, V> {
  if (typeof context !== 'object' || context === null) return create();
  let batchers = byRequest.get(context);
  if (!batchers) byRequest.set(context, (batchers = new Map()));
  let batcher = batchers.get(name) as Batcher<K, V> | undefined;
  if (!batcher) batchers.set(name, (batcher = create()));
  return batcher;
}

/** Longest id a representation may carry (every stream id, hence every id, is at most 500 characters). */
export const MAX_REPRESENTATION_ID_LENGTH = 500;

/**
 * The `id` key of an entity representation (`{ __typename, id }`), checked before it reaches a
 * query (one bad key must not fail the batch's statement for the others): a string of
 * 1..MAX_REPRESENTATION_ID_LENGTH characters without U+0000.
 * @param invalid makes the subgraph's own BAD_USER_INPUT error from a message
 * @throws what `invalid` makes, for any other key
 */
export function representationId(ref: unknown, typename: string, invalid: (message: string) => Error): string {
  const id = (ref as { id?: unknown } | null)?.id;
  if (typeof id !== 'string' || id.length === 0 || id.length > MAX_REPRESENTATION_ID_LENGTH || id.includes('\u0000')) {
    throw invalid(`A ${typename} representation needs an id key: a string of 1..${MAX_REPRESENTATION_ID_LENGTH} characters without U+0000`);
  }
  return id;
}
