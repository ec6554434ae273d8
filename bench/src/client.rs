//! Talking to the server as a client does: GraphQL over HTTP (with many
//! aliased mutations per document for seeding), raw keep-alive HTTP/1.1
//! connections for load, and graphql-transport-ws WebSockets.

use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _, TryStreamExt as _};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{
    Message, client::IntoClientRequest as _, protocol::WebSocketConfig,
};

/// Most aliases the server accepts in one document (`GRAPHQL_MAX_ALIASES`).
const ALIASES_PER_DOCUMENT: usize = 100;
/// Most operations in one batched HTTP request.
const DOCUMENTS_PER_REQUEST: usize = 10;

/// A GraphQL client over HTTP, with or without a bearer token.
#[derive(Clone)]
pub struct Gql {
    http: reqwest::Client,
    url: String,
    authorization: Option<String>,
}

impl Gql {
    /// A client of `base` (`http://127.0.0.1:<port>`).
    pub fn new(base: &str, token: Option<&str>) -> Gql {
        Gql {
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(256)
                .build()
                .unwrap_or_default(),
            url: format!("{base}/graphql"),
            authorization: token.map(|t| format!("Bearer {t}")),
        }
    }

    /// The `data` of one operation; any GraphQL error fails with its message.
    pub async fn data(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body = json!({ "query": query, "variables": variables }).to_string();
        let bytes = self.post(Bytes::from(body)).await?;
        let response: Value =
            serde_json::from_slice(&bytes).context("the answer to /graphql is not JSON")?;
        data_of(response, query)
    }

    /// The `data` of each operation of one batched request, in order.
    pub async fn batch(&self, queries: &[String]) -> anyhow::Result<Vec<Value>> {
        let body: Vec<Value> = queries.iter().map(|q| json!({ "query": q })).collect();
        let bytes = self
            .post(Bytes::from(Value::from(body).to_string()))
            .await?;
        let responses: Vec<Value> =
            serde_json::from_slice(&bytes).context("the answer to a batch is not a JSON list")?;
        if responses.len() != queries.len() {
            bail!(
                "a batch of {} operations got {} answers",
                queries.len(),
                responses.len()
            );
        }
        responses
            .into_iter()
            .zip(queries)
            .map(|(response, query)| data_of(response, query))
            .collect()
    }

    /// POSTs a JSON body to /graphql and returns the answer's body; any
    /// status but 200 fails with the body.
    pub async fn post(&self, body: Bytes) -> anyhow::Result<Bytes> {
        let mut request = self
            .http
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body);
        if let Some(authorization) = &self.authorization {
            request = request.header("authorization", authorization);
        }
        let response = request.send().await.context("POST /graphql")?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .context("reading the answer of /graphql")?;
        if !status.is_success() {
            bail!(
                "POST /graphql answered {status}: {}",
                String::from_utf8_lossy(&bytes[..bytes.len().min(2000)])
            );
        }
        Ok(bytes)
    }

    /// Runs many mutation fields (each like `checkIn(input: {…}) { id }`)
    /// with as few requests as the server's limits allow: up to 100 aliases
    /// per document, 10 documents per batched request, `in_flight` requests
    /// at once. Returns each field's result in the order given.
    pub async fn mutate_many(
        &self,
        fields: &[String],
        in_flight: usize,
    ) -> anyhow::Result<Vec<Value>> {
        let documents: Vec<String> = fields
            .chunks(ALIASES_PER_DOCUMENT)
            .map(|chunk| {
                let aliased: Vec<String> = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, field)| format!("m{i}: {field}"))
                    .collect();
                format!("mutation {{ {} }}", aliased.join(" "))
            })
            .collect();
        let answers: Vec<Vec<Value>> = futures::stream::iter(
            documents
                .chunks(DOCUMENTS_PER_REQUEST)
                .map(|batch| self.batch(batch)),
        )
        .buffered(in_flight.max(1))
        .try_collect()
        .await?;
        let mut results = Vec::with_capacity(fields.len());
        for (document, chunk) in answers
            .into_iter()
            .flatten()
            .zip(fields.chunks(ALIASES_PER_DOCUMENT))
        {
            for i in 0..chunk.len() {
                results.push(document[format!("m{i}")].clone());
            }
        }
        Ok(results)
    }
}

