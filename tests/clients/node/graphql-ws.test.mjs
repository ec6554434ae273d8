// The reference graphql-ws client (v6, over `ws`) against okr-pulse: DESIGN.md
// §10, issue 9. Each test starts its own server; every wait has a deadline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import {
  PROGRESS,
  checkIn,
  cleanups,
  deferred,
  explain,
  makeKeyResult,
  recordingWebSocket,
  startServer,
  within,
  wsQuery,
} from './harness.mjs';

const bearer = (token) => ({ Authorization: `Bearer ${token}` });
const quiet = () => {};

/** A sink that collects events and lets a test wait for the n-th one. */
function collector() {
  const events = [];
  const waiting = [];
  let failure;
  const settle = () => {
    for (const w of [...waiting]) {
      if (failure) w.reject(failure);
      else if (events.length >= w.n) w.resolve(events.slice());
      else continue;
      waiting.splice(waiting.indexOf(w), 1);
    }
  };
  return {
    events,
    sink: {
      next: (value) => {
        events.push(value);
        settle();
      },
      error: (error) => {
        failure = new Error(`the subscription failed: ${explain(error)}`);
        settle();
      },
      complete: () => {
        failure ??= new Error(`the subscription completed after ${events.length} events`);
        settle();
      },
    },
    /** Resolves with the events once there are at least n. */
    count(n) {
      const w = { n, ...deferred() };
      waiting.push(w);
      settle();
      return w.promise;
    },
  };
}

const progressValues = (events) => events.map((e) => e.data?.progressChanged?.value);

test('a burst of 100 subscribes and 100 completes leaves the socket answering a query within 5 s', { timeout: 60_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token();
  const { keyResultId } = await makeKeyResult(server, token);

  const wire = recordingWebSocket();
  let acks = 0;
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: wire.WebSocketImpl,
    connectionParams: bearer(token),
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: quiet,
    on: { connected: () => acks++ },
  });
  defer(() => client.dispose().catch(quiet));

  const failures = [];
  const disposers = Array.from({ length: 100 }, () =>
    client.subscribe({ query: PROGRESS, variables: { k: keyResultId } }, { next: quiet, error: (e) => failures.push(explain(e)), complete: quiet }),
  );
  const subscribes = (sent) => sent.filter((m) => m.type === 'subscribe').length;
  await within(10_000, 'graphql-ws sending the 100 subscribe messages', wire.until((sent) => subscribes(sent) === 100));
  for (const dispose of disposers) dispose();
  assert.equal(wire.sent.filter((m) => m.type === 'complete').length, 100, 'graphql-ws sent 100 complete messages');

  const started = performance.now();
  const result = await within(5000, 'the answer to `{ me { id } }` sent right after the burst', wsQuery(client, '{ me { id } }'));
  t.diagnostic(`query answered ${(performance.now() - started).toFixed(0)} ms after the burst`);
  assert.ok(result?.data?.me?.id, `no me.id in ${JSON.stringify(result)}`);
  assert.deepEqual(failures, [], 'no subscription of the burst failed');
  assert.equal(wire.sockets.length, 1, 'everything went over one socket');
  assert.equal(acks, 1);
});

test('connection slots are released after bursts, so a server limited to 3 WebSockets still acknowledges new clients', { timeout: 60_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer({ env: { WS_MAX_CONNECTIONS: '3' } });
  defer(() => server.stop());
  const token = server.token();
  const { keyResultId } = await makeKeyResult(server, token);

  // Three clients, each a burst then gone (closed by the client).
  for (let round = 1; round <= 3; round++) {
    const wire = recordingWebSocket({ closeTimeout: 3000 });
    const closed = deferred();
    const client = createClient({
      url: server.wsUrl,
      webSocketImpl: wire.WebSocketImpl,
      connectionParams: bearer(token),
      lazy: false,
      retryAttempts: 0,
      onNonLazyError: quiet,
      on: { closed: (event) => closed.resolve(event) },
    });
    defer(() => client.dispose().catch(quiet));
    const disposers = Array.from({ length: 100 }, () =>
      client.subscribe({ query: PROGRESS, variables: { k: keyResultId } }, { next: quiet, error: quiet, complete: quiet }),
    );
    await within(10_000, `round ${round}: the 100 subscribe messages sent`, wire.until((sent) => sent.filter((m) => m.type === 'subscribe').length === 100));
    for (const dispose of disposers) dispose();
    await client.dispose();
    // An unanswered close frame makes ws drop the connection after 3 s; a socket that ends any way at all is enough here.
    await within(10_000, `round ${round}: the socket closing`, closed.promise);
  }

  // Three more clients at once: every slot must be free again. A slot freed
  // moments after the close is fine, so each client may retry for 5 s.
  const clients = [];
  defer(() => Promise.all(clients.map((c) => c.dispose().catch(quiet))));
  const acks = [];
  for (let i = 0; i < 3; i++) {
    const acked = deferred();
    clients.push(
      createClient({
        url: server.wsUrl,
        webSocketImpl: WebSocket,
        connectionParams: bearer(token),
        lazy: false,
        retryAttempts: 50,
        retryWait: () => new Promise((r) => setTimeout(r, 100)),
        shouldRetry: () => true, // a refused upgrade (503) is an error event, which graphql-ws does not retry by default
        onNonLazyError: quiet,
        on: { connected: () => acked.resolve() },
      }),
    );
    acks.push(within(5000, `new client ${i + 1} of 3 acknowledged after the bursts`, acked.promise));
  }
  await Promise.all(acks);
});

