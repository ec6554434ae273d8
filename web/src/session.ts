// Where the dashboard keeps the access token for this browser tab, shared
// with the GraphiQL page (which pre-fills its headers editor from it).
export const TOKEN_KEY = 'okr-pulse-token';

/** The token kept for this tab, if any. */
export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

/** Keeps the token for this tab only (closing the tab forgets it). */
export function storeToken(token: string): void {
  sessionStorage.setItem(TOKEN_KEY, token);
}

/** Forgets the token (sign out, or the server refused it). */
export function forgetToken(): void {
  sessionStorage.removeItem(TOKEN_KEY);
}

/**
 * Reads a token from the URL fragment (`/#token=…`, as printed by the server
 * on first run), removes the fragment from the address bar so it does not
 * linger in history or screenshots, and returns it.
 */
export function takeTokenFromFragment(): string | null {
  const hash = window.location.hash.replace(/^#/, '');
  if (!hash) return null;
  const params = new URLSearchParams(hash);
  const token = params.get('token');
  if (!token) return null;
  params.delete('token');
  const rest = params.toString();
  const url = window.location.pathname + window.location.search + (rest ? `#${rest}` : '');
  window.history.replaceState(window.history.state, '', url);
  return token.trim();
}
