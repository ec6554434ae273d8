// Byte counts are the Int64 scalar: BigQuery's default 10 GiB cap must pass
// graphql-js validation against the server's own schema and come back as
// the same number (GraphQL's Int, 32-bit, would refuse it).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildClientSchema, getIntrospectionQuery, parse, validate } from 'graphql';
import { cleanups, graphql, startServer } from './harness.mjs';

const TEN_GIB = 10 * 1024 * 1024 * 1024;

test('10 GiB of maximumBytesBilled validates with graphql-js and round-trips', { timeout: 30_000 }, async (t) => {
  const defer = cleanups(t);
  const server = await startServer();
  defer(() => server.stop());
  const token = server.token();
  const schema = buildClientSchema(await graphql(server, token, getIntrospectionQuery()));
  const mutation = `mutation($b: Int64) {
    createConnection(input: { name: "Warehouse", projectId: "acme-analytics", maximumBytesBilled: $b }) { maximumBytesBilled }
  }`;
  assert.deepEqual(validate(schema, parse(mutation)), []);
  const literal = `mutation { updateConnection(id: "x", input: { maximumBytesBilled: ${TEN_GIB} }) { maximumBytesBilled } }`;
  assert.deepEqual(validate(schema, parse(literal)), [], 'a literal above 2^31 is valid for Int64');
  const data = await graphql(server, token, mutation, { b: TEN_GIB });
  assert.equal(data.createConnection.maximumBytesBilled, TEN_GIB);
});
