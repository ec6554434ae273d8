// Sign-in: paste an access token (or open the link the server prints, whose
// `#token=…` fragment main.tsx reads before this screen shows).
import { useState, type FormEvent } from 'react';
import { errorText, fetchMe, type Organization, type User } from './api';
import { ErrorMessage } from './dialog';

export function Login({
  message,
  onSignedIn,
}: {
  /** Why the user is here again (e.g. the token was refused). */
  message: string | null;
  onSignedIn: (token: string, me: User, organization: Organization) => void;
}) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | null>(message);
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent) {
    event.preventDefault();
    const value = token.trim().replace(/^Bearer\s+/i, '');
    if (!value) {
      setError('Paste an access token first.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      const data = await fetchMe(value);
      onSignedIn(value, data.me, data.organization);
    } catch (e) {
      setError(errorText(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="login">
      <form className="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">
          <img src="/favicon.svg" alt="" width={28} height={28} /> okr-pulse
        </h1>
        <p>Sign in with an access token (a JWT). The server prints one at first start; more come from <code>okr-pulse token</code>.</p>
        <div className="field">
          <label htmlFor="token">Access token</label>
          <input
            id="token"
            type="password"
            autoComplete="off"
            spellCheck={false}
            value={token}
            onChange={(e) => setToken(e.target.value)}
            aria-describedby={error ? 'login-error' : undefined}
            aria-invalid={error ? true : undefined}
            autoFocus
          />
        </div>
        <ErrorMessage message={error} id="login-error" />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
