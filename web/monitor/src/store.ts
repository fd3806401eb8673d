/**
 * A minimal observable value (no dependency): `get`, `set`, `subscribe`, and {@link useStore}
 * to re-render a Preact component when it changes.
 */
import { useSyncExternalStore } from 'preact/compat';

/** An observable value. Listeners run synchronously after each `set` that changes it (`Object.is`). */
export interface Store<T> {
  get(): T;
  set(value: T): void;
  /** `set(fn(get()))`. */
  update(fn: (value: T) => T): void;
  /** Calls `listener` after every change; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

/** Creates a {@link Store} holding `initial`. */
export function createStore<T>(initial: T): Store<T> {
  let value = initial;
  const listeners = new Set<() => void>();
  return {
    get: () => value,
    set(next) {
      if (Object.is(next, value)) return;
      value = next;
      for (const listener of [...listeners]) listener();
    },
    update(fn) {
      this.set(fn(value));
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}

/**
 * The store's current value; the component re-renders when it changes, including a change made
 * between the component's render and its subscribing (Preact runs `useEffect` after the paint, a
 * frame or more later on a busy page): preact/compat's `useSyncExternalStore` compares the value
 * rendered with the store's when it subscribes. Subscribing in a plain `useEffect` missed such a
 * change until the next one, so a view opened while its last update arrived showed the list
 * without it for good (the monitor e2e: the feed opened as the run's RunCompleted arrived).
 */
export function useStore<T>(store: Store<T>): T {
  return useSyncExternalStore(store.subscribe, store.get);
}

/**
 * Calls `fn` at most once per animation frame however often it is scheduled (coalescing a
 * burst of updates into one render). Returns the scheduling function.
 */
export function frameThrottle(fn: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      fn();
    });
  };
}

/**
 * Calls `fn` at most once per `intervalMs` (milliseconds), in an animation frame, however often
 * it is scheduled. The first call after a quiet interval runs in the next frame; later ones wait
 * for the interval to pass, so a steady stream of updates costs `1000 / intervalMs` renders a
 * second instead of one per frame. Throws a RangeError when `intervalMs` is not a positive finite
 * number. Returns the scheduling function.
 */
export function intervalThrottle(fn: () => void, intervalMs: number): () => void {
  if (!(Number.isFinite(intervalMs) && intervalMs > 0)) throw new RangeError(`intervalThrottle: intervalMs must be a positive number of milliseconds, got ${intervalMs}`);
  let pending = false;
  let last = -Infinity;
  return () => {
    if (pending) return;
    pending = true;
    setTimeout(
      () =>
        requestAnimationFrame((now) => {
          pending = false;
          last = now;
          fn();
        }),
      Math.max(0, last + intervalMs - performance.now()),
    );
  };
}
