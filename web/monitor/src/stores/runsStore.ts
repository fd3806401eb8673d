/**
 * The runs list: up to {@link MAX_RUNS} runs, newest first, for the current filter, kept live.
 *
 * - Loaded by paging `runs` by 100; loaded again after every reconnect (the snapshot).
 * - Live from the `runs` subscription (every run event with the run as of it; unfiltered, the
 *   page filters), resumed with its cursor. Updates are queued and applied once per animation
 *   frame: a known run is replaced when the update is newer than what the page has (its
 *   `asOfVersion` above the run's `version`), an unknown one that matches the filter is added on
 *   top, one that no longer matches is dropped.
 * - Each run has its own listeners ({@link subscribeRun}), so an update re-renders its row only;
 *   the list itself ({@link runIds}) changes only when runs are added or dropped. The work per
 *   update is independent of the number of runs.
 */
import { liveSubscription, onReconnect, request, type LiveSubscription } from '../connection.ts';
import { RUNS_LIVE, RUNS_PAGE, WORKFLOWS, type RunSummary, type WorkflowOption } from '../queries.ts';
import { createStore, frameThrottle, type Store } from '../store.ts';

/** Most runs the list holds. */
export const MAX_RUNS = 1000;
/** Runs per `runs` page. */
export const PAGE_SIZE = 100;

/** The list's filter (null members do not filter). */
export interface RunsFilter {
  status: RunSummary['status'] | null;
  workflowId: string | null;
}

/** The list's state: ids newest first, plus loading and error. */
export interface RunsList {
  ids: readonly string[];
  loading: boolean;
  error: string | null;
}

interface RunUpdate {
  cursor: string;
  eventType: string;
  occurredAt: string;
  run: RunSummary & { asOfVersion: number };
}

/** The list (ids only: rows read their run with {@link subscribeRun}). */
export const runIds: Store<RunsList> = createStore<RunsList>({ ids: [], loading: false, error: null });
/** The current filter. */
export const runsFilter: Store<RunsFilter> = createStore<RunsFilter>({ status: null, workflowId: null });
/** Workflows, for the filter and names. */
export const workflows: Store<readonly WorkflowOption[]> = createStore<readonly WorkflowOption[]>([]);

const runs = new Map<string, RunSummary>();
const runListeners = new Map<string, Set<() => void>>();
let queue: RunUpdate[] = [];
let live: LiveSubscription | null = null;
let loadGeneration = 0;
/** Runs the live updates added while a load was under way (a load's pages may predate them). */
const addedWhileLoading = new Set<string>();

/** The run's current state, if the list has it. */
export function getRun(id: string): RunSummary | undefined {
  return runs.get(id);
}

/** Calls `listener` whenever run `id` changes; returns the unsubscribe function. */
export function subscribeRun(id: string, listener: () => void): () => void {
  let set = runListeners.get(id);
  if (!set) runListeners.set(id, (set = new Set()));
  set.add(listener);
  return () => {
    set.delete(listener);
    if (set.size === 0) runListeners.delete(id);
  };
}

function matches(run: RunSummary, filter: RunsFilter): boolean {
  return (filter.status === null || run.status === filter.status) && (filter.workflowId === null || run.workflowId === filter.workflowId);
}

function notifyRun(id: string): void {
  for (const listener of [...(runListeners.get(id) ?? [])]) listener();
}

