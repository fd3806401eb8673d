/**
 * A record of a page's websocket traffic, kept in the page (`window.__socketLog`), so that a
 * browser test whose page misses an update can say on which side of the socket it was lost:
 * the gateway never sent it, or the page received it and did not show it.
 *
 * Installed with `page.addInitScript` before the page's own scripts run: it wraps the page's
 * `WebSocket` (graphql-ws takes the global at `createClient`) and records, per socket, its
 * opening and close code, every `subscribe` it sends (operation id, operation name, `after`),
 * and every message it receives (`next` with the subscription field's `event` type and id when
 * there is one, `error` with its first code, `complete`, protocol messages). The newest {@link MAX_ENTRIES} are kept.
 */
import type { Page } from 'playwright-core';

/** Entries kept (the oldest are dropped first). */
export const MAX_ENTRIES = 5000;

/** One recorded socket event. */
export interface SocketEntry {
  /** `Date.now()` in the page. */
  at: number;
  /** Which socket of the page (0, 1, … in opening order). */
  socket: number;
  kind: 'open' | 'close' | 'out' | 'in';
  /** `open`: the URL; `close`: the code; `out`/`in`: the graphql-transport-ws message type. */
  detail: string;
  /** The operation id of a `subscribe`, `next`, `error` or `complete`. */
  id?: string;
  /** `subscribe`: the operation name and whether it carries `after`. */
  operation?: string;
  /** `next`: the `event { type eventId }` of its root field, when it has one. */
  eventType?: string;
  eventId?: string;
  /** `error` (or a `next` with errors): the first error's `extensions.code`. */
  code?: string;
}

/** Installs the recorder on `page` (before `page.goto`). */
export async function recordSockets(page: Page): Promise<void> {
  await page.addInitScript((max: number) => {
    // Raw strings only: parsing happens in socketLog(), off the page's hot path (the
    // responsiveness test measures this page's main thread).
    const w = window as unknown as { __socketLog: { log: unknown[][]; dropped: number }; WebSocket: typeof WebSocket };
    const state = (w.__socketLog = { log: [] as unknown[][], dropped: 0 });
    const push = (socket: number, kind: string, detail: string) => {
      state.log.push([Date.now(), socket, kind, detail]);
      if (state.log.length > max) {
        state.log.splice(0, max / 2);
        state.dropped += max / 2;
      }
    };
    const Native = w.WebSocket;
    let sockets = 0;
    class Recorded extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        const socket = sockets++;
        push(socket, 'open', String(url));
        this.addEventListener('close', (event) => push(socket, 'close', String((event as CloseEvent).code)));
        this.addEventListener('message', (event) => push(socket, 'in', String((event as MessageEvent).data)));
        const send = this.send.bind(this);
        this.send = (data: string | ArrayBufferLike | Blob | ArrayBufferView) => {
          push(socket, 'out', typeof data === 'string' ? data : '(binary)');
          send(data);
        };
      }
    }
    w.WebSocket = Recorded as unknown as typeof WebSocket;
  }, MAX_ENTRIES);
}

/**
 * The entries recorded so far (oldest first), parsed. `dropped` counts the oldest entries
 * discarded past {@link MAX_ENTRIES}: when it is not 0, "never received" may mean "dropped".
 */
export async function socketLog(page: Page): Promise<SocketEntry[] & { dropped: number }> {
  const { log, dropped } = await page.evaluate(
    () => (window as unknown as { __socketLog?: { log: [number, number, string, string][]; dropped: number } }).__socketLog ?? { log: [], dropped: 0 },
  );
  type Errors = { extensions?: { code?: string } }[];
  const entries = log.map(([at, socket, kind, detail]): SocketEntry => {
    if (kind !== 'in' && kind !== 'out') return { at, socket, kind: kind as SocketEntry['kind'], detail };
    try {
      const message = JSON.parse(detail) as {
        type: string;
        id?: string;
        payload?: Errors | { data?: Record<string, { event?: { type?: string; eventId?: string } } | null>; errors?: Errors; query?: string; variables?: Record<string, unknown> };
      };
      const payload = message.payload;
      const result = payload && !Array.isArray(payload) ? payload : undefined;
      if (kind === 'out') {
        const name = /(?:subscription|query|mutation)\s+(\w+)/.exec(result?.query ?? '')?.[1] ?? '';
        const after = result?.variables?.after;
        return { at, socket, kind, detail: message.type, id: message.id, ...(message.type === 'subscribe' ? { operation: `${name}${typeof after === 'string' ? ' after' : ''}` } : {}) };
      }
      const root = message.type === 'next' ? Object.values(result?.data ?? {})[0] : undefined;
      const errors = Array.isArray(payload) ? payload : result?.errors;
      return { at, socket, kind, detail: message.type, id: message.id, eventType: root?.event?.type, eventId: root?.event?.eventId, code: errors?.[0]?.extensions?.code };
    } catch {
      return { at, socket, kind, detail: 'unparsable' };
    }
  });
  return Object.assign(entries, { dropped });
}
