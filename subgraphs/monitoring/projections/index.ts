/**
 * Every projection of the monitoring subgraph, in the order the service runs them (what
 * `npm run rebuild -- --service monitoring` offers). All are inline: they run in the append's
 * transaction.
 */
import type { Projection } from '../../../eventstore/index.ts';
import { observedEventsProjection } from './observedEventsProjection.ts';

export const projections: readonly Projection[] = [observedEventsProjection];
export const projectionMode = 'inline' as const;
