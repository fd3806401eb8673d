/** The sign-in form: a bearer token, stored with web/shared/session.ts (session storage, never the URL). */
import { useState } from 'preact/hooks';
import { storeToken } from '../../../shared/session.ts';
import { refusal, restart } from '../connection.ts';
import { describeToken } from '../../../shared/identity.ts';
import { useStore } from '../store.ts';

/** The form shown while signed out or after the gateway refused the token (a 4403 close). */
export function SignIn() {
  const refused = useStore(refusal);
  const [token, setToken] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const submit = (event: Event) => {
    event.preventDefault();
    const identity = describeToken(token.trim().replace(/^bearer\s+/i, ''));
    if (!identity) {
      setProblem('That is not a JWT (three base64url parts separated by dots).');
      return;
    }
    if (identity.expiresAt !== undefined && identity.expiresAt < Date.now()) {
      setProblem('That token has expired.');
      return;
    }
    setProblem(null);
    storeToken(token);
    setToken('');
    restart();
  };
  return (
    <form class="panel sign-in" onSubmit={submit} data-testid="sign-in">
      <h1>Sign in</h1>
      {refused && <p class="error" data-testid="sign-in-refused">The gateway refused the token ({refused}). Sign in again.</p>}
      <label>
        Token
        <input type="password" autocomplete="off" spellcheck={false} value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} data-testid="token-input" placeholder="eyJ…" />
      </label>
      {problem && <p class="error">{problem}</p>}
      <button type="submit" class="primary" data-testid="sign-in-submit" disabled={!token.trim()}>
        Sign in
      </button>
      <p class="hint">
        <code>npm start</code> prints a development token; another comes from <code>npm run token -- --role operator</code>. It is kept in
        this tab's session storage only.
      </p>
    </form>
  );
}