/** Loads the list for the current filter (up to {@link MAX_RUNS}, by pages of {@link PAGE_SIZE}). */
export async function loadRuns(): Promise<void> {
  const generation = ++loadGeneration;
  const filter = runsFilter.get();
  runIds.set({ ...runIds.get(), loading: true, error: null });
  addedWhileLoading.clear();
  const loaded: RunSummary[] = [];
  let after: string | null = null;
  try {
    for (;;) {
      const page: { runs: { edges: { node: RunSummary }[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } } = await request(RUNS_PAGE, {
        filter: { status: filter.status, workflowId: filter.workflowId },
        first: Math.min(PAGE_SIZE, MAX_RUNS - loaded.length),
        after,
      });
      if (generation !== loadGeneration) return;
      loaded.push(...page.runs.edges.map((edge) => edge.node));
      after = page.runs.pageInfo.endCursor;
      if (!page.runs.pageInfo.hasNextPage || loaded.length >= MAX_RUNS || !after) break;
    }
  } catch (error) {
    if (generation === loadGeneration) runIds.set({ ...runIds.get(), loading: false, error: (error as Error).message });
    return;
  }
  const ids: string[] = [];
  for (const run of loaded) {
    const known = runs.get(run.id);
    // A live update newer than the page (it arrived while paging) wins.
    if (!known || known.version < run.version) {
      runs.set(run.id, run);
      if (known) notifyRun(run.id);
    }
    ids.push(run.id);
  }
  const present = new Set(ids);
  const newer = [...addedWhileLoading].filter((id) => !present.has(id) && matches(runs.get(id)!, filter)).reverse();
  ids.unshift(...newer);
  ids.splice(MAX_RUNS);
  const keep = new Set(ids);
  for (const id of runs.keys()) if (!keep.has(id) && !runListeners.has(id)) runs.delete(id);
  runIds.set({ ids, loading: false, error: null });
}

/** Loads the workflows of the filter's select. */
export async function loadWorkflows(): Promise<void> {
  try {
    const data = await request<{ workflows: WorkflowOption[] }>(WORKFLOWS);
    workflows.set(data.workflows);
  } catch {
    // The select stays as it was; the list shows its own errors.
  }
}

/** Changes the filter and loads the list again. */
export function setRunsFilter(filter: RunsFilter): void {
  runsFilter.set(filter);
  void loadRuns();
}

const flush = frameThrottle(() => {
  const updates = queue;
  queue = [];
  const filter = runsFilter.get();
  const list = runIds.get();
  let added: string[] | null = null;
  let dropped: Set<string> | null = null;
  for (const { run } of updates) {
    const known = runs.get(run.id);
    if (known && known.version >= run.asOfVersion) continue;
    const { asOfVersion: _asOf, ...state } = run;
    const next: RunSummary = { ...state, version: run.asOfVersion };
    runs.set(run.id, next);
    if (!known) {
      if (matches(next, filter)) (added ??= []).push(run.id);
      if (!workflows.get().some((w) => w.id === next.workflowId)) void loadWorkflows();
    } else if (!matches(next, filter)) {
      (dropped ??= new Set()).add(run.id);
    } else if (!matches(known, filter)) {
      (added ??= []).push(run.id);
    }
    notifyRun(run.id);
  }
  if (added || dropped) {
    const present = new Set(list.ids);
    const fresh = (added ?? []).filter((id) => !present.has(id)).reverse();
    if (list.loading) for (const id of fresh) addedWhileLoading.add(id);
    let ids = [...fresh, ...list.ids];
    if (dropped) ids = ids.filter((id) => !dropped.has(id));
    runIds.set({ ...list, ids: ids.slice(0, MAX_RUNS) });
  }
});

/**
 * Starts the live updates and the snapshot-after-reconnect (once, for the page's lifetime).
 */
export function startRunsLive(): void {
  if (live) return;
  live = liveSubscription<{ runs: RunUpdate }>({
    query: RUNS_LIVE,
    cursorOf: (data) => data.runs.cursor,
    occurredAtOf: (data) => Date.parse(data.runs.occurredAt),
    onData: (data) => {
      queue.push(data.runs);
      flush();
    },
  });
  onReconnect(() => Promise.all([loadRuns(), loadWorkflows()]));
  // A subscription without a cursor starts at the log's head once the gateway's upstream is set
  // up, a moment after this: the events of that moment reach the list through one more snapshot
  // (merged by version, so it never undoes a newer live update).
  setTimeout(() => void loadRuns(), SUBSCRIBE_GAP_SNAPSHOT_MS);
}

/** When the snapshot covering the subscription's start-up moment is taken, in ms after subscribing. */
const SUBSCRIBE_GAP_SNAPSHOT_MS = 1_500;
