/**
 * The bar above GraphiQL: who is signed in ("signed in as <sub> (<role>)" and "Sign out"), or a
 * password field to paste a token and "Sign in"; and, when the gateway refused the credentials,
 * the notice inviting the user to sign in (role `alert`).
 */
import { useState, type FormEvent } from 'react';
import { describeToken } from '../shared/identity.ts';

/** Props of {@link SignInBar}. */
export interface SignInBarProps {
  /** The stored token, or null when signed out. */
  token: string | null;
  /** A refusal to show (from the fetcher), or null. */
  notice: string | null;
  /** Called with the pasted token (trimmed by the caller's storage), or null to sign out. */
  onToken(token: string | null): void;
}

/** The sign-in bar (see the file comment). */
export function SignInBar({ token, notice, onToken }: SignInBarProps) {
  const [draft, setDraft] = useState('');
  const identity = token ? describeToken(token) : null;
  const expired = identity?.expiresAt !== undefined && identity.expiresAt <= Date.now();

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!draft.trim()) return;
    onToken(draft);
    setDraft('');
  };

  return (
    <header className="signin-bar">
      <strong className="signin-title">flowgraph explorer</strong>
      {token ? (
        <span className="signin-state">
          <span data-testid="signed-in">
            signed in as {identity ? `${identity.subject} (${identity.role})` : 'an unreadable token'}
            {expired ? ' — expired' : ''}
          </span>
          <button type="button" onClick={() => onToken(null)}>Sign out</button>
        </span>
      ) : (
        <form className="signin-state" onSubmit={submit}>
          <input
            type="password"
            aria-label="Token"
            placeholder="paste a token"
            autoComplete="off"
            spellCheck={false}
            value={draft}
            onChange={(event) => setDraft(event.target.value)}
          />
          <button type="submit">Sign in</button>
          <span className="signin-hint">
            <code>npm start</code> prints a development token; <code>npm run token -- --role operator</code> makes one.
          </span>
        </form>
      )}
      {notice ? <span className="signin-notice" role="alert">{notice}</span> : null}
    </header>
  );
}