test('a client-initiated close is answered: graphql-ws sees close code 1000, not 1006', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token();

  const connected = deferred();
  const closed = deferred();
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: bearer(token),
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: quiet,
    on: { connected: () => connected.resolve(), closed: (event) => closed.resolve(event) },
  });
  defer(() => client.dispose().catch(quiet));
  await within(5000, 'connection_ack', connected.promise);

  const started = performance.now();
  await client.dispose();
  const event = await within(5000, 'the socket closing after client.dispose()', closed.promise);
  t.diagnostic(`closed ${(performance.now() - started).toFixed(0)} ms after dispose(), code ${event.code} "${event.reason}"`);
  assert.equal(event.code, 1000, `closed with ${event.code} "${event.reason}" (1006 = the server never answered the close frame)`);
});

test('a lazy client subscribing right after a finished query reconnects at once and receives every check-in', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token();
  const { keyResultId } = await makeKeyResult(server, token);

  // graphql-ws's defaults: lazy, closes the socket (1000) as soon as no operation is left.
  const connects = [];
  const closes = [];
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: bearer(token),
    on: { connecting: (isRetry) => connects.push(isRetry ? 'retry' : 'connect'), closed: (event) => closes.push(event.code) },
  });
  defer(() => client.dispose().catch(quiet));
  await within(5000, 'a first query', wsQuery(client, '{ me { id } }'));

  const events = collector();
  const started = performance.now();
  client.subscribe({ query: PROGRESS, variables: { k: keyResultId } }, events.sink);
  // Once the server has answered a later operation, it has the subscription.
  await within(10_000, 'the answer to a query sent after the subscription', wsQuery(client, '{ me { id } }'));
  t.diagnostic(`subscribed ${(performance.now() - started).toFixed(0)} ms after the first query; connections: ${connects.join(', ')}; closes: ${closes.join(', ')}`);
  // When the first socket's close is answered, the client opens the next one
  // at once; when it is not (1006), graphql-ws counts a retry and backs off 1.3–4 s.
  assert.deepEqual([...closes], [1000], 'the first socket closed with 1000');
  assert.deepEqual([...connects], ['connect', 'connect'], 'the second connection was not a retry after a back-off');
  for (const value of [10, 20, 30]) await checkIn(server, token, keyResultId, value);
  const got = await within(5000, 'three progressChanged events', events.count(3));
  assert.deepEqual(progressValues(got), [10, 20, 30]);
});

test('after the server is killed and started again on the same port, a retrying client resubscribes and receives the next check-in', { timeout: 60_000 }, async (t) => {
  const defer = cleanups(t);
  const first = await startServer();
  defer(() => first.stop());
  const token = first.token();
  const { keyResultId } = await makeKeyResult(first, token);

  const wire = recordingWebSocket();
  let acks = 0;
  const reconnected = deferred();
  const client = createClient({
    url: first.wsUrl,
    webSocketImpl: wire.WebSocketImpl,
    connectionParams: bearer(token),
    lazy: false,
    retryAttempts: Infinity,
    shouldRetry: () => true,
    onNonLazyError: quiet,
    on: {
      connected: () => {
        acks++;
        if (acks === 2) reconnected.resolve();
      },
    },
  });
  defer(() => client.dispose().catch(quiet));

  const events = collector();
  client.subscribe({ query: PROGRESS, variables: { k: keyResultId } }, events.sink);
  await within(5000, 'the answer to a query after the subscription', wsQuery(client, '{ me { id } }'));
  await checkIn(first, token, keyResultId, 10);
  assert.deepEqual(progressValues(await within(5000, 'the event of the first check-in', events.count(1))), [10]);

  const ended = await first.kill('SIGKILL');
  t.diagnostic(`first server ended (${ended.signal ?? ended.code}); starting it again on port ${first.port}`);
  const second = await startServer({ port: first.port, dataDir: first.dataDir });
  defer(() => second.stop());

  // graphql-ws waits 1.3–4 s (its default back-off) before the first retry.
  await within(20_000, 'graphql-ws reconnecting to the restarted server', reconnected.promise);
  const resubscribed = (sent) => sent.filter((m) => m.type === 'subscribe' && m.payload.query === PROGRESS).length >= 2;
  await within(5000, 'graphql-ws resending the subscription', wire.until(resubscribed));
  await within(5000, 'the answer to a query after the resubscription', wsQuery(client, '{ me { id } }'));
  await checkIn(second, token, keyResultId, 20);
  const got = await within(5000, 'the event of the check-in after the restart', events.count(2));
  assert.deepEqual(progressValues(got), [10, 20]);
});

