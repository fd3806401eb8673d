// @vitest-environment happy-dom
/**
 * useStore in a DOM (happy-dom): a view shows its store's value, follows later changes, and
 * shows a change made after its render but before Preact ran its effects (the window in which a
 * view opened while the feed's last event arrived kept the list without that event).
 */
import { h, render } from 'preact';
import { afterEach, describe, expect, it } from 'vitest';
import { createStore, intervalThrottle, useStore, type Store } from './store.ts';

/** Waits until Preact has run pending effects and re-renders (it defers effects to after the next frame, at most 100 ms). */
const settle = () => new Promise((resolve) => setTimeout(resolve, 250));

function View({ store }: { store: Store<string> }) {
  return h('p', null, useStore(store));
}

describe('useStore', () => {
  let root: HTMLElement;
  afterEach(() => {
    render(null, root);
    root.remove();
  });
  const mount = (store: Store<string>) => {
    root = document.createElement('div');
    document.body.append(root);
    render(h(View, { store }), root);
  };

  it('shows the value and re-renders on each change', async () => {
    const store = createStore('first');
    mount(store);
    expect(root.textContent).toBe('first');
    await settle();
    store.set('second');
    await settle();
    expect(root.textContent).toBe('second');
    store.set('third');
    await settle();
    expect(root.textContent).toBe('third');
  });

  it('shows a change made between the render and the subscription', async () => {
    const store = createStore('rendered');
    mount(store);
    expect(root.textContent).toBe('rendered');
    // Synchronously after render(): Preact has not run the component's useEffect yet.
    store.set('set before the effects ran');
    await settle();
    expect(root.textContent).toBe('set before the effects ran');
  });

  it('stops re-rendering once unmounted', async () => {
    const store = createStore('a');
    mount(store);
    await settle();
    render(null, root);
    store.set('b');
    await settle();
    expect(root.textContent).toBe('');
  });
});

describe('intervalThrottle', () => {
  it('refuses an interval that is not a positive number of milliseconds', () => {
    for (const bad of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) expect(() => intervalThrottle(() => {}, bad)).toThrow(RangeError);
  });
});
