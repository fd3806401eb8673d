/**
 * Causal order of a trace (issue 3: "the chain of events across services in causal order").
 * Pure.
 *
 * Rule: the events form a forest by `causationId → eventId` (an event whose cause is not in the
 * trace — a user request id, or an event not observed yet — is a root). The order is a
 * depth-first pre-order walk: roots by `occurredAt`, then each event is followed by its
 * effects, siblings by `occurredAt`; ties (same millisecond) break on the observation order
 * (`seq`). So every cause comes before its effects, and an event's whole consequence tree sits
 * under it, as in a trace viewer. Events caught in a causation cycle (malformed metadata) are
 * not dropped: they are walked last, as roots, each event once.
 */

/** What the ordering needs of an event. */
export interface CausalEvent {
  eventId: string;
  causationId: string | null;
  occurredAt: Date;
  /** Tie-breaker: position in monitoring's log (smaller = observed earlier). */
  seq: bigint;
}

/** An event in causal order. */
export interface CausalEntry<T extends CausalEvent> {
  event: T;
  /** 0 for a root, else its cause's depth + 1. */
  depth: number;
  /** Its cause, when the cause is in the trace. */
  cause: T | null;
  /** `occurredAt − cause.occurredAt` in ms; null for a root. Negative only under clock skew between services. */
  durationSinceCauseMs: number | null;
}

const byTime = (a: CausalEvent, b: CausalEvent) => a.occurredAt.getTime() - b.occurredAt.getTime() || (a.seq < b.seq ? -1 : a.seq > b.seq ? 1 : 0);

/** Orders `events` causally (see the module comment). Returns every event exactly once. O(n log n). */
export function orderCausally<T extends CausalEvent>(events: readonly T[]): CausalEntry<T>[] {
  const byId = new Map<string, T>();
  for (const event of events) if (!byId.has(event.eventId)) byId.set(event.eventId, event);
  const children = new Map<T, T[]>();
  const roots: T[] = [];
  for (const event of events) {
    const cause = event.causationId !== null && event.causationId !== event.eventId ? byId.get(event.causationId) : undefined;
    if (!cause) roots.push(event);
    else {
      const list = children.get(cause);
      if (list) list.push(event);
      else children.set(cause, [event]);
    }
  }
  for (const list of children.values()) list.sort(byTime);
  roots.sort(byTime);

  const out: CausalEntry<T>[] = [];
  const visited = new Set<T>();
  const walk = (root: T) => {
    const stack: { event: T; depth: number; cause: T | null }[] = [{ event: root, depth: 0, cause: null }];
    while (stack.length > 0) {
      const { event, depth, cause } = stack.pop()!;
      if (visited.has(event)) continue;
      visited.add(event);
      out.push({
        event,
        depth,
        cause,
        durationSinceCauseMs: cause ? event.occurredAt.getTime() - cause.occurredAt.getTime() : null,
      });
      const kids = children.get(event) ?? [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push({ event: kids[i]!, depth: depth + 1, cause: event });
    }
  };
  for (const root of roots) walk(root);
  // Cycles have no root: walk what is left, earliest first.
  for (const event of [...events].sort(byTime)) if (!visited.has(event)) walk(event);
  return out;
}
