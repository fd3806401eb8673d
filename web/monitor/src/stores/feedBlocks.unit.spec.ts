import { describe, expect, it } from 'vitest';
import { addToBlocks, emptyBlocks, type BlockList } from './feedBlocks.ts';

const flat = (list: BlockList<number>) => list.blocks.flatMap((b) => b.items);
const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

describe('addToBlocks', () => {
  it('groups items into blocks of consecutive items, newest first', () => {
    const list = addToBlocks(emptyBlocks<number>(), range(0, 7), 3, 100);
    expect(list.blocks).toEqual([
      { id: 2, items: [6] },
      { id: 1, items: [5, 4, 3] },
      { id: 0, items: [2, 1, 0] },
    ]);
    expect(list.received).toBe(7);
  });

  it('fills the newest block first and keeps every other block as the same object', () => {
    const before = addToBlocks(emptyBlocks<number>(), range(0, 7), 3, 100);
    const after = addToBlocks(before, [7], 3, 100);
    expect(after.blocks[0]).toEqual({ id: 2, items: [7, 6] });
    expect(after.blocks[1]).toBe(before.blocks[1]);
    expect(after.blocks[2]).toBe(before.blocks[2]);
    const next = addToBlocks(after, [8, 9], 3, 100);
    expect(next.blocks.map((b) => b.id)).toEqual([3, 2, 1, 0]);
    expect(next.blocks[0]!.items).toEqual([9]);
    expect(next.blocks[2]).toBe(before.blocks[1]);
  });

  it('keeps exactly the newest max items, the oldest falling off one by one', () => {
    let list = emptyBlocks<number>();
    for (let n = 0; n < 40; n += 4) {
      list = addToBlocks(list, range(n, n + 4), 5, 12);
      const expected = range(Math.max(0, n + 4 - 12), n + 4).reverse();
      expect(flat(list)).toEqual(expected);
    }
    expect(list.received).toBe(40);
    // Blocks are never empty.
    expect(list.blocks.every((b) => b.items.length > 0)).toBe(true);
  });

  it('takes a burst larger than max', () => {
    const list = addToBlocks(addToBlocks(emptyBlocks<number>(), [0, 1], 4, 5), range(2, 20), 4, 5);
    expect(flat(list)).toEqual([19, 18, 17, 16, 15]);
    expect(list.received).toBe(20);
    expect(list.blocks.map((b) => b.id)).toEqual([4, 3]);
  });

  it('returns the same list for no items', () => {
    const list = addToBlocks(emptyBlocks<number>(), [1], 2, 3);
    expect(addToBlocks(list, [], 2, 3)).toBe(list);
  });

  it('refuses a block size or max that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => addToBlocks(emptyBlocks<number>(), [1], bad, 10)).toThrow(RangeError);
      expect(() => addToBlocks(emptyBlocks<number>(), [1], 10, bad)).toThrow(RangeError);
    }
  });
});
