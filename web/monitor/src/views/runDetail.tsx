/**
 * One run (`#/runs/<id>`): its steps (status, attempts, errors), a timeline chart, its
 * cross-service trace, live from `runUpdated(runId, after)` (resumed with its cursor); Retry on
 * a failed step, Cancel on a running run (confirmed inline), mutation errors shown inline.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { liveSubscription, onReconnect, request } from '../connection.ts';
import { Gantt } from '../charts/gantt.tsx';
import { colorOf } from '../charts/colors.ts';
import { clock, duration, errorMessage, serviceOfStep } from '../format.ts';
import { CANCEL_RUN, RETRY_STEP, RUN_DETAIL, RUN_LIVE, RUN_TIMELINE, TRACE, type RunDetail, type TimelineEntry, type TraceView } from '../queries.ts';
import { StepCell } from './runs.tsx';

interface RunUpdate {
  cursor: string;
  eventType: string;
  occurredAt: string;
  stepName: string | null;
  run: RunDetail & { asOfVersion: number };
}

/** Whether `retryStep` applies to the step: the step that failed a FAILED run, or one waiting for its backoff. */
function retryable(run: RunDetail, step: RunDetail['steps'][number]): boolean {
  if (run.status === 'FAILED') return step.status === 'FAILED' || step.status === 'TIMED_OUT';
  return run.status === 'RUNNING' && step.status === 'RETRY_SCHEDULED';
}

