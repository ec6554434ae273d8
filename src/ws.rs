//! GraphQL subscriptions over WebSocket on `/graphql`, for both
//! `graphql-transport-ws` and the legacy `graphql-ws` (subscriptions-transport-ws)
//! protocol.
//!
//! async-graphql runs the subscriptions; this layer in front of it adds what
//! the reference `graphql-ws` client expects and async-graphql does not do
//! by itself: authentication from the `connection_init` payload (4403 on a
//! bad token), 4408 when no `connection_init` arrives in time, 4409 for a
//! duplicate subscription id, 4400 for a malformed message, server
//! keep-alive pings, limits on connections and on subscriptions per
//! connection, and a proper close frame at shutdown.

use std::{collections::HashSet, sync::Arc, time::Duration};

use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::{
    graphql::{AppSchema, Loaders, RequestAuth, RequestTime},
    http::AppState,
    store,
};

/// WebSocket limits and timings.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Most open WebSocket connections per replica.
    pub max_connections: usize,
    /// Most active subscriptions per connection.
    pub max_subscriptions: usize,
    /// How long a client has to send `connection_init`.
    pub init_timeout: Duration,
    /// How often the server pings an idle connection.
    pub keep_alive: Duration,
}

/// Close codes of the graphql-transport-ws protocol.
mod close {
    pub const BAD_REQUEST: u16 = 4400;
    pub const UNAUTHORIZED: u16 = 4401;
    pub const FORBIDDEN: u16 = 4403;
    pub const INIT_TIMEOUT: u16 = 4408;
    pub const DUPLICATE_ID: u16 = 4409;
    pub const TOO_MANY_INIT: u16 = 4429;
    pub const GOING_AWAY: u16 = 1001;
}

/// What the guard decided about one client message.
#[derive(Debug, PartialEq)]
enum Verdict {
    /// Hand it to async-graphql.
    Forward,
    /// Answer it with these frames and do not forward it.
    Reply(Vec<String>),
    /// Close the connection.
    Close(u16, String),
}

/// Per-connection protocol state checked before async-graphql sees a message.
struct Guard {
    legacy: bool,
    max_subscriptions: usize,
    active: HashSet<String>,
}

impl Guard {
    fn new(protocol: WebSocketProtocols, max_subscriptions: usize) -> Guard {
        Guard {
            legacy: protocol == WebSocketProtocols::SubscriptionsTransportWS,
            max_subscriptions,
            active: HashSet::new(),
        }
    }

    /// Checks a client message after the connection was acknowledged.
    fn inspect(&mut self, text: &str) -> Verdict {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return Verdict::Close(close::BAD_REQUEST, "Invalid message received".to_owned());
        };
        let Some(kind) = message.get("type").and_then(Value::as_str) else {
            return Verdict::Close(close::BAD_REQUEST, "Invalid message received".to_owned());
        };
        let id = message.get("id").and_then(Value::as_str).map(str::to_owned);
        match (kind, self.legacy) {
            ("subscribe", false) | ("start", true) => {
                let Some(id) = id.filter(|id| !id.is_empty()) else {
                    return Verdict::Close(
                        close::BAD_REQUEST,
                        "Invalid message received".to_owned(),
                    );
                };
                if message
                    .get("payload")
                    .and_then(|p| p.get("query"))
                    .is_none()
                {
                    return Verdict::Close(
                        close::BAD_REQUEST,
                        "Invalid message received".to_owned(),
                    );
                }
                if self.active.contains(&id) {
                    return Verdict::Close(
                        close::DUPLICATE_ID,
                        format!("Subscriber for {id} already exists"),
                    );
                }
                if self.active.len() >= self.max_subscriptions {
                    let error = json!([{ "message": format!(
                        "Too many subscriptions on one connection (at most {}); complete one first.",
                        self.max_subscriptions
                    ), "extensions": { "code": "RATE_LIMITED" } }]);
                    // Both protocols call this message `error`.
                    return Verdict::Reply(vec![
                        json!({ "id": id, "type": "error", "payload": error }).to_string(),
                    ]);
                }
                self.active.insert(id);
                Verdict::Forward
            }
            ("complete", false) | ("stop", true) => {
                if let Some(id) = id {
                    self.active.remove(&id);
                }
                Verdict::Forward
            }
            ("ping", false) | ("pong", false) | ("connection_terminate", true) => Verdict::Forward,
            ("connection_init", _) => Verdict::Close(
                close::TOO_MANY_INIT,
                "Too many initialisation requests".to_owned(),
            ),
            _ => Verdict::Close(close::BAD_REQUEST, "Invalid message received".to_owned()),
        }
    }

    /// Notes a server message that ends a subscription.
    fn observe(&mut self, text: &str) {
        if let Ok(message) = serde_json::from_str::<Value>(text)
            && matches!(
                message.get("type").and_then(Value::as_str),
                Some("complete" | "error")
            )
            && let Some(id) = message.get("id").and_then(Value::as_str)
        {
            self.active.remove(id);
        }
    }

    /// The server's keep-alive frame.
    fn keep_alive(&self) -> String {
        if self.legacy {
            json!({ "type": "ka" }).to_string()
        } else {
            json!({ "type": "ping", "payload": { "message": "keep-alive" } }).to_string()
        }
    }
}

