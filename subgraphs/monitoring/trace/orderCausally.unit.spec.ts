import { describe, expect, it } from 'vitest';
import { orderCausally, type CausalEvent } from './orderCausally.ts';

let seq = 0n;
const ev = (eventId: string, causationId: string | null, ms: number): CausalEvent => ({ eventId, causationId, occurredAt: new Date(Date.UTC(2025, 0, 1) + ms), seq: ++seq });
const ids = (events: CausalEvent[]) => orderCausally(events).map((e) => e.event.eventId);

describe('orderCausally', () => {
  it('puts each cause before its effects and a whole consequence tree under its root, whatever the input order', () => {
    const events = [
      ev('chunk-1', 'ingest', 26),
      ev('mention-of-chunk-0', 'chunk-0', 90), // later than chunk-1, but caused by chunk-0
      ev('run', 'request', 0),
      ev('chunk-0', 'ingest', 25),
      ev('ingest', 'run', 5),
    ];
    const ordered = orderCausally(events);
    expect(ordered.map((e) => e.event.eventId)).toEqual(['run', 'ingest', 'chunk-0', 'mention-of-chunk-0', 'chunk-1']);
    expect(ordered.map((e) => e.depth)).toEqual([0, 1, 2, 3, 2]);
    expect(ordered.map((e) => e.durationSinceCauseMs)).toEqual([null, 5, 20, 65, 21]);
    expect(ordered.map((e) => e.cause?.eventId ?? null)).toEqual([null, 'run', 'ingest', 'chunk-0', 'ingest']);
  });

  it('orders roots and siblings by occurredAt, then by observation order on a tie', () => {
    const late = ev('late-root', null, 50);
    const early = ev('early-root', 'unknown-request', 10);
    const tieA = ev('tie-a', 'early-root', 20);
    const tieB = ev('tie-b', 'early-root', 20);
    expect(ids([tieB, late, tieA, early].sort(() => 0))).toEqual(['early-root', 'tie-a', 'tie-b', 'late-root']);
  });

  it('keeps an effect under its cause when the effect’s clock is behind (negative duration)', () => {
    const ordered = orderCausally([ev('effect', 'cause', 90), ev('cause', null, 100)]);
    expect(ordered.map((e) => [e.event.eventId, e.durationSinceCauseMs])).toEqual([
      ['cause', null],
      ['effect', -10],
    ]);
  });

  it('returns every event exactly once even with a causation cycle or a self-cause', () => {
    const events = [ev('a', 'b', 1), ev('b', 'a', 2), ev('self', 'self', 3), ev('c', 'a', 4)];
    const out = ids(events);
    expect(out).toHaveLength(4);
    expect(new Set(out)).toEqual(new Set(['a', 'b', 'self', 'c']));
    expect(out.indexOf('a')).toBeLessThan(out.indexOf('c'));
  });

  it('handles a deep chain without recursion limits', () => {
    const chain = Array.from({ length: 50_000 }, (_, i) => ev(`e${i}`, i === 0 ? null : `e${i - 1}`, i));
    const ordered = orderCausally([...chain].reverse());
    expect(ordered).toHaveLength(50_000);
    expect(ordered.at(-1)).toMatchObject({ depth: 49_999, durationSinceCauseMs: 1 });
  });

  it('returns [] for no events', () => {
    expect(orderCausally([])).toEqual([]);
  });
});
