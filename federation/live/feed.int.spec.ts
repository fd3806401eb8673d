/**
 * A feed on a real event store, driven as the log follower drives it. The follower hands pages
 * out between `register` resolving and the caller's `start(position)` (the `await` in
 * liveServer's `feedFor` lets a page in flight through): the feed must not then move back to the
 * registration position, or a client resuming from before that page would replay only up to the
 * older position and never receive the page's events (live delivery skipped them: nobody had
 * joined yet).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { LogPosition, RecordedEvent } from '../../eventstore/index.ts';
import { createStoreFixture, eventually, type StoreFixture } from '../../eventstore/testing/fixture.ts';
import { randomCursorCodec } from './cursor.ts';
import { createFeed, positionOf, type FeedSink, type SelectionGroup } from './feed.ts';
import type { LiveField } from './liveField.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('live_feed');
});
afterAll(() => fx.close());

const field: LiveField<Record<string, never>> = {
  name: 'things',
  start: 'head',
  types: ['Thing'],
  normalize: () => ({}),
  createProjector: () => ({ project: (event: RecordedEvent) => ({ n: (event.data as { n: number }).n }) }),
};

const group: SelectionGroup = {
  key: 'g',
  execute: async (update, extensions) => Buffer.from(JSON.stringify({ data: { things: { n: update.n } }, extensions: { flowgraph: extensions } })),
};

function recordingSink(): FeedSink & { received: number[] } {
  const received: number[] = [];
  return {
    received,
    stopped: false,
    next(payload) {
      const body = JSON.parse(payload.toString()) as { data?: { things: { n: number } } };
      if (body.data) received.push(body.data.things.n);
      return true;
    },
    error() {},
  };
}

describe('a live feed', () => {
  it('does not move back when a page reached it before start: a client resuming from before that page replays it', async () => {
    const stream = `feed-${Date.now()}`;
    const first = await fx.store.appendToStream(stream, [{ type: 'Thing', data: { n: 1 } }]);
    await fx.store.appendToStream(stream, [{ type: 'Thing', data: { n: 2 } }, { type: 'Thing', data: { n: 3 } }]);
    const page = await fx.store.readAll({ after: first.position, types: ['Thing'] });
    const later = page.events.filter((e) => e.streamId === stream);
    expect(later.map((e) => (e.data as { n: number }).n)).toEqual([2, 3]);
    const pageEnd: LogPosition = positionOf(later.at(-1)!);

    const feed = createFeed({ field, args: {}, store: fx.store, codec: randomCursorCodec(), logger: pino({ level: 'silent' }), onEmpty: () => {} });
    try {
      // The follower registered the feed at `first` and handed it the next page before start().
      feed.push(later, pageEnd);
      await new Promise((resolve) => setImmediate(resolve)); // the feed has taken the page in
      feed.start(first.position);
      const sink = recordingSink();
      const { live } = feed.join({ group, sink, after: first.position, announcePositions: false });
      await live;
      await eventually(() => sink.received.length >= 2, 10_000, "the page's events");
      expect(sink.received).toEqual([2, 3]);

      // And live from there: the next page once, in order.
      await fx.store.appendToStream(stream, [{ type: 'Thing', data: { n: 4 } }]);
      const next = (await fx.store.readAll({ after: pageEnd, types: ['Thing'] })).events.filter((e) => e.streamId === stream);
      feed.push(next, positionOf(next.at(-1)!));
      await eventually(() => sink.received.length >= 3, 10_000, 'the live event');
      expect(sink.received).toEqual([2, 3, 4]);
    } finally {
      feed.close();
    }
  });
});
