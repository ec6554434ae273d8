// The offline GraphiQL page, served at `GET /graphql` to browsers.
//
// Everything (editor, fonts, docs explorer) is bundled; nothing is loaded
// from another host. Queries and mutations go over HTTP to /graphql on this
// origin, subscriptions over graphql-transport-ws to ws(s)://<host>/graphql
// with the headers editor's contents as the `connection_init` payload.
import { createGraphiQLFetcher } from '@graphiql/toolkit';
import { GraphiQL } from 'graphiql';
import 'graphiql/style.css';
import './graphiql.css';
import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { TOKEN_KEY } from './session';

const httpUrl = new URL('/graphql', window.location.href).toString();
const wsUrl = httpUrl.replace(/^http/, 'ws');

const fetcher = createGraphiQLFetcher({
  url: httpUrl,
  // A new graphql-ws client per subscription whose connectionParams are the
  // headers in the editor, so `{"Authorization": "Bearer …"}` authenticates
  // the socket exactly as it does HTTP requests.
  subscriptionUrl: wsUrl,
});

const token = sessionStorage.getItem(TOKEN_KEY);
const headers = token ? JSON.stringify({ Authorization: `Bearer ${token}` }, null, 2) : undefined;

const defaultQuery = `# okr-pulse API. Requests need a
# bearer token in Headers below:
# {"Authorization": "Bearer …"}
# (set for you when you are signed
# in to the dashboard).

query Tree {
  me { name role }
  objectives(rootsOnly: true) {
    title
    progress
    status
    keyResults { title progress status }
  }
}
`;

createRoot(document.getElementById('graphiql')!).render(
  <StrictMode>
    <GraphiQL
      fetcher={fetcher}
      defaultQuery={defaultQuery}
      headers={headers}
      defaultEditorToolsVisibility={headers ? 'headers' : true}
      shouldPersistHeaders={false}
    />
  </StrictMode>,
);
