//! A GraphQL-over-WebSocket client written against the protocols.

use serde_json::{Value, json};

/// A GraphQL-over-WebSocket client, speaking either protocol by hand as the
/// reference clients do.
pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    legacy: bool,
    /// Messages read while waiting for another subscription's.
    pending: std::collections::VecDeque<Value>,
}

/// How a WebSocket ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum WsEnd {
    Closed(u16, String),
    Dropped,
}

impl WsClient {
    /// Opens `/graphql` with `graphql-transport-ws` (or legacy `graphql-ws`).
    pub async fn connect(address: &str, legacy: bool) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/graphql", address.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        let protocol = if legacy {
            "graphql-ws"
        } else {
            "graphql-transport-ws"
        };
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("open a WebSocket");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            protocol
        );
        WsClient {
            stream,
            legacy,
            pending: Default::default(),
        }
    }

    /// Opens `/graphql` offering `protocols` (as a client writes the header,
    /// e.g. `graphql-ws, graphql-transport-ws`), with an optional
    /// `Authorization` header on the upgrade request. Returns the client
    /// (speaking what the server announced) or the refused upgrade's status.
    pub async fn offer(
        address: &str,
        protocols: &str,
        authorization: Option<&str>,
    ) -> Result<WsClient, u16> {
        use tokio_tungstenite::tungstenite::{Error, client::IntoClientRequest};
        let url = format!("{}/graphql", address.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocols.parse().unwrap());
        if let Some(authorization) = authorization {
            request
                .headers_mut()
                .insert("Authorization", authorization.parse().unwrap());
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((stream, response)) => {
                let announced = response
                    .headers()
                    .get("sec-websocket-protocol")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                Ok(WsClient {
                    stream,
                    legacy: announced == "graphql-ws",
                    pending: Default::default(),
                })
            }
            Err(Error::Http(response)) => Err(response.status().as_u16()),
            Err(err) => panic!("upgrade failed: {err}"),
        }
    }

    /// Whether the server announced the legacy protocol.
    pub fn is_legacy(&self) -> bool {
        self.legacy
    }

    /// Sends a close frame with `code` and returns the code of the server's answer.
    pub async fn close_with(&mut self, code: u16, within: std::time::Duration) -> WsEnd {
        use futures::SinkExt;
        use tokio_tungstenite::tungstenite::protocol::{CloseFrame, frame::coding::CloseCode};
        let _ = self
            .stream
            .send(tokio_tungstenite::tungstenite::Message::Close(Some(
                CloseFrame {
                    code: CloseCode::from(code),
                    reason: "bye".into(),
                },
            )))
            .await;
        self.end(within).await
    }

    /// Opens, sends `connection_init` with this token and waits for the ack.
    pub async fn connected(address: &str, token: &str, legacy: bool) -> WsClient {
        let mut client = WsClient::connect(address, legacy).await;
        client
            .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        let ack = client.next_json(std::time::Duration::from_secs(10)).await;
        assert_eq!(ack["type"], "connection_ack", "{ack:#}");
        client
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.send_text(message.to_string()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: String) {
        use futures::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
            .expect("send on the WebSocket");
    }

    /// Starts a subscription.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next JSON message other than keep-alives, or `Value::Null` on timeout or close.
    pub async fn next_json(&mut self, within: std::time::Duration) -> Value {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await;
            let Ok(Some(Ok(message))) = next else {
                return Value::Null;
            };
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).expect("JSON from the server");
                match value["type"].as_str() {
                    Some("ping") => {
                        self.send(json!({ "type": "pong" })).await;
                    }
                    Some("ka") => {}
                    _ => return value,
                }
            } else if let Message::Close(_) = message {
                return Value::Null;
            }
        }
    }

    /// The data of the next event of subscription `id`, or `Value::Null`.
    /// Events of other subscriptions read meanwhile are kept for later.
    pub async fn next_event(&mut self, id: &str, within: std::time::Duration) -> Value {
        let kind = if self.legacy { "data" } else { "next" };
        if let Some(at) = self
            .pending
            .iter()
            .position(|m| m["id"] == id && m["type"] == kind)
        {
            let message = self.pending.remove(at).unwrap_or_default();
            return message["payload"]["data"].clone();
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next_json(left).await;
            if message.is_null() {
                return Value::Null;
            }
            assert!(
                message["type"] != "error",
                "subscription error: {message:#}"
            );
            if message["id"] == id && message["type"] == kind {
                return message["payload"]["data"].clone();
            }
            self.pending.push_back(message);
        }
    }

    /// Waits for the server to end the connection.
    pub async fn end(&mut self, within: std::time::Duration) -> WsEnd {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!("the server did not end the connection within {within:?}"),
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    return WsEnd::Closed(frame.code.into(), frame.reason.to_string());
                }
                Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                    return WsEnd::Dropped;
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}

impl WsClient {
    /// The underlying stream, for tests that read raw frames.
    pub fn raw(
        &mut self,
    ) -> &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    > {
        &mut self.stream
    }
}
