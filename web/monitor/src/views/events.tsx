/**
 * The live event feed (`#/events`): events across services, newest first (the last 500), with
 * counters per service and per type, and a filter by service and type.
 */
import { memo } from 'preact/compat';
import { useState } from 'preact/hooks';
import { colorOf } from '../charts/colors.ts';
import { clock, duration, shortId } from '../format.ts';
import type { Block } from '../stores/feedBlocks.ts';
import { counters, feed, received, type FeedItem as Item } from '../stores/feedStore.ts';
import { useStore } from '../store.ts';

const FeedRow = memo(function FeedRow({ item }: { item: Item }) {
  const e = item.event;
  return (
    <li
      class="feed-item"
      data-testid="feed-item"
      data-event-id={e.eventId}
      data-source={e.source}
      data-type={e.type}
      data-run-id={e.runId ?? ''}
      data-correlation-id={e.correlationId ?? ''}
      data-received-at={item.receivedAt.toFixed(1)}
    >
      <span class="mono time">{clock(e.occurredAt)}</span>
      <span class="svc" style={{ background: colorOf(e.source) }}>
        {e.source}
      </span>
      <span class="type">{e.type}</span>
      <span class="mono muted ellipsis" title={`${e.streamId}@${e.streamPosition}`}>
        {e.streamId}@{e.streamPosition}
      </span>
      {e.runId ? (
        <a class="mono" href={`#/runs/${encodeURIComponent(e.runId)}`} title={e.runId}>
          run {shortId(e.runId)}
        </a>
      ) : (
        <span />
      )}
      <span class="mono muted" title="observedAt − occurredAt">
        {duration(e.lagMs)}
      </span>
    </li>
  );
});

/** Whether `item` passes the view's filter (`''`: any). */
function passes(item: Item, source: string, type: string): boolean {
  return (!source || item.event.source === source) && (!type || `${item.event.source}/${item.event.type}` === type);
}

/**
 * A block of the feed (styles.css `.feed-block`: skipped by the browser when off screen).
 * Memoised: only the newest block, and the oldest as events fall off, render again.
 */
const FeedBlock = memo(function FeedBlock({ block, source, type }: { block: Block<Item>; source: string; type: string }) {
  const shown = source || type ? block.items.filter((item) => passes(item, source, type)) : block.items;
  if (shown.length === 0) return null;
  return (
    <ol class="feed-block" data-testid="feed-block" style={{ containIntrinsicSize: `auto ${shown.length * 23}px` }}>
      {shown.map((item) => (
        <FeedRow key={item.key} item={item} />
      ))}
    </ol>
  );
});

/** The feed view. */
export function EventsView() {
  const { blocks } = useStore(feed);
  const c = useStore(counters);
  const total = useStore(received);
  const [source, setSource] = useState('');
  const [type, setType] = useState('');
  const sources = [...c.services.keys()].sort();
  const types = [...c.types.keys()].filter((key) => !source || key.startsWith(`${source}/`)).sort();
  let shown = 0;
  for (const block of blocks) for (const item of block.items) if (passes(item, source, type)) shown++;
  return (
    <div class="events">
      <section class="panel counters" data-testid="counters">
        <h2>
          Counters <span class="muted" data-testid="counter-total">{c.loaded ? c.total : '…'}</span>
        </h2>
        <ul class="service-counters">
          {sources.map((s) => (
            <li key={s} data-testid="service-counter" data-source={s} data-count={c.services.get(s)}>
              <span class="svc" style={{ background: colorOf(s) }}>
                {s}
              </span>{' '}
              <b>{c.services.get(s)}</b>
            </li>
          ))}
        </ul>
        <table class="type-counters">
          <tbody>
            {[...c.types.entries()]
              .sort((a, b) => b[1] - a[1])
              .map(([key, count]) => (
                <tr key={key} data-testid="type-counter" data-type={key} data-count={count}>
                  <td class="muted">{key.split('/')[0]}</td>
                  <td>{key.split('/')[1]}</td>
                  <td class="num">{count}</td>
                </tr>
              ))}
          </tbody>
        </table>
      </section>
      <section class="panel feed">
        <div class="toolbar">
          <h1>Events</h1>
          <label>
            Service
            <select
              data-testid="feed-filter-source"
              value={source}
              onChange={(e) => {
                setSource((e.target as HTMLSelectElement).value);
                setType('');
              }}
            >
              <option value="">any</option>
              {sources.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          <label>
            Type
            <select data-testid="feed-filter-type" value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
              <option value="">any</option>
              {types.map((t) => (
                <option key={t} value={t}>
                  {t}
                </option>
              ))}
            </select>
          </label>
          <span class="muted" data-testid="feed-received">
            {total} received since the page opened · showing {shown}
          </span>
        </div>
        <div class="feed-list" data-testid="feed-list">
          {blocks.map((block) => (
            <FeedBlock key={block.id} block={block} source={source} type={type} />
          ))}
        </div>
        {shown === 0 && <p class="muted">Waiting for events…</p>}
      </section>
    </div>
  );
}
