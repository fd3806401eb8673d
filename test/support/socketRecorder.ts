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
    const w = window as unknown as { __socketLog: unknown[]; WebSocket: typeof WebSocket };
    const log: unknown[] = (w.__socketLog = []);
    const push = (entry: Record<string, unknown>) => {
      log.push({ at: Date.now(), ...entry });
      if (log.length > max) log.splice(0, log.length - max);
    };
    const Native = w.WebSocket;
    let sockets = 0;
    class Recorded extends Native {
      constructor(url: string | URL, protocols?: string | string[]) {
        super(url, protocols);
        const socket = sockets++;
        push({ socket, kind: 'open', detail: String(url) });
        this.addEventListener('close', (event) => push({ socket, kind: 'close', detail: String((event as CloseEvent).code) }));
        this.addEventListener('message', (event) => {
          try {
            type Errors = { extensions?: { code?: string } }[];
            const message = JSON.parse(String((event as MessageEvent).data)) as {
              type: string;
              id?: string;
              payload?: Errors | { data?: Record<string, { event?: { type?: string; eventId?: string } } | null>; errors?: Errors };
            };
            const payload = message.payload;
            const result = payload && !Array.isArray(payload) ? payload : undefined;
            const root = message.type === 'next' ? Object.values(result?.data ?? {})[0] : undefined;
            const errors = Array.isArray(payload) ? payload : result?.errors;
            push({ socket, kind: 'in', detail: message.type, id: message.id, eventType: root?.event?.type, eventId: root?.event?.eventId, code: errors?.[0]?.extensions?.code });
          } catch {
            push({ socket, kind: 'in', detail: 'unparsable' });
          }
        });
        const send = this.send.bind(this);
        this.send = (data: string | ArrayBufferLike | Blob | ArrayBufferView) => {
          try {
            const message = JSON.parse(String(data)) as { type: string; id?: string; payload?: { query?: string; variables?: Record<string, unknown> } };
            const name = /(?:subscription|query|mutation)\s+(\w+)/.exec(message.payload?.query ?? '')?.[1] ?? '';
            const after = message.payload?.variables?.after;
            push({ socket, kind: 'out', detail: message.type, id: message.id, operation: message.type === 'subscribe' ? `${name}${typeof after === 'string' ? ' after' : ''}` : undefined });
          } catch {
            push({ socket, kind: 'out', detail: 'unparsable' });
          }
          send(data);
        };
      }
    }
    w.WebSocket = Recorded as unknown as typeof WebSocket;
  }, MAX_ENTRIES);
}

/** The entries recorded so far (oldest first). */
export function socketLog(page: Page): Promise<SocketEntry[]> {
  return page.evaluate(() => (window as unknown as { __socketLog?: SocketEntry[] }).__socketLog ?? []);
}
