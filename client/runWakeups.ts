/**
 * Wake-ups for a client that polls workflow runs (`client/pipeline.ts` `runPipeline`): one
 * graphql-ws subscription through the gateway to monitoring's live feed of workflows' events
 * (`eventFeed(filter: { source: "workflows" })`); each observed event of a run ends that run's
 * current wait, so the client reads the run again at once instead of at its next poll. The poll
 * interval stays the fallback: a socket that drops or an event that slips between a read and the
 * next wait only slows a run's poll down to it.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** Ends a run's poll wait early. Close it with `close()` (idempotent). */
export interface RunWakeups {
  /**
   * Resolves after `ms`, or at once when an event of run `runId` was observed since the last
   * wait for it returned, or as soon as one is.
   */
  wait(runId: string, ms: number): Promise<void>;
  /** Ends the subscription and its socket; pending waits resolve at their timeout. */
  close(): Promise<void>;
}

const FEED = /* GraphQL */ `subscription { eventFeed(filter: { source: "workflows" }) { event { runId } } }`;

/**
 * Subscribes at `wsUrl` (`ws://host:port/graphql`), authenticating with `token` in the
 * `connection_init` payload (`{ authorization: 'Bearer …' }`, as the gateway wants). The
 * subscription starts lazily, with the first wait; graphql-ws retries a lost socket (5 times,
 * its default) and after that the waits are plain timers.
 */
export function watchRuns(wsUrl: string, token: () => string | Promise<string>): RunWakeups {
  let client: Client | undefined;
  let unsubscribe: (() => void) | undefined;
  /** Runs waited for at least once (events of other runs are ignored). */
  const known = new Set<string>();
  /** Known runs with an event not yet waited for. */
  const dirty = new Set<string>();
  const waiters = new Map<string, Set<() => void>>();
  let closed = false;

  function start(): void {
    if (client || closed) return;
    client = createClient({
      url: wsUrl,
      webSocketImpl: WebSocket,
      lazy: true,
      connectionParams: async () => ({ authorization: `Bearer ${await token()}` }),
    });
    unsubscribe = client.subscribe<{ eventFeed: { event: { runId: string | null } } }>(
      { query: FEED },
      {
        next: (result) => {
          const runId = result.data?.eventFeed.event.runId;
          if (!runId || !known.has(runId)) return;
          const waiting = waiters.get(runId);
          if (!waiting || waiting.size === 0) {
            dirty.add(runId);
            return;
          }
          for (const wake of [...waiting]) wake();
        },
        error: () => {}, // the waits fall back to their timers
        complete: () => {},
      },
    );
  }

  return {
    wait(runId, ms) {
      start();
      known.add(runId);
      if (dirty.delete(runId)) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const set = waiters.get(runId) ?? new Set();
        waiters.set(runId, set);
        const done = () => {
          clearTimeout(timer);
          set.delete(done);
          if (set.size === 0) waiters.delete(runId);
          resolve();
        };
        const timer = setTimeout(done, ms);
        set.add(done);
      });
    },
    async close() {
      if (closed) return;
      closed = true;
      unsubscribe?.();
      await client?.dispose();
    },
  };
}
