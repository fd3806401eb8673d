/**
 * The runs list (`#/runs`): newest first, filters by status and workflow, rows updated live.
 * Each row is keyed and memoised and reads its own run from the store, so a run's update
 * re-renders that row only; rows are grid boxes with layout containment and
 * `content-visibility: auto` (styles.css), so the browser lays out that row only, and skips rows
 * off screen (a `<table>` re-measured every one of 1,000 rows on each change).
 */
import { memo, useSyncExternalStore } from 'preact/compat';
import { useCallback } from 'preact/hooks';
import { clock, shortId } from '../format.ts';
import type { RunSummary } from '../queries.ts';
import { getRun, runIds, runsFilter, setRunsFilter, subscribeRun, workflows, MAX_RUNS } from '../stores/runsStore.ts';
import { useStore } from '../store.ts';

const STATUSES: RunSummary['status'][] = ['RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];

/** Run `id` as the store has it, re-rendering on its changes (see `useStore` for why not a plain `useEffect`). */
function useRun(id: string): RunSummary | undefined {
  const subscribe = useCallback((listener: () => void) => subscribeRun(id, listener), [id]);
  return useSyncExternalStore(subscribe, () => getRun(id));
}

/** A step's status cell. */
export function StepCell({ name, status, attempt }: { name: string; status: string; attempt: number }) {
  return (
    <span class={`step status-${status}`} data-testid="step" data-step={name} data-status={status} title={`${name}: ${status}${attempt > 1 ? `, attempt ${attempt}` : ''}`}>
      {name}
      {attempt > 1 && <sup>{attempt}</sup>}
    </span>
  );
}

const RunRow = memo(function RunRow({ id, workflowName }: { id: string; workflowName: string | undefined }) {
  const run = useRun(id);
  if (!run) return null;
  return (
    <div class="run-row" role="row" data-testid="run-row" data-run-id={run.id} data-status={run.status}>
      <span role="cell">
        <a href={`#/runs/${encodeURIComponent(run.id)}`} class="mono" title={run.id}>
          {shortId(run.id)}
        </a>
      </span>
      <span role="cell" title={run.workflowId}>
        {workflowName ?? shortId(run.workflowId)}
      </span>
      <span role="cell">
        <span class={`pill status-${run.status}`}>{run.status}</span>
      </span>
      <span role="cell" class="steps">
        {run.steps.map((step) => (
          <StepCell key={step.name} name={step.name} status={step.status} attempt={step.attempt} />
        ))}
      </span>
      <span role="cell" class="mono">
        {clock(run.startedAt)}
      </span>
      <span role="cell" class="mono">
        {clock(run.updatedAt)}
      </span>
    </div>
  );
});

/** The runs view. */
export function RunsView() {
  const list = useStore(runIds);
  const filter = useStore(runsFilter);
  const options = useStore(workflows);
  const names = new Map(options.map((w) => [w.id, w.name]));
  return (
    <section class="panel">
      <div class="toolbar">
        <h1>Runs</h1>
        <label>
          Status
          <select
            data-testid="filter-status"
            value={filter.status ?? ''}
            onChange={(e) => setRunsFilter({ ...filter, status: ((e.target as HTMLSelectElement).value || null) as RunSummary['status'] | null })}
          >
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        <label>
          Workflow
          <select data-testid="filter-workflow" value={filter.workflowId ?? ''} onChange={(e) => setRunsFilter({ ...filter, workflowId: (e.target as HTMLSelectElement).value || null })}>
            <option value="">any</option>
            {options.map((w) => (
              <option key={w.id} value={w.id}>
                {w.name}
              </option>
            ))}
          </select>
        </label>
        <span class="muted" data-testid="runs-count">
          {list.loading ? 'loading…' : `${list.ids.length}${list.ids.length >= MAX_RUNS ? '+' : ''} runs`}
        </span>
      </div>
      {list.error && <p class="error">{list.error}</p>}
      <div class="runs" role="table" aria-label="Runs">
        <div class="run-row run-head" role="row">
          <span role="columnheader">Run</span>
          <span role="columnheader">Workflow</span>
          <span role="columnheader">Status</span>
          <span role="columnheader">Steps</span>
          <span role="columnheader">Started</span>
          <span role="columnheader">Updated</span>
        </div>
        <div role="rowgroup">
          {list.ids.map((id) => (
            <RunRow key={id} id={id} workflowName={names.get(getRun(id)?.workflowId ?? '')} />
          ))}
        </div>
      </div>
      {!list.loading && list.ids.length === 0 && <p class="muted">No runs{filter.status || filter.workflowId ? ' match the filter' : ' yet'}.</p>}
    </section>
  );
}
