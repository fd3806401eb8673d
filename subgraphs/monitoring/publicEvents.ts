/**
 * Monitoring's public (integration) events: none. Monitoring only observes the other services
 * (issue 3); its own `IntegrationEventObserved` events stay private, so no relay runs.
 * Declared for uniformity with the other services (contract: `subgraphs/<service>/publicEvents.ts`).
 */
import type { PublicEvents } from '../../eventstore/index.ts';

/** Monitoring publishes nothing. */
export const monitoringPublicEvents: PublicEvents = Object.freeze({});
