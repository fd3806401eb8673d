/**
 * A run's timeline as an SVG Gantt chart: one bar per step (its last attempt, from startedAt to
 * endedAt, or to now while it runs), coloured by the service that does it, then one lane per
 * service with a tick for each of its events in the run's timeline (`runTimeline`). The x axis is
 * ms since the run's first event.
 */
import type { StepView, TimelineEntry } from '../queries.ts';
import { duration, serviceOfStep } from '../format.ts';
import { colorOf } from './colors.ts';

/** Props of {@link Gantt}. */
export interface GanttProps {
  steps: readonly StepView[];
  timeline: readonly TimelineEntry[];
  /** The run's start (ISO). */
  startedAt: string;
  /** The run's end (ISO), null while it runs. */
  endedAt: string | null;
  /** Width in px. @default 760 */
  width?: number;
}

const ROW = 22;
const LABEL = 130;

/** The chart. */
export function Gantt({ steps, timeline, startedAt, endedAt, width = 760 }: GanttProps) {
  const t0 = Math.min(Date.parse(startedAt), ...timeline.map((e) => Date.parse(e.event.occurredAt)));
  const lastEvent = Math.max(0, ...timeline.map((e) => Date.parse(e.event.occurredAt)), ...steps.map((s) => (s.endedAt ? Date.parse(s.endedAt) : 0)));
  const t1 = Math.max(endedAt ? Date.parse(endedAt) : Date.now(), lastEvent, t0 + 1);
  const span = t1 - t0;
  const plot = width - LABEL - 10;
  const x = (ms: number) => LABEL + ((ms - t0) / span) * plot;
  const services = [...new Set(timeline.map((e) => e.event.source))].sort();
  const height = (steps.length + services.length + 1) * ROW + 24;
  const ticks = Array.from({ length: 5 }, (_, i) => (span * i) / 4);
  return (
    <svg class="gantt" width={width} height={height} viewBox={`0 0 ${width} ${height}`} data-testid="timeline-chart" role="img" aria-label="run timeline">
      {ticks.map((ms) => (
        <g key={ms}>
          <line x1={x(t0 + ms)} x2={x(t0 + ms)} y1={0} y2={height - 18} class="grid" />
          <text x={x(t0 + ms)} y={height - 4} class="axis" text-anchor="middle">
            {duration(ms)}
          </text>
        </g>
      ))}
      {steps.map((step, i) => {
        const y = i * ROW + 4;
        const service = serviceOfStep(step.kind);
        const start = step.startedAt ? Date.parse(step.startedAt) : null;
        const end = step.endedAt ? Date.parse(step.endedAt) : start !== null ? t1 : null;
        return (
          <g key={step.name} data-step={step.name} data-status={step.status}>
            <text x={4} y={y + 14} class="label">
              {step.name}
            </text>
            {start !== null && end !== null && (
              <rect x={x(start)} y={y + 2} width={Math.max(2, x(end) - x(start))} height={ROW - 6} rx={3} fill={colorOf(service)} class={`bar status-${step.status}`}>
                <title>{`${step.name} (${step.kind}, ${service}): ${step.status}, ${duration(end - start)}${step.attempt > 1 ? `, attempt ${step.attempt}` : ''}`}</title>
              </rect>
            )}
          </g>
        );
      })}
      {services.map((service, i) => {
        const y = (steps.length + i) * ROW + 8;
        return (
          <g key={service}>
            <text x={4} y={y + 14} class="label service" fill={colorOf(service)}>
              {service}
            </text>
            <line x1={LABEL} x2={width - 10} y1={y + 10} y2={y + 10} class="lane" />
            {timeline
              .filter((e) => e.event.source === service)
              .map((e) => (
                <rect key={e.event.eventId} x={x(Date.parse(e.event.occurredAt)) - 1.5} y={y + 3} width={3} height={14} fill={colorOf(service)}>
                  <title>{`${e.event.type} at +${duration(e.sinceRunStartMs)}`}</title>
                </rect>
              ))}
          </g>
        );
      })}
    </svg>
  );
}
