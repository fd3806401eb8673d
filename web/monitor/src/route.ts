/**
 * Hash routing: `#/runs`, `#/runs/<id>`, `#/events`, `#/documents`, `#/documents/<id>`
 * (anything else shows the runs). The hash keeps the gateway's static route to one file.
 */
import { createStore, type Store } from './store.ts';

/** A parsed route. */
export type Route =
  | { view: 'runs' }
  | { view: 'run'; id: string }
  | { view: 'events' }
  | { view: 'documents' }
  | { view: 'document'; id: string };

/** Parses a location hash such as `#/runs/abc`. */
export function parseRoute(hash: string): Route {
  const [view, ...rest] = hash.replace(/^#\/?/, '').split('/');
  const id = rest.length ? decodeURIComponent(rest.join('/')) : '';
  if (view === 'runs' && id) return { view: 'run', id };
  if (view === 'events') return { view: 'events' };
  if (view === 'documents') return id ? { view: 'document', id } : { view: 'documents' };
  return { view: 'runs' };
}

/** The href of a route. */
export function hrefOf(route: Route): string {
  switch (route.view) {
    case 'run':
      return `#/runs/${encodeURIComponent(route.id)}`;
    case 'document':
      return `#/documents/${encodeURIComponent(route.id)}`;
    default:
      return `#/${route.view}`;
  }
}

/** The current route, updated on `hashchange`. */
export const route: Store<Route> = createStore(parseRoute(location.hash));
addEventListener('hashchange', () => route.set(parseRoute(location.hash)));
