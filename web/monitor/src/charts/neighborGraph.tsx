/**
 * An entity's neighbours as a small SVG graph: the entity in the centre, its neighbours on a
 * circle around it (radial layout, heaviest first from the top, clockwise), each edge's stroke
 * width growing with its weight (shared chunks). Clicking a neighbour re-centres on it.
 */
import type { EntityView } from '../queries.ts';

/** Colours per entity kind. */
const KIND_COLORS: Record<EntityView['kind'], string> = { PERSON: '#4f7cff', PLACE: '#22a06b', ORGANIZATION: '#e8a33d' };

/** Props of {@link NeighborGraph}. */
export interface NeighborGraphProps {
  center: EntityView;
  neighbors: readonly { entity: EntityView; weight: number }[];
  onSelect(entity: EntityView): void;
  /** Width and height in px. @default 420 */
  size?: number;
}

/** The graph. */
export function NeighborGraph({ center, neighbors, onSelect, size = 420 }: NeighborGraphProps) {
  const c = size / 2;
  const radius = size / 2 - 60;
  const maxWeight = Math.max(1, ...neighbors.map((n) => n.weight));
  const sorted = [...neighbors].sort((a, b) => b.weight - a.weight);
  const points = sorted.map((n, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / Math.max(1, sorted.length);
    return { ...n, x: c + radius * Math.cos(angle), y: c + radius * Math.sin(angle), angle };
  });
  return (
    <svg class="graph" width={size} height={size} viewBox={`0 0 ${size} ${size}`} data-testid="neighbor-graph" data-center={center.id} role="img" aria-label={`neighbours of ${center.name}`}>
      {points.map((p) => (
        <line key={`e-${p.entity.id}`} x1={c} y1={c} x2={p.x} y2={p.y} class="edge" stroke-width={1 + (7 * p.weight) / maxWeight}>
          <title>{`${center.name} — ${p.entity.name}: weight ${p.weight}`}</title>
        </line>
      ))}
      {points.map((p) => {
        const right = Math.cos(p.angle) >= 0;
        return (
          <g key={p.entity.id} class="node" data-testid="neighbor-node" data-entity-id={p.entity.id} onClick={() => onSelect(p.entity)}>
            <circle cx={p.x} cy={p.y} r={6 + Math.min(8, Math.log2(1 + p.entity.mentionCount))} fill={KIND_COLORS[p.entity.kind]} />
            <text x={p.x + (right ? 12 : -12)} y={p.y + 4} text-anchor={right ? 'start' : 'end'} class="node-label">
              {p.entity.name}
            </text>
            <title>{`${p.entity.name} (${p.entity.kind}), ${p.entity.mentionCount} mentions, weight ${p.weight}`}</title>
          </g>
        );
      })}
      <circle cx={c} cy={c} r={16} fill={KIND_COLORS[center.kind]} class="center" />
      <text x={c} y={c + 32} text-anchor="middle" class="node-label center-label">
        {center.name}
      </text>
    </svg>
  );
}
