/**
 * Time as a dependency: domain code never reads the system clock, it receives `now` in its
 * commands, and services receive a `Clock` so tests can move time.
 */

/** Returns the current time. */
export type Clock = () => Date;

/** The system clock. */
export const systemClock: Clock = () => new Date();

/** `date + ms` as an ISO-8601 UTC string (`2025-01-01T00:00:00.000Z`), the format events store times in. */
export function addMs(date: Date, ms: number): string {
  return new Date(date.getTime() + ms).toISOString();
}
