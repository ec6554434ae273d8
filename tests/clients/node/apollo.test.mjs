// Apollo Client 4 against okr-pulse: subscriptions through GraphQLWsLink (a
// graphql-ws client underneath), queries through HttpLink.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ApolloClient, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { createClient } from 'graphql-ws';
import {
  PROGRESS,
  checkIn,
  cleanups,
  deferred,
  makeKeyResult,
  recordingWebSocket,
  startServer,
  within,
  wsQuery,
} from './harness.mjs';

test('Apollo Client receives a check-in event through a GraphQLWsLink subscription', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token();
  const { keyResultId } = await makeKeyResult(server, token);

  const wire = recordingWebSocket();
  const wsClient = createClient({ url: server.wsUrl, webSocketImpl: wire.WebSocketImpl, connectionParams: { Authorization: `Bearer ${token}` } });
  defer(() => wsClient.dispose().catch(() => {}));
  const apollo = new ApolloClient({ link: new GraphQLWsLink(wsClient), cache: new InMemoryCache() });
  defer(() => apollo.stop());

  const event = deferred();
  const subscription = apollo.subscribe({ query: gql(PROGRESS), variables: { k: keyResultId } }).subscribe({
    next: (result) => (result.error ? event.reject(result.error) : event.resolve(result.data)),
    error: (error) => event.reject(error),
  });
  defer(() => subscription.unsubscribe());

  await within(5000, 'Apollo sending the subscription', wire.until((sent) => sent.some((m) => m.type === 'subscribe')));
  // Once the server has answered a later operation on the same socket, it has the subscription.
  await within(5000, 'the answer to a query after the subscription', wsQuery(wsClient, '{ me { id } }'));
  await checkIn(server, token, keyResultId, 42);
  const data = await within(5000, 'the progressChanged event in Apollo', event.promise);
  assert.equal(data.progressChanged.keyResultId, keyResultId);
  assert.equal(data.progressChanged.value, 42);
  assert.equal(data.progressChanged.source, 'CHECK_IN');
});

test('Apollo Client runs a query over HttpLink', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token({ email: 'ada@example.com' });
  const { objectiveId } = await makeKeyResult(server, token);

  const apollo = new ApolloClient({
    link: new HttpLink({ uri: `${server.origin}/graphql`, headers: { authorization: `Bearer ${token}` } }),
    cache: new InMemoryCache(),
  });
  defer(() => apollo.stop());
  const { data, error } = await within(
    5000,
    'the query’s answer',
    apollo.query({
      query: gql('query($id: ID!) { me { id email role } objective(id: $id) { id title keyResults { id title progress } } }'),
      variables: { id: objectiveId },
    }),
  );
  assert.equal(error, undefined);
  assert.equal(data.me.email, 'ada@example.com');
  assert.equal(data.me.role, 'ADMIN');
  assert.equal(data.objective.title, 'Live dashboards');
  assert.equal(data.objective.keyResults.length, 1);
});
