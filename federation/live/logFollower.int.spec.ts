/**
 * The service's log follower on a real event store: feeds get the pages of their stream or of
 * the whole log, and a follower that went idle (its last feed left) starts again for the next
 * feed, however quickly feeds come and go. (The race the generation check closes — a stopped
 * tail's read in flight setting `position`, so register never started a new tail — was seen in
 * the subscriptions benchmark; this churn test does not reproduce it reliably.)
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { LogPosition, RecordedEvent } from '../../eventstore/index.ts';
import { createStoreFixture, eventually, type StoreFixture } from '../../eventstore/testing/fixture.ts';
import { createLogFollower, type FollowerFeed } from './logFollower.ts';

let fx: StoreFixture;
beforeAll(async () => {
  fx = await createStoreFixture('log_follower');
});
afterAll(() => fx.close());

function recordingFeed(streamId: string | undefined, types: string[]): FollowerFeed & { events: RecordedEvent[]; positions: LogPosition[] } {
  const events: RecordedEvent[] = [];
  const positions: LogPosition[] = [];
  return {
    streamId,
    types: new Set(types),
    events,
    positions,
    push(page, position) {
      events.push(...page);
      positions.push(position);
    },
    drained: async () => {},
  };
}

describe('the live log follower', () => {
  it('hands each feed its stream or the whole log, filtered by type', async () => {
    const follower = createLogFollower({ store: fx.store, logger: pino({ level: 'silent' }), pollIntervalMs: 50 });
    const one = recordingFeed('lf-one', ['A']);
    const all = recordingFeed(undefined, ['A', 'B']);
    await follower.register(one);
    await follower.register(all);
    await fx.store.appendToStream('lf-one', [{ type: 'A', data: { n: 1 } }, { type: 'B', data: { n: 2 } }]);
    await fx.store.appendToStream('lf-two', [{ type: 'A', data: { n: 3 } }]);
    await eventually(() => all.events.length === 3, 10_000, 'the whole-log feed');
    expect(one.events.map((e) => e.data)).toEqual([{ n: 1 }]);
    expect(all.events.map((e) => e.data)).toEqual([{ n: 1 }, { n: 2 }, { n: 3 }]);
    await follower.close();
  });

  it('starts again for every new feed after going idle, even when feeds come and go at once', async () => {
    const follower = createLogFollower({ store: fx.store, logger: pino({ level: 'silent' }), pollIntervalMs: 5 });
    // Other writers keep the log moving, so a stopping tail's read in flight finds something new.
    let writing = true;
    const noise = (async () => {
      for (let n = 0; writing; n++) await fx.store.appendToStream('lf-noise', [{ type: 'Noise', data: { n } }]);
    })();
    for (let round = 0; round < 60; round++) {
      const feed = recordingFeed(`lf-churn-${round}`, ['Churned']);
      await follower.register(feed);
      await fx.store.appendToStream(`lf-churn-${round}`, [{ type: 'Churned', data: { round } }]);
      await eventually(() => feed.events.length === 1, 10_000, `round ${round}'s event`);
      expect(feed.events[0]!.data).toEqual({ round });
      // Leaving while the tail is reading (no await: the next register races the stopping tail).
      follower.unregister(feed);
    }
    writing = false;
    await noise;
    await follower.close();
  });
});
