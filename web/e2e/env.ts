// What global-setup.ts started, as the tests see it, and token minting.
import { execFileSync } from 'node:child_process';

/** The server's origin, e.g. http://127.0.0.1:40123 (set by global-setup). */
export function origin(): string {
  const value = process.env.OKR_PULSE_ORIGIN;
  if (!value) throw new Error('OKR_PULSE_ORIGIN is not set: run the tests with `npm test` (global-setup starts the server)');
  return value;
}

/**
 * Mints a token with `okr-pulse token` in the server's data directory (same
 * secret). It prints the JWT on stdout; anything else there is an error.
 */
export function mintToken({ org, email, role, name }: { org: string; email: string; role: 'admin' | 'member'; name?: string }): string {
  const args = ['token', '--org', org, '--email', email, '--role', role, ...(name ? ['--name', name] : [])];
  const output = execFileSync(process.env.OKR_PULSE_BIN!, args, {
    env: { ...process.env, DATA_DIR: process.env.OKR_PULSE_DATA_DIR ?? process.env.DATA_DIR },
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const jwt = output.match(/eyJ[\w-]*\.[\w-]+\.[\w-]+/);
  if (!jwt) throw new Error(`okr-pulse token printed no JWT: ${JSON.stringify(output)}`);
  return jwt[0];
}
