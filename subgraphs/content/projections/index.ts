/**
 * Every projection of the content subgraph, in the order the service runs them (what
 * `npm run rebuild -- --service content` offers). All are inline: they run in the append's
 * transaction.
 */
import type { Projection } from '../../../eventstore/index.ts';
import { documentsProjection } from './documentsProjection.ts';

export const projections: readonly Projection[] = [documentsProjection];
export const projectionMode = 'inline' as const;
