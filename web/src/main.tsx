// The dashboard's entry: signs in from the URL fragment, the tab's stored
// token, or the login field, then shows the dashboard.
import { StrictMode, useCallback, useEffect, useState } from 'react';
import { createRoot } from 'react-dom/client';
import { ApiError, configureApi, errorText, fetchMe, type Organization, type User } from './api';
import { Dashboard } from './dashboard';
import { Login } from './login';
import { forgetToken, storedToken, storeToken, takeTokenFromFragment } from './session';
import './styles.css';

interface Session {
  token: string;
  me: User;
  organization: Organization;
}

// Read the fragment before anything renders, so the token leaves the
// address bar at once.
const initialToken = (() => {
  const fromFragment = takeTokenFromFragment();
  if (fromFragment) storeToken(fromFragment);
  return fromFragment ?? storedToken();
})();

function App() {
  const [session, setSession] = useState<Session | null>(null);
  const [checking, setChecking] = useState(initialToken !== null);
  const [message, setMessage] = useState<string | null>(null);

  const signOut = useCallback((why: string | null) => {
    forgetToken();
    configureApi(null, () => {});
    setSession(null);
    setMessage(why);
  }, []);

  const signIn = useCallback(
    (token: string, me: User, organization: Organization) => {
      storeToken(token);
      configureApi(token, (refusal) => signOut(`Your access token was refused: ${refusal} Paste a new one.`));
      setMessage(null);
      setSession({ token, me, organization });
    },
    [signOut],
  );

  useEffect(() => {
    if (!initialToken) return;
    fetchMe(initialToken)
      .then((data) => signIn(initialToken, data.me, data.organization))
      .catch((e) => {
        // Keep the token if the server was only unreachable; drop it if refused.
        if (e instanceof ApiError && e.code === 'UNAUTHENTICATED') {
          forgetToken();
          setMessage(`That access token did not work: ${errorText(e)}`);
        } else {
          setMessage(`Could not sign in: ${errorText(e)}`);
        }
      })
      .finally(() => setChecking(false));
  }, [signIn]);

  // A link with #token=… opened in a tab that already shows the page only
  // changes the fragment: sign in with it then too.
  useEffect(() => {
    const onHashChange = () => {
      const token = takeTokenFromFragment();
      if (!token) return;
      setChecking(true);
      fetchMe(token)
        .then((data) => signIn(token, data.me, data.organization))
        .catch((e) => setMessage(`That access token did not work: ${errorText(e)}`))
        .finally(() => setChecking(false));
    };
    window.addEventListener('hashchange', onHashChange);
    return () => window.removeEventListener('hashchange', onHashChange);
  }, [signIn]);

  if (checking) return <p className="loading">Signing in…</p>;
  if (!session) return <Login message={message} onSignedIn={signIn} />;
  return (
    <Dashboard
      token={session.token}
      me={session.me}
      organization={session.organization}
      onSignOut={() => signOut(null)}
      onRefused={() => signOut('The server closed the live connection: your access token is no longer valid. Paste a new one.')}
    />
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App />
  </StrictMode>,
);