/** The run detail view. */
export function RunDetailView({ runId }: { runId: string }) {
  const [run, setRun] = useState<RunDetail | null>(null);
  const [missing, setMissing] = useState(false);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [timeline, setTimeline] = useState<TimelineEntry[]>([]);
  const [trace, setTrace] = useState<TraceView | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [confirmCancel, setConfirmCancel] = useState(false);
  const version = useRef(-1);
  const refresh = useRef<() => void>(() => {});

  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const loadSide = async () => {
      try {
        const data = await request<{ runTimeline: TimelineEntry[] }>(RUN_TIMELINE, { id: runId });
        if (!alive) return;
        setTimeline(data.runTimeline);
        const correlationId = data.runTimeline.find((e) => e.event.source === 'workflows' && e.event.correlationId)?.event.correlationId;
        if (correlationId) {
          const t = await request<{ trace: TraceView | null }>(TRACE, { correlationId });
          if (alive) setTrace(t.trace);
        }
      } catch {
        // The next update loads them again.
      }
    };
    // Timeline and trace are refetched at most once a second while updates come.
    refresh.current = () => {
      if (timer) return;
      timer = setTimeout(() => {
        timer = undefined;
        void loadSide();
      }, 1000);
    };
    const apply = (next: RunDetail) => {
      if (next.version <= version.current) return;
      version.current = next.version;
      setRun(next);
    };
    const load = async () => {
      try {
        const data = await request<{ run: RunDetail | null; runTimeline: TimelineEntry[] }>(RUN_DETAIL, { id: runId });
        if (!alive) return;
        if (!data.run) {
          setMissing(true);
          return;
        }
        setLoadError(null);
        apply(data.run);
        setTimeline(data.runTimeline);
        void loadSide();
      } catch (error) {
        if (alive) setLoadError((error as Error).message);
      }
    };
    const sub = liveSubscription<{ runUpdated: RunUpdate }>({
      query: RUN_LIVE,
      variables: { runId },
      cursorOf: (data) => data.runUpdated.cursor,
      occurredAtOf: (data) => Date.parse(data.runUpdated.occurredAt),
      onData: ({ runUpdated }) => {
        const { asOfVersion, ...state } = runUpdated.run;
        setMissing(false);
        apply({ ...state, version: asOfVersion });
        refresh.current();
      },
      onError: (error) => setLoadError(error.message),
    });
    void load();
    const removeTask = onReconnect(load);
    return () => {
      alive = false;
      clearTimeout(timer);
      sub.dispose();
      removeTask();
    };
  }, [runId]);

  const mutate = async (query: string, variables: Record<string, unknown>) => {
    setBusy(true);
    setActionError(null);
    try {
      const data = await request<Record<string, RunDetail>>(query, variables);
      const next = Object.values(data)[0];
      if (next && next.version > version.current) {
        version.current = next.version;
        setRun(next);
      }
      refresh.current();
    } catch (error) {
      setActionError((error as Error).message);
    } finally {
      setBusy(false);
      setConfirmCancel(false);
    }
  };

  if (missing) return <section class="panel"><h1>Run {runId}</h1><p class="muted">No such run (yet).</p></section>;
  if (!run) return <section class="panel"><h1>Run {runId}</h1><p class="muted">{loadError ?? 'loading…'}</p></section>;
  const runError = run.error as { stepName?: string; message?: string } | null;
  return (
    <div class="detail" data-testid="run-detail" data-run-id={run.id} data-status={run.status}>
      <section class="panel">
        <div class="toolbar">
          <h1>
            Run <span class="mono">{run.id}</span>
          </h1>
          <span class={`pill status-${run.status}`} data-testid="run-status" data-status={run.status}>
            {run.status}
          </span>
          <div class="spacer" />
          {run.status === 'RUNNING' &&
            (confirmCancel ? (
              <span class="confirm">
                Cancel this run?{' '}
                <button class="danger" data-testid="cancel-run-confirm" disabled={busy} onClick={() => void mutate(CANCEL_RUN, { runId: run.id, reason: 'cancelled from /monitor' })}>
                  Yes, cancel
                </button>{' '}
                <button onClick={() => setConfirmCancel(false)}>No</button>
              </span>
            ) : (
              <button class="danger" data-testid="cancel-run" disabled={busy} onClick={() => setConfirmCancel(true)}>
                Cancel run
              </button>
            ))}
        </div>
        <dl class="facts">
          <dt>Workflow</dt>
          <dd>{run.workflow?.name ?? run.workflowId}</dd>
          <dt>Started</dt>
          <dd class="mono">{clock(run.startedAt)}</dd>
          <dt>Ended</dt>
          <dd class="mono">{clock(run.endedAt)}</dd>
          <dt>Duration</dt>
          <dd>{duration((run.endedAt ? Date.parse(run.endedAt) : Date.parse(run.updatedAt)) - Date.parse(run.startedAt))}</dd>
          <dt>Version</dt>
          <dd>{run.version}</dd>
          {runError && (
            <>
              <dt>Error</dt>
              <dd class="error">
                {runError.stepName}: {runError.message}
              </dd>
            </>
          )}
          {run.cancelReason && (
            <>
              <dt>Cancelled</dt>
              <dd>{run.cancelReason}</dd>
            </>
          )}
        </dl>
        {actionError && (
          <p class="error" data-testid="action-error">
            {actionError}
          </p>
        )}
        <table class="steps-table">
          <thead>
            <tr>
              <th>Step</th>
              <th>Kind</th>
              <th>Status</th>
              <th>Attempts</th>
              <th>Started</th>
              <th>Ended</th>
              <th>Error</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {run.steps.map((step) => (
              <tr key={step.name} data-testid="step-row" data-step={step.name} data-status={step.status}>
                <td>
                  <StepCell name={step.name} status={step.status} attempt={step.attempt} />
                </td>
                <td>
                  {step.kind} <span class="muted" style={{ color: colorOf(serviceOfStep(step.kind)) }}>{serviceOfStep(step.kind)}</span>
                </td>
                <td>{step.status}</td>
                <td>{step.attempt}</td>
                <td class="mono">{clock(step.startedAt)}</td>
                <td class="mono">{clock(step.endedAt)}</td>
                <td class="error">{errorMessage(step.error)}</td>
                <td>
                  {step.document && <a href={`#/documents/${encodeURIComponent(step.document.id)}`}>{step.document.title}</a>}
                  {retryable(run, step) && (
                    <button class="primary" data-testid="retry-step" data-step={step.name} disabled={busy} onClick={() => void mutate(RETRY_STEP, { runId: run.id, stepName: step.name })}>
                      Retry
                    </button>
                  )}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      <section class="panel">
        <h2>Timeline</h2>
        <Gantt steps={run.steps} timeline={timeline} startedAt={run.startedAt} endedAt={run.endedAt} />
      </section>
      <section class="panel" data-testid="trace">
        <h2>
          Trace {trace && <span class="muted mono">{trace.correlationId}</span>}
        </h2>
        {trace ? (
          <>
            <p class="muted">
              {trace.eventCount} events across {trace.sources.join(', ')} in {duration(trace.durationMs)}
              {trace.traceId && <> · trace id <span class="mono">{trace.traceId}</span></>}
              {trace.truncated && ' (truncated)'}
            </p>
            <table class="trace">
              <thead>
                <tr>
                  <th>Event</th>
                  <th>Service</th>
                  <th>At</th>
                  <th>After cause</th>
                  <th>Lag</th>
                </tr>
              </thead>
              <tbody>
                {trace.events.map((entry) => (
                  <tr key={`${entry.event.source}:${entry.event.eventId}`} data-testid="trace-entry">
                    <td style={{ paddingLeft: `${4 + entry.depth * 14}px` }}>{entry.event.type}</td>
                    <td>
                      <span class="svc" style={{ background: colorOf(entry.event.source) }}>
                        {entry.event.source}
                      </span>
                    </td>
                    <td class="mono">+{duration(entry.sinceTraceStartMs)}</td>
                    <td class="mono">{entry.durationSinceCauseMs === null ? '' : duration(entry.durationSinceCauseMs)}</td>
                    <td class="mono">{duration(entry.event.lagMs)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        ) : (
          <p class="muted">No trace observed yet.</p>
        )}
      </section>
    </div>
  );
}
