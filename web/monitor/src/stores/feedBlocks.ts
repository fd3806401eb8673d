/**
 * The event feed's list, kept as blocks of consecutive events: what the feed view renders and
 * what the browser skips when off screen (`content-visibility: auto` on each block).
 *
 * Why blocks: the feed view showed 500 rows each with `content-visibility: auto`, and at 50
 * events/s Chromium spent most of the page's main thread on the list (on this 2-core machine,
 * 623 ms of tasks a second, of which the intersection checks of 500 observed rows, pre-paint
 * and layout were the largest, traced in `test/monitor.e2e.spec.ts`). Events are appended to
 * the newest block only, so every other block keeps its identity (a memoised block is not
 * rendered again) and the browser observes a handful of blocks, not every row.
 *
 * Pure functions, no DOM: unit-tested in Node.
 */

/** A block: up to `blockSize` consecutive items, newest first. */
export interface Block<T> {
  /** Increasing: the block of the `n`-th item received is `floor(n / blockSize)`. */
  readonly id: number;
  readonly items: readonly T[];
}

/** The list: its blocks, newest first, and how many items it has received in all. */
export interface BlockList<T> {
  readonly blocks: readonly Block<T>[];
  readonly received: number;
}

/** An empty list. */
export function emptyBlocks<T>(): BlockList<T> {
  return { blocks: [], received: 0 };
}

/**
 * The list with `fresh` (oldest first) added, keeping the newest `max` items.
 *
 * Blocks other than the newest (and the oldest, when items fall off the end) are the same
 * objects as in `list`. Items fall off one by one, so the list holds exactly
 * `min(max, received)` items.
 *
 * @param blockSize items per block (a positive integer)
 * @param max items kept (a positive integer)
 * @throws RangeError when `blockSize` or `max` is not a positive integer
 */
export function addToBlocks<T>(list: BlockList<T>, fresh: readonly T[], blockSize: number, max: number): BlockList<T> {
  if (!Number.isInteger(blockSize) || blockSize < 1) throw new RangeError(`addToBlocks: blockSize must be a positive integer, got ${blockSize}`);
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`addToBlocks: max must be a positive integer, got ${max}`);
  if (fresh.length === 0) return list;
  const blocks = [...list.blocks];
  let received = list.received;
  // Only the newest `max` of `fresh` can stay.
  const start = Math.max(0, fresh.length - max);
  received += start;
  for (let i = start; i < fresh.length; ) {
    const id = Math.floor(received / blockSize);
    // The items of `fresh` that go to block `id`, newest first.
    const room = (id + 1) * blockSize - received;
    const chunk = fresh.slice(i, i + room).reverse();
    if (blocks[0]?.id === id) blocks[0] = { id, items: [...chunk, ...blocks[0].items] };
    else blocks.unshift({ id, items: chunk });
    i += chunk.length;
    received += chunk.length;
  }
  let total = 0;
  for (let b = 0; b < blocks.length; b++) {
    const block = blocks[b]!;
    if (total + block.items.length <= max) {
      total += block.items.length;
      continue;
    }
    const keep = max - total;
    if (keep > 0) blocks[b] = { id: block.id, items: block.items.slice(0, keep) };
    blocks.length = keep > 0 ? b + 1 : b;
    break;
  }
  return { blocks, received };
}
