/**
 * Every projection of the knowledge subgraph, in the order the service runs them (what
 * `npm run rebuild -- --service knowledge` offers). All are inline: they run in the append's
 * transaction.
 */
import type { Projection } from '../../../eventstore/index.ts';
import { extractionProjection } from './extractionProjection.ts';
import { graphProjection } from './graphProjection.ts';

export const projections: readonly Projection[] = [graphProjection, extractionProjection];
export const projectionMode = 'inline' as const;
