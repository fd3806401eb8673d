/** Formatting helpers shared by the views. */

/** `HH:MM:SS.mmm` of an ISO time (local), or `—`. */
export function clock(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return `${d.toLocaleTimeString([], { hour12: false })}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** A duration in ms as `850 ms`, `12.3 s`, `4 min 05 s`. */
export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
}

/** The first 8 characters of an id. */
export function shortId(id: string): string {
  return id.length > 10 ? id.slice(0, 8) : id;
}

/** The service a step kind runs in: INGEST → content, EXTRACT → knowledge, EXTERNAL → workflows (a person, through its API). */
export function serviceOfStep(kind: string): string {
  return kind === 'INGEST' ? 'content' : kind === 'EXTRACT' ? 'knowledge' : 'workflows';
}

/** A step error's message (`{ message }` JSON), else its JSON. */
export function errorMessage(error: unknown): string | null {
  if (error === null || error === undefined) return null;
  if (typeof error === 'object' && typeof (error as { message?: unknown }).message === 'string') return (error as { message: string }).message;
  return JSON.stringify(error);
}
