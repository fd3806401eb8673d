/**
 * The gateway's offline explorer at `/graphiql/`: GraphiQL 5 (bundled; Monaco's workers too, no
 * CDN) for the gateway at this page's origin, under a sign-in bar. The token lives in
 * sessionStorage (web/shared/session.ts) and is never put in GraphiQL's headers editor, whose
 * contents are not persisted; a new token makes a new fetcher (GraphiQL then fetches the schema
 * again) and closes the previous one's websocket.
 */
import 'graphiql/setup-workers/vite';
import 'graphiql/style.css';
import './page.css';
import { GraphiQL } from 'graphiql';
import { useEffect, useMemo, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { gatewayEndpoints, storedToken, storeToken } from '../shared/session.ts';
import { DEFAULT_QUERY } from './defaultQuery.ts';
import { createGatewayFetcher } from './fetcher.ts';
import { SignInBar } from './SignInBar.tsx';

function App() {
  const [token, setToken] = useState(storedToken);
  const [notice, setNotice] = useState<string | null>(null);
  const gateway = useMemo(() => createGatewayFetcher({ endpoints: gatewayEndpoints(), token, onAuthProblem: setNotice }), [token]);
  useEffect(() => () => gateway.dispose(), [gateway]);

  const changeToken = (next: string | null) => {
    setToken(storeToken(next));
    setNotice(null);
  };

  return (
    <div className="page">
      <SignInBar token={token} notice={notice} onToken={changeToken} />
      <main className="explorer">
        <GraphiQL fetcher={gateway.fetcher} defaultQuery={DEFAULT_QUERY} shouldPersistHeaders={false} showPersistHeadersSettings={false} />
      </main>
    </div>
  );
}

createRoot(document.getElementById('root')!).render(<App />);
