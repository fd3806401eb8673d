/**
 * The shared subscription on fake upstreams and a fake hydrator: a member catching up on a
 * long backlog (its own upstream replaying thousands of events at once) has its events
 * hydrated at most `hydrationConcurrency` at a time, in order, each once, then switches to the
 * shared upstream with no gap and no duplicate.
 */
import { describe, expect, it } from 'vitest';
import type { LogPosition } from '../../eventstore/cursor.ts';
import type { UpstreamEvent } from './hydrate.ts';
import { createSharedSubscription, type ClientSink } from './shared.ts';
import type { Upstream, UpstreamHandlers } from './upstream.ts';

const at = (n: number): LogPosition => ({ transactionId: String(n), globalPosition: String(n) });
const event = (n: number): UpstreamEvent => ({ data: { n }, errors: undefined, cursor: `c${n}` });

describe('createSharedSubscription', () => {
  it('hydrates a catching-up member’s backlog at most hydrationConcurrency at a time, in order, then switches without gap or duplicate', async () => {
    const upstreams: { after: string | null; handlers: UpstreamHandlers; closed: boolean }[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const shared = createSharedSubscription({
      key: 'k',
      after: null,
      hydrationConcurrency: 4,
      logger: { error: () => {} },
      onClosed: () => {},
      openUpstream(after, handlers): Upstream {
        const upstream = { after, handlers, closed: false };
        upstreams.push(upstream);
        return {
          cursor: after,
          position: null,
          received: 0,
          accepted: true,
          close: () => void (upstream.closed = true),
        };
      },
      async hydrate(e) {
        // Counted: the replay's events (the shared upstream's have a bound of their own).
        const replayed = (e.data as { n: number }).n <= 2000;
        if (replayed) inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (replayed) inFlight--;
        return Buffer.from(JSON.stringify(e.data));
      },
    });
    const got: number[] = [];
    const sink: ClientSink = {
      next: (payload) => (got.push((JSON.parse(payload.toString()) as { n: number }).n), true),
      error: () => expect.fail('no error expected'),
      complete: () => expect.fail('no complete expected'),
      stopped: false,
    };
    // The shared upstream is live at 2000; the member resumes from 0 on an upstream of its own.
    upstreams[0]!.handlers.onPosition('c2000', at(2000));
    shared.join(sink, 'c0');
    const replay = upstreams[1]!;
    expect(replay.after).toBe('c0');
    replay.handlers.onPosition('c0', at(0));
    for (let n = 1; n <= 2000; n++) replay.handlers.onEvent(event(n), at(n));
    // Live events on the shared upstream meanwhile (buffered for the member).
    for (let n = 2001; n <= 2005; n++) upstreams[0]!.handlers.onEvent(event(n), at(n));
    await expect.poll(() => got.length, { timeout: 30_000 }).toBe(2005);
    expect(got).toEqual(Array.from({ length: 2005 }, (_, i) => i + 1));
    expect(maxInFlight).toBeLessThanOrEqual(4);
    expect(replay.closed).toBe(true);
    shared.close();
  });
});