test('SIGTERM with a subscribed client connected: the server exits with code 0 well under a second later and the client sees 1001', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token();
  const { keyResultId } = await makeKeyResult(server, token);

  const closed = deferred();
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: bearer(token),
    lazy: false,
    retryAttempts: 0,
    onNonLazyError: quiet,
    on: { closed: (event) => closed.resolve(event) },
  });
  defer(() => client.dispose().catch(quiet));
  client.subscribe({ query: PROGRESS, variables: { k: keyResultId } }, { next: quiet, error: quiet, complete: quiet });
  await within(5000, 'the answer to a query after the subscription', wsQuery(client, '{ me { id } }'));

  const started = performance.now();
  server.child.kill('SIGTERM');
  const ended = await within(10_000, 'okr-pulse exiting after SIGTERM', server.exited);
  const ms = ended.at - started;
  t.diagnostic(`okr-pulse exited ${ms.toFixed(0)} ms after SIGTERM (code ${ended.code}, signal ${ended.signal})`);
  const event = await within(5000, 'the client seeing its socket close', closed.promise);
  t.diagnostic(`client saw close ${event.code} "${event.reason}"`);
  assert.equal(ended.code, 0, `exit code ${ended.code}, signal ${ended.signal}:\n${server.log().slice(-2000)}`);
  assert.ok(ms < 3000, `exited ${ms.toFixed(0)} ms after SIGTERM (want well under 1 s; 3 s is the limit here):\n${server.log().slice(-2000)}`);
  assert.equal(event.code, 1001, `closed with ${event.code} "${event.reason}"`);
});

test('a query on a long-lived socket sees a check-in made after the socket was opened', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token();
  const { keyResultId } = await makeKeyResult(server, token);

  const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, connectionParams: bearer(token), lazy: false, retryAttempts: 0, onNonLazyError: quiet });
  defer(() => client.dispose().catch(quiet));
  const query = 'query($id: ID!) { keyResult(id: $id) { currentValue } }';
  const value = async () => (await within(5000, 'a query over the socket', wsQuery(client, query, { id: keyResultId })))?.data?.keyResult?.currentValue;
  await checkIn(server, token, keyResultId, 10);
  assert.equal(await value(), 10);
  await checkIn(server, token, keyResultId, 20);
  assert.equal(await value(), 20, 'the second query on the socket saw the value before the second check-in');
});

test('a subscription that fails validation gets the error callback with GraphQL errors, not next, and the socket stays usable', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token();

  const client = createClient({ url: server.wsUrl, webSocketImpl: WebSocket, connectionParams: bearer(token), lazy: false, retryAttempts: 0, onNonLazyError: quiet });
  defer(() => client.dispose().catch(quiet));
  const nexts = [];
  const outcome = deferred();
  client.subscribe(
    { query: 'subscription { progressChanged { noSuchField } }' },
    {
      next: (value) => nexts.push(value),
      error: (error) => outcome.resolve(error),
      complete: () => outcome.reject(new Error(`completed without an error; next got ${JSON.stringify(nexts)}`)),
    },
  );
  const error = await within(5000, 'the subscription’s error callback', outcome.promise);
  assert.deepEqual(nexts, [], 'next was called');
  assert.ok(Array.isArray(error), `the error callback got ${explain(error)}, not GraphQL errors`);
  assert.match(error[0].message, /noSuchField/);
  assert.equal(error[0].extensions?.code, 'GRAPHQL_VALIDATION_FAILED', `error: ${JSON.stringify(error)}`);
  const result = await within(5000, 'a query on the same socket afterwards', wsQuery(client, '{ me { id } }'));
  assert.ok(result?.data?.me?.id);
});

test('a bad token closes with 4403 and graphql-ws gives up after its retryAttempts instead of retrying forever', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  // A well-formed token signed with another secret.
  const token = server.token({ secret: 'not-the-servers-secret-0123456789-abcdef' });

  const closes = [];
  let attempts = 0;
  let acks = 0;
  const client = createClient({
    url: server.wsUrl,
    webSocketImpl: WebSocket,
    connectionParams: bearer(token),
    retryAttempts: 2,
    retryWait: () => Promise.resolve(),
    on: { connecting: () => attempts++, connected: () => acks++, closed: (event) => closes.push(event.code) },
  });
  defer(() => client.dispose().catch(quiet));
  const outcome = deferred();
  client.subscribe(
    { query: PROGRESS },
    { next: quiet, error: (error) => outcome.resolve(error), complete: () => outcome.reject(new Error('completed instead of failing')) },
  );
  const error = await within(10_000, 'the subscription failing', outcome.promise);
  t.diagnostic(`closes: ${closes.join(', ')}; attempts: ${attempts}`);
  assert.equal(error?.code, 4403, `failed with ${explain(error)}`);
  assert.deepEqual(closes, [4403, 4403, 4403]);
  assert.equal(attempts, 3, 'one connection and two retries');
  assert.equal(acks, 0, 'a bad token was acknowledged');
});