/// The `data` of a GraphQL response, or an error quoting its `errors`.
pub fn data_of(response: Value, query: &str) -> anyhow::Result<Value> {
    if let Some(errors) = response.get("errors").filter(|e| !e.is_null()) {
        let shown: String = query.chars().take(200).collect();
        bail!("GraphQL errors for `{shown}`: {errors}");
    }
    match response.get("data") {
        Some(data) if !data.is_null() => Ok(data.clone()),
        _ => bail!("a GraphQL answer without data: {response}"),
    }
}

/// A string as a GraphQL string literal (JSON's escapes are GraphQL's).
pub fn literal(text: &str) -> String {
    Value::from(text).to_string()
}

/// One keep-alive HTTP/1.1 connection, for load where a connection pool
/// would only add noise.
pub struct Http1 {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Http1 {
    /// Connects to `address` (`127.0.0.1:<port>`).
    pub async fn connect(address: &str) -> anyhow::Result<Http1> {
        let stream = tokio::net::TcpStream::connect(address)
            .await
            .with_context(|| format!("connecting to {address}"))?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .context("HTTP/1.1 handshake")?;
        tokio::spawn(async move {
            // Ends when the sender is dropped or the server closes.
            let _ = connection.await;
        });
        Ok(Http1 { sender })
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(
        &mut self,
        request: hyper::Request<Full<Bytes>>,
    ) -> anyhow::Result<(hyper::StatusCode, Bytes)> {
        self.sender.ready().await.context("the connection closed")?;
        let response = self
            .sender
            .send_request(request)
            .await
            .context("sending a request")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("reading an answer")?
            .to_bytes();
        Ok((status, body))
    }
}

/// A WebSocket on the server's /graphql.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

/// Opens a graphql-transport-ws connection, sends `connection_init` with
/// the token and waits for `connection_ack`. Small buffers keep thousands
/// of these cheap in this process.
pub async fn ws_connect(address: &str, token: &str) -> anyhow::Result<Ws> {
    let mut request = format!("ws://{address}/graphql")
        .into_client_request()
        .context("a WebSocket request")?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().expect("a header value"),
    );
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .with_context(|| format!("connecting to {address}"))?;
    stream.set_nodelay(true)?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let (mut ws, response) =
        tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .context("the WebSocket upgrade")?;
    let protocol = response
        .headers()
        .get("sec-websocket-protocol")
        .and_then(|v| v.to_str().ok());
    if protocol != Some("graphql-transport-ws") {
        bail!("the server announced the subprotocol {protocol:?}, not graphql-transport-ws");
    }
    let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } });
    ws.send(Message::Text(init.to_string().into()))
        .await
        .context("sending connection_init")?;
    let ack = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(message) = ws.next().await {
            match message.context("reading the answer to connection_init")? {
                Message::Text(text) => {
                    let value: Value = serde_json::from_str(&text)?;
                    match value["type"].as_str() {
                        Some("connection_ack") => return Ok(()),
                        Some("ping") => {
                            ws.send(Message::Text(r#"{"type":"pong"}"#.into())).await?;
                        }
                        _ => bail!("expected connection_ack, got {value}"),
                    }
                }
                Message::Close(frame) => bail!("closed instead of connection_ack: {frame:?}"),
                _ => {}
            }
        }
        bail!("the connection ended before connection_ack")
    })
    .await;
    match ack {
        Ok(result) => result.map(|()| ws),
        Err(_) => bail!("no connection_ack within 30 s"),
    }
}
