// What every client test needs: an okr-pulse server of its own (the binary in
// $OKR_PULSE_BIN, on a free port, in a fresh data folder), tokens minted with
// `okr-pulse token`, GraphQL over HTTP to make data, and deadlines.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

/** 40 characters; the server needs at least 32. */
export const SECRET = 'okr-pulse-client-tests-secret-0123456789';

export const PROGRESS = 'subscription($k: ID) { progressChanged(keyResultId: $k) { keyResultId value source } }';

export function bin() {
  const value = process.env.OKR_PULSE_BIN;
  if (!value) throw new Error('OKR_PULSE_BIN must name the okr-pulse binary (run the tests with tests/clients/run.sh)');
  return value;
}

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** The environment of the server and of `okr-pulse token`: nothing inherited that could point it elsewhere. */
function serverEnv(port, dataDir, extra = {}) {
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    DATA_DIR: dataDir,
    AUTH_JWT_SECRET: SECRET,
    LISTEN_ADDR: `127.0.0.1:${port}`,
    BIGQUERY_EMULATOR_HOST: '127.0.0.1:9',
    GCE_METADATA_HOST: '127.0.0.1:9',
    SCHEDULER_ENABLED: 'false',
    ...extra,
  };
  if (process.env.RUST_LOG) env.RUST_LOG = process.env.RUST_LOG;
  return env;
}

/** Resolves, or rejects after `ms` with a message saying what did not happen. */
export function within(ms, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A promise with its resolve/reject outside. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Starts okr-pulse and waits for GET /healthz = 200. `port` and `dataDir`
 * may be given to start it again where an earlier one ran.
 */
export async function startServer({ port, dataDir, env = {} } = {}) {
  port ??= await freePort();
  const ownDataDir = !dataDir;
  dataDir ??= mkdtempSync(join(tmpdir(), 'okr-pulse-clients-'));
  const child = spawn(bin(), [], { env: serverEnv(port, dataDir, env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const keep = (chunk) => {
    output = (output + chunk.toString()).slice(-20000);
    if (process.env.CLIENT_TESTS_DEBUG) process.stderr.write(`[okr-pulse :${port}] ${chunk}`);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })));
  const origin = `http://127.0.0.1:${port}`;
  const server = {
    port,
    dataDir,
    origin,
    wsUrl: `ws://127.0.0.1:${port}/graphql`,
    child,
    pid: child.pid,
    exited,
    log: () => output,
    /** Sends a signal; resolves with how the process ended. */
    async kill(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
    /** Stops the process (SIGTERM, SIGKILL after 5 s) and removes the data folder it made. */
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
      if (ownDataDir) rmSync(dataDir, { recursive: true, force: true });
    },
    /** Mints a token with `okr-pulse token`, signed with the server's secret unless another is given. */
    token({ org = 'acme', email = 'admin@example.com', role = 'admin', ttl, secret = SECRET } = {}) {
      const args = ['token', '--org', org, '--email', email, '--role', role, ...(ttl ? ['--ttl', ttl] : [])];
      const env = serverEnv(port, dataDir, { AUTH_JWT_SECRET: secret });
      return execFileSync(bin(), args, { env, encoding: 'utf8', timeout: 10_000 }).trim();
    },
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ended = child.exitCode !== null || child.signalCode !== null;
    if (ended) throw new Error(`okr-pulse exited before it was up (${child.exitCode ?? child.signalCode}):\n${output}`);
    try {
      const response = await fetch(`${origin}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (response.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`okr-pulse did not answer /healthz within 20 s:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return server;
}

/** POST /graphql; fails on HTTP or GraphQL errors. */
export async function graphql(server, token, query, variables = {}) {
  const response = await fetch(`${server.origin}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = await response.json();
  if (!response.ok || body.errors) throw new Error(`${query.slice(0, 60)}…: HTTP ${response.status} ${JSON.stringify(body)}`);
  return body.data;
}

/** An objective with one METRIC key result (0 → 100); returns their ids. */
export async function makeKeyResult(server, token) {
  const year = new Date().getUTCFullYear();
  const { createObjective } = await graphql(
    server,
    token,
    'mutation($i: CreateObjectiveInput!) { createObjective(input: $i) { id } }',
    { i: { title: 'Live dashboards', periodStart: `${year}-01-01`, periodEnd: `${year}-12-31` } },
  );
  const { createKeyResult } = await graphql(
    server,
    token,
    'mutation($i: CreateKeyResultInput!) { createKeyResult(input: $i) { id } }',
    { i: { objectiveId: createObjective.id, title: 'Subscribers', kind: 'METRIC', startValue: 0, targetValue: 100 } },
  );
  return { objectiveId: createObjective.id, keyResultId: createKeyResult.id };
}

export async function checkIn(server, token, keyResultId, value) {
  await graphql(server, token, 'mutation($i: CheckInInput!) { checkIn(input: $i) { id } }', { i: { keyResultId, value } });
}

/**
 * A WebSocket class for graphql-ws that keeps every message the client sent
 * and every socket it opened, so a test can wait on what went over the wire.
 */
export function recordingWebSocket({ closeTimeout } = {}) {
  const sent = [];
  const sockets = [];
  const waiters = [];
  class RecordingWebSocket extends WebSocket {
    constructor(url, protocols, options = {}) {
      // closeTimeout: how long ws waits for the answer to its close frame before it drops the TCP connection (30 s by default).
      super(url, protocols, closeTimeout ? { closeTimeout, ...options } : options);
      sockets.push(this);
    }
    send(data, ...rest) {
      sent.push(JSON.parse(String(data)));
      for (const w of [...waiters]) w();
      return super.send(data, ...rest);
    }
  }
  return {
    WebSocketImpl: RecordingWebSocket,
    sent,
    sockets,
    /** Resolves once `predicate(sent)` holds. */
    until(predicate) {
      return new Promise((resolve) => {
        const check = () => {
          if (predicate(sent)) {
            waiters.splice(waiters.indexOf(check), 1);
            resolve();
          }
        };
        waiters.push(check);
        check();
      });
    },
  };
}

/** Runs a query or mutation through a graphql-ws client (over its socket); resolves with the result. */
export function wsQuery(client, query, variables = {}) {
  return new Promise((resolve, reject) => {
    let result;
    client.subscribe(
      { query, variables },
      {
        next: (value) => (result = value),
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => resolve(result),
      },
    );
  });
}

/** Describes what a graphql-ws sink got as an error (an Error, a CloseEvent, or GraphQL errors). */
export function explain(error) {
  if (error instanceof Error) return error.message;
  if (error && typeof error === 'object' && 'code' in error && 'reason' in error) return `close ${error.code} ${error.reason}`;
  return JSON.stringify(error);
}

/** Cleanups run last-in first-out when the test ends, whatever its outcome. */
export function cleanups(t) {
  const stack = [];
  t.after(async () => {
    while (stack.length) {
      try {
        await stack.pop()();
      } catch (error) {
        console.error('cleanup failed:', error);
      }
    }
  });
  return (fn) => stack.push(fn);
}
