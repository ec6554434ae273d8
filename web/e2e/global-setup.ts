// Starts everything the browser tests need and tears it down after:
//   1. the BigQuery emulator ($OKR_PULSE_BQEMULATOR) on free ports, with a
//      dataset `crm` and a table `crm.leads` (one row, n = 120);
//   2. the okr-pulse server ($OKR_PULSE_BIN) on a free port in a fresh data
//      directory, pointed at the emulator, until /readyz answers 200;
//   3. an admin token for org `default`, minted with `okr-pulse token`.
// What the tests need is passed on in environment variables (see env.ts).
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mintToken } from './env';

function need(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set (see web/README.md: "Browser tests")`);
  return value;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts a process whose output is kept for the error message if it dies. */
function start(command: string, args: string[], env: NodeJS.ProcessEnv, name: string): { child: ChildProcess; log: () => string } {
  let output = '';
  const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-8000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  child.on('exit', (code, signal) => {
    if (process.env.E2E_DEBUG) console.log(`${name} exited (${code ?? signal})`);
  });
  return { child, log: () => output };
}

/** Polls until `check` returns true, or fails with the process log. */
async function waitFor(what: string, check: () => Promise<boolean>, proc: { child: ChildProcess; log: () => string }, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (proc.child.exitCode !== null) throw new Error(`${what}: the process exited (${proc.child.exitCode}):\n${proc.log()}`);
    try {
      if (await check()) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not ready after ${ms} ms:\n${proc.log()}`);
}

async function bigQuery(restUrl: string, path: string, body: unknown) {
  const response = await fetch(`${restUrl}/bigquery/v2/projects/demo-project/${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`emulator ${path}: HTTP ${response.status} ${await response.text()}`);
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export default async function globalSetup(): Promise<() => Promise<void>> {
  const bin = need('OKR_PULSE_BIN');
  const emulatorBin = need('OKR_PULSE_BQEMULATOR');
  const started: ChildProcess[] = [];
  const dataDir = mkdtempSync(join(tmpdir(), 'okr-pulse-e2e-'));

  const teardown = async () => {
    await Promise.all(started.reverse().map(stop));
    rmSync(dataDir, { recursive: true, force: true });
  };

  try {
    // 1. BigQuery emulator
    const restPort = await freePort();
    const grpcPort = await freePort();
    const restUrl = `http://127.0.0.1:${restPort}`;
    const emulator = start(
      emulatorBin,
      ['start', '--project', 'demo-project', '--rest-port', String(restPort), '--grpc-port', String(grpcPort)],
      process.env,
      'bqemulator',
    );
    started.push(emulator.child);
    await waitFor('bqemulator', async () => (await fetch(restUrl)).status > 0, emulator);
    await bigQuery(restUrl, 'datasets', { datasetReference: { projectId: 'demo-project', datasetId: 'crm' } });
    await bigQuery(restUrl, 'queries', { query: 'CREATE TABLE crm.leads AS SELECT 120 AS n', useLegacySql: false });

    // 2. okr-pulse
    const port = await freePort();
    const origin = `http://127.0.0.1:${port}`;
    const serverEnv = {
      ...process.env,
      LISTEN_ADDR: `127.0.0.1:${port}`,
      DATA_DIR: dataDir,
      BIGQUERY_EMULATOR_HOST: restUrl,
      GCE_METADATA_HOST: '127.0.0.1:9',
    };
    const server = start(bin, [], serverEnv, 'okr-pulse');
    started.push(server.child);
    await waitFor('okr-pulse', async () => (await fetch(`${origin}/readyz`)).status === 200, server);

    // 3. What the tests need.
    process.env.OKR_PULSE_ORIGIN = origin;
    process.env.OKR_PULSE_DATA_DIR = dataDir;
    process.env.OKR_PULSE_ADMIN_TOKEN = mintToken({ org: 'default', email: 'admin@example.com', role: 'admin' });
  } catch (error) {
    await teardown();
    throw error;
  }
  return teardown;
}
