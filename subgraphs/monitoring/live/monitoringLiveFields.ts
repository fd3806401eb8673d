/**
 * The monitoring subgraph's subscription field (schema.graphql `Subscription`), served from its
 * event store by federation/live/ (DESIGN.md, "Subscriptions through the gateway"):
 * `eventFeed(filter)`, every IntegrationEventObserved of monitoring's whole log matching the filter
 * (source, type, correlationId), from the log's head without `after`. Each update is `{ event }`:
 * the observation as the `ObservedEvent` resolvers serve it (readModel.ts `observedEventViewOf`,
 * straight from the stored event: an observation never changes).
 *
 * ```ts
 * serveSubgraph({ ..., live: { store, fields: createMonitoringLiveFields(), codec } });
 * ```
 */
import type { LiveField, LiveProjector } from '../../../federation/live/liveField.ts';
import { BadUserInputError } from '../errors.ts';
import { INTEGRATION_EVENT_OBSERVED, type IntegrationEventObservedData } from '../observe/events.ts';
import { MAX_FILTER_CHARS, observedEventViewOf, type ObservedEventView } from '../readModel.ts';

/** `extensions.reason` of the subscription arguments' BAD_USER_INPUT errors. */
export const LiveInputReason = {
  /** A filter member that is not 1..500 characters, holds U+0000, or is not a string. */
  InvalidFilter: 'INVALID_FILTER',
} as const;

/** Arguments of `eventFeed`, normalised: only the filter members given (not null), keys sorted. */
export type EventFeedArgs = { filter: { correlationId?: string; source?: string; type?: string } };

/** The update of `eventFeed` (the serving layer adds cursor, eventType, occurredAt). */
export interface ObservedEventUpdateValue {
  [key: string]: unknown;
  event: ObservedEventView;
}

const FILTER_MEMBERS = ['correlationId', 'source', 'type'] as const;

/** The subscription fields of the monitoring subgraph. */
export function createMonitoringLiveFields(): LiveField<any>[] {
  const eventFeed: LiveField<EventFeedArgs> = {
    name: 'eventFeed',
    start: 'head',
    types: [INTEGRATION_EVENT_OBSERVED],
    normalize: (args) => ({ filter: normalizeEventFilter(args.filter) }),
    createProjector({ filter }): LiveProjector {
      return {
        project(event) {
          if (event.type !== INTEGRATION_EVENT_OBSERVED) return null;
          const d = event.data as IntegrationEventObservedData;
          if (filter.source !== undefined && d.source !== filter.source) return null;
          if (filter.type !== undefined && d.type !== filter.type) return null;
          if (filter.correlationId !== undefined && d.correlationId !== filter.correlationId) return null;
          return { event: observedEventViewOf(event) } satisfies ObservedEventUpdateValue;
        },
      };
    },
  };
  return [eventFeed];
}

/**
 * The feed's filter with null and absent members dropped, keys sorted; the query `eventFeed`'s
 * rule for each value (1..500 characters), and no U+0000.
 * @throws BadUserInputError reason INVALID_FILTER (`field` names the member)
 */
export function normalizeEventFilter(filter: unknown): EventFeedArgs['filter'] {
  if (filter === null || filter === undefined) return {};
  if (typeof filter !== 'object' || Array.isArray(filter)) {
    throw new BadUserInputError('filter must be an object', { field: 'filter', reason: LiveInputReason.InvalidFilter });
  }
  const normalized: EventFeedArgs['filter'] = {};
  for (const member of FILTER_MEMBERS) {
    const value = (filter as Record<string, unknown>)[member];
    if (value === null || value === undefined) continue;
    if (typeof value !== 'string' || value.length === 0 || value.length > MAX_FILTER_CHARS || value.includes('\u0000')) {
      throw new BadUserInputError(`filter.${member} must have 1..${MAX_FILTER_CHARS} characters, without U+0000`, {
        field: `filter.${member}`,
        reason: LiveInputReason.InvalidFilter,
      });
    }
    normalized[member] = value;
  }
  return normalized;
}
