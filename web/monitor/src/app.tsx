/**
 * The page's frame: header (navigation, the connection badge, who is signed in, Sign out) and
 * the view of the current route; the sign-in form while signed out.
 */
import { useEffect } from 'preact/hooks';
import { storedToken, storeToken } from '../../shared/session.ts';
import { connectionState, disconnect, type ConnectionState } from './connection.ts';
import { describeToken } from '../../shared/identity.ts';
import { hrefOf, route, type Route } from './route.ts';
import { startFeed } from './stores/feedStore.ts';
import { loadRuns, loadWorkflows, startRunsLive } from './stores/runsStore.ts';
import { useStore } from './store.ts';
import { DocumentsView, DocumentView } from './views/documents.tsx';
import { EventsView } from './views/events.tsx';
import { RunDetailView } from './views/runDetail.tsx';
import { RunsView } from './views/runs.tsx';
import { SignIn } from './views/signIn.tsx';

const BADGE_TEXT: Record<ConnectionState, string> = {
  connecting: 'connecting',
  live: 'live',
  reconnecting: 'reconnecting',
  'catching up': 'catching up',
  'signed-out': 'signed out',
};

/** The connection badge (`data-testid="connection-state"`, `data-state` = the state). */
export function ConnectionBadge() {
  const state = useStore(connectionState);
  return (
    <span class={`badge badge-${state.replace(' ', '-')}`} data-testid="connection-state" data-state={state} title="connection to the gateway">
      <span class="dot" />
      {BADGE_TEXT[state]}
    </span>
  );
}

const NAV: { label: string; route: Route; active: Route['view'][] }[] = [
  { label: 'Runs', route: { view: 'runs' }, active: ['runs', 'run'] },
  { label: 'Events', route: { view: 'events' }, active: ['events'] },
  { label: 'Documents', route: { view: 'documents' }, active: ['documents', 'document'] },
];

/** The page. */
export function App() {
  const state = useStore(connectionState);
  const current = useStore(route);
  const signedIn = state !== 'signed-out';
  useEffect(() => {
    if (!signedIn) return;
    startFeed();
    startRunsLive();
    void loadWorkflows();
    void loadRuns();
  }, [signedIn]);
  const identity = describeToken(storedToken());
  return (
    <div class="app">
      <header class="header">
        <a class="brand" href="#/runs">flowgraph <span>monitor</span></a>
        <nav>
          {NAV.map((item) => (
            <a key={item.label} href={hrefOf(item.route)} class={item.active.includes(current.view) ? 'active' : ''} data-testid={`nav-${item.route.view}`}>
              {item.label}
            </a>
          ))}
        </nav>
        <div class="spacer" />
        <ConnectionBadge />
        {signedIn && identity && (
          <span class="who" data-testid="identity">
            {identity.subject} <span class={`role role-${identity.role}`}>{identity.role}</span>
          </span>
        )}
        {signedIn && (
          <button
            class="link"
            data-testid="sign-out"
            onClick={() => {
              storeToken(null);
              disconnect();
            }}
          >
            Sign out
          </button>
        )}
      </header>
      <main class="main">{signedIn ? <View route={current} /> : <SignIn />}</main>
    </div>
  );
}

function View({ route: r }: { route: Route }) {
  switch (r.view) {
    case 'run':
      return <RunDetailView key={r.id} runId={r.id} />;
    case 'events':
      return <EventsView />;
    case 'documents':
      return <DocumentsView />;
    case 'document':
      return <DocumentView key={r.id} documentId={r.id} />;
    default:
      return <RunsView />;
  }
}