fn close_frame(code: u16, reason: impl Into<String>) -> Message {
    let mut reason: String = reason.into();
    // A close reason must fit in 123 bytes.
    while reason.len() > 120 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// The `Authorization` value of a `connection_init` payload.
fn authorization(payload: Option<&Value>) -> Option<String> {
    let payload = payload?;
    for key in ["Authorization", "authorization"] {
        if let Some(v) = payload.get(key).and_then(Value::as_str) {
            return Some(v.to_owned());
        }
    }
    payload
        .get("headers")
        .and_then(|h| h.get("Authorization").or_else(|| h.get("authorization")))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Serves one upgraded connection until either side closes or the server stops.
pub async fn serve(
    socket: WebSocket,
    protocol: WebSocketProtocols,
    state: AppState,
    _permit: OwnedSemaphorePermit,
) {
    let settings = state.ws.clone();
    let shutdown = state.shutdown.clone();
    let (mut sink, mut source) = socket.split();
    let mut guard = Guard::new(protocol, settings.max_subscriptions);

    // 1. connection_init, in time, with a valid token.
    let init = tokio::select! {
        first = tokio::time::timeout(settings.init_timeout, next_text(&mut source)) => first,
        () = shutdown.cancelled() => {
            let _ = sink.send(close_frame(close::GOING_AWAY, "server shutting down")).await;
            return;
        }
    };
    let init_text = match init {
        Err(_) => {
            let _ = sink
                .send(close_frame(
                    close::INIT_TIMEOUT,
                    "Connection initialisation timeout",
                ))
                .await;
            return;
        }
        Ok(None) => return,
        Ok(Some(text)) => text,
    };
    let Ok(init_message) = serde_json::from_str::<Value>(&init_text) else {
        let _ = sink
            .send(close_frame(close::BAD_REQUEST, "Invalid message received"))
            .await;
        return;
    };
    if init_message.get("type").and_then(Value::as_str) != Some("connection_init") {
        let _ = sink
            .send(close_frame(close::UNAUTHORIZED, "Unauthorized"))
            .await;
        return;
    }
    let header = authorization(init_message.get("payload"));
    let principal = match state.keys.verify_header(header.as_deref()) {
        Ok((claims, role)) => store::orgs::provision(&state.db, &claims, role).await,
        Err(err) => Err(err),
    };
    let principal = match principal {
        Ok(p) => p,
        Err(err) => {
            tracing::info!(
                code = err.extension_code(),
                "websocket authentication refused"
            );
            let _ = sink.send(close_frame(close::FORBIDDEN, "Forbidden")).await;
            return;
        }
    };

    // 2. Hand the acknowledged connection to async-graphql.
    let mut data = async_graphql::Data::default();
    data.insert(RequestTime(store::now()));
    data.insert(Loaders::new(state.db.clone(), principal.org.id.clone()));
    data.insert(RequestAuth::Ok(Box::new(principal)));
    let (to_graphql, from_client) = mpsc::channel::<String>(32);
    let schema: AppSchema = state.schema.clone();
    let mut graphql = async_graphql::http::WebSocket::new(
        schema,
        tokio_stream::wrappers::ReceiverStream::new(from_client),
        protocol,
    )
    .connection_data(data);
    if to_graphql.send(init_text).await.is_err() {
        return;
    }

    // 3. Relay, guarding every client message.
    let mut keep_alive = tokio::time::interval(settings.keep_alive);
    keep_alive.reset();
    loop {
        tokio::select! {
            incoming = source.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text.to_string(),
                    Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
                        Ok(text) => text,
                        Err(_) => {
                            let _ = sink.send(close_frame(close::BAD_REQUEST, "Invalid message received")).await;
                            return;
                        }
                    },
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                };
                match guard.inspect(&text) {
                    Verdict::Forward => {
                        if to_graphql.send(text).await.is_err() {
                            return;
                        }
                    }
                    Verdict::Reply(frames) => {
                        for frame in frames {
                            if sink.send(Message::Text(frame.into())).await.is_err() {
                                return;
                            }
                        }
                    }
                    Verdict::Close(code, reason) => {
                        let _ = sink.send(close_frame(code, reason)).await;
                        return;
                    }
                }
            }
            outgoing = graphql.next() => {
                match outgoing {
                    Some(WsMessage::Text(text)) => {
                        guard.observe(&text);
                        if sink.send(Message::Text(text.into())).await.is_err() {
                            return;
                        }
                    }
                    Some(WsMessage::Close(code, reason)) => {
                        let _ = sink.send(close_frame(code, reason)).await;
                        return;
                    }
                    None => {
                        let _ = sink.send(Message::Close(None)).await;
                        return;
                    }
                }
            }
            _ = keep_alive.tick() => {
                if sink.send(Message::Text(guard.keep_alive().into())).await.is_err() {
                    return;
                }
            }
            () = shutdown.cancelled() => {
                let _ = sink.send(close_frame(close::GOING_AWAY, "server shutting down")).await;
                return;
            }
        }
    }
}

