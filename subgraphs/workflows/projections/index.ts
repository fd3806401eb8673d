/**
 * Every projection of the workflows subgraph, by name (what `npm run rebuild` offers). All are
 * inline: they run in the append's transaction.
 */
import type { Projection } from '../../../eventstore/index.ts';
import { runsProjection } from './runsProjection.ts';
import { workflowsProjection } from './workflowsProjection.ts';

export const projections: readonly Projection[] = [workflowsProjection, runsProjection];
export const projectionMode = 'inline' as const;
