/**
 * A subgraph's poison-event parking (DESIGN.md, "Poison events"; `eventstore/parking.ts`) and its
 * GraphQL surface. Federation-safe without `@shareable`: every subgraph names its own root field
 * and types after itself, so no field or type is defined by two subgraphs:
 *
 * ```graphql
 * query { workflowsParking { parkedCount parkedEvents { id consumer eventType error attempts parkedAt waiting } } }
 * mutation { workflowsParking { retryParkedEvent(id: "1") { status } } }
 * mutation { workflowsParking { skipParkedEvent(id: "1") { status } } }
 * ```
 *
 * (`contentParking`, `knowledgeParking`, `monitoringParking` alike; the SDL is in each
 * `subgraphs/<name>/schema.graphql`.) The mutations need role `admin`: the gateway refuses them
 * first (`@requiresScopes(scopes: [["admin"]])` on the Mutation field), and the subgraph refuses
 * them again from the verified identity (`FORBIDDEN`, nothing retried or skipped).
 */
import type { EventStore, IntegrationTransport, Logger } from '../eventstore/index.ts';
import { createParkingLot, isParkingInputError, type ParkedEvent, type ParkingLot } from '../eventstore/parking.ts';
import { instrumentTransport } from '../eventstore/metrics.ts';
import type { DeliberateError } from './formatError.ts';
import { isTransientDatabaseError } from './isTransientDatabaseError.ts';
import { requireRole, type RequestContext } from './requestContext.ts';

/** Options of `createServiceParking`. */
export interface ServiceParkingOptions {
  /** The service's name, which prefixes its GraphQL root field and types (`workflows` → `workflowsParking`, `WorkflowsParkedEvent`). */
  service: string;
  store: EventStore;
  logger: Logger;
  /** Attempts before an event is parked. @default DEFAULT_PARK_AFTER_ATTEMPTS (5), `FLOWGRAPH_PARK_AFTER_ATTEMPTS` at the composition roots */
  maxAttempts?: number;
}

/** A service's parking: wrap the transport its consumers use, merge `resolvers`, close it on shutdown. */
export interface ServiceParking {
  lot: ParkingLot;
  /** `transport`, whose consumers park their poison events in this service's database and report to the store's metrics (handled events, failed attempts: their own handler's outcome). */
  wrap(transport: IntegrationTransport): IntegrationTransport;
  /** Resolvers of `<service>Parking` on Query and Mutation and of its types. */
  resolvers: Record<string, Record<string, unknown>>;
  /** Recognises the lot's input errors as deliberate (`BAD_USER_INPUT` with `reason`, `NOT_FOUND`), for `serveSubgraph`'s `isDeliberateError`. */
  isDeliberateError(error: unknown): error is DeliberateError;
  close(): Promise<void>;
}

/** Root field name of a service's parking, e.g. `workflowsParking`. */
export const parkingFieldOf = (service: string) => `${service}Parking`;

/**
 * Creates the parking lot of `service` (transient failures classified by
 * `isTransientDatabaseError`) and its resolvers.
 * @throws Error when `maxAttempts` is not an integer ≥ 1
 */
export function createServiceParking(options: ServiceParkingOptions): ServiceParking {
  const lot = createParkingLot({ store: options.store, logger: options.logger, maxAttempts: options.maxAttempts, isTransient: isTransientDatabaseError });
  const Name = options.service.charAt(0).toUpperCase() + options.service.slice(1);
  const field = parkingFieldOf(options.service);
  const namespace = () => ({});
  return {
    lot,
    wrap: (transport) => instrumentTransport(lot.wrap(transport), options.store.metrics),
    resolvers: {
      Query: { [field]: namespace },
      Mutation: {
        [field]: (_: unknown, _args: unknown, context: RequestContext) => {
          requireRole(context, 'admin', `${field} (parking mutations)`);
          return {};
        },
      },
      [`${Name}Parking`]: {
        parkedEvents: (_: unknown, args: { consumer?: string | null; includeResolved?: boolean | null; first?: number | null }) =>
          lot.list({ consumer: args.consumer ?? undefined, includeResolved: args.includeResolved ?? false, first: args.first ?? 100 }),
        parkedEvent: (_: unknown, args: { id: string }) => lot.get(args.id),
        parkedCount: () => lot.count(),
      },
      [`${Name}ParkingMutation`]: {
        retryParkedEvent: (_: unknown, args: { id: string }, context: RequestContext) => {
          requireRole(context, 'admin', 'retryParkedEvent');
          return lot.retry(args.id, context.meta.actor);
        },
        skipParkedEvent: (_: unknown, args: { id: string }, context: RequestContext) => {
          requireRole(context, 'admin', 'skipParkedEvent');
          return lot.skip(args.id, context.meta.actor, context.meta.actorRole);
        },
      },
      [`${Name}ParkedEvent`]: {
        eventType: (p: ParkedEvent) => p.type,
      },
    },
    isDeliberateError: (error): error is DeliberateError => isParkingInputError(error),
    close: () => lot.close(),
  };
}

/** `resolvers` with the parking resolvers merged in (Query and Mutation fields side by side). */
export function withParkingResolvers<R extends object>(resolvers: R, parking: ServiceParking): R {
  const merged: Record<string, Record<string, unknown>> = { ...(resolvers as Record<string, Record<string, unknown>>) };
  for (const [type, fields] of Object.entries(parking.resolvers)) merged[type] = { ...(merged[type] ?? {}), ...fields };
  return merged as R;
}