/// The next text frame, skipping control frames; none when the socket closes.
async fn next_text(source: &mut futures::stream::SplitStream<WebSocket>) -> Option<String> {
    while let Some(message) = source.next().await {
        match message {
            Ok(Message::Text(text)) => return Some(text.to_string()),
            Ok(Message::Binary(bytes)) => {
                return Some(String::from_utf8_lossy(&bytes).into_owned());
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Close(_)) | Err(_) => return None,
        }
    }
    None
}

/// The shared connection limit.
pub type ConnectionLimit = Arc<tokio::sync::Semaphore>;

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new(WebSocketProtocols::GraphQLWS, 2)
    }

    fn subscribe(id: &str) -> String {
        json!({ "id": id, "type": "subscribe", "payload": { "query": "subscription { progressChanged { at } }" } })
            .to_string()
    }

    #[test]
    fn a_duplicate_subscription_id_closes_with_4409() {
        let mut g = guard();
        assert_eq!(g.inspect(&subscribe("a")), Verdict::Forward);
        assert!(matches!(
            g.inspect(&subscribe("a")),
            Verdict::Close(4409, _)
        ));
    }

    #[test]
    fn an_id_may_be_reused_after_its_subscription_completed() {
        let mut g = guard();
        g.inspect(&subscribe("a"));
        g.inspect(&json!({ "id": "a", "type": "complete" }).to_string());
        assert_eq!(g.inspect(&subscribe("a")), Verdict::Forward);
        g.observe(&json!({ "id": "a", "type": "complete" }).to_string());
        assert_eq!(g.inspect(&subscribe("a")), Verdict::Forward);
    }

    #[test]
    fn malformed_messages_close_with_4400() {
        let mut g = guard();
        for bad in [
            "not json",
            "{}",
            r#"{"type":"subscribe"}"#,
            r#"{"type":"bogus"}"#,
        ] {
            assert!(matches!(g.inspect(bad), Verdict::Close(4400, _)), "{bad}");
        }
    }

    #[test]
    fn subscriptions_beyond_the_limit_get_an_error_not_a_stream() {
        let mut g = guard();
        g.inspect(&subscribe("a"));
        g.inspect(&subscribe("b"));
        match g.inspect(&subscribe("c")) {
            Verdict::Reply(frames) => assert!(frames[0].contains("\"error\"")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_token_may_come_flat_or_under_headers() {
        assert_eq!(
            authorization(Some(&json!({ "Authorization": "Bearer x" }))).as_deref(),
            Some("Bearer x")
        );
        assert_eq!(
            authorization(Some(&json!({ "headers": { "authorization": "Bearer y" } }))).as_deref(),
            Some("Bearer y")
        );
        assert_eq!(authorization(None), None);
    }
}
