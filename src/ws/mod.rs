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

mod guard;

use std::{sync::Arc, time::Duration};

use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use sea_orm::DatabaseConnection;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::{
    auth::Authenticator,
    graphql::{AppSchema, Loaders, RequestAuth, RequestTime},
    shutdown::Shutdown,
    store,
};

use guard::{Guard, Verdict, authorization, close};

/// What every WebSocket connection shares.
#[derive(Clone)]
pub struct WsContext {
    pub schema: AppSchema,
    pub db: DatabaseConnection,
    pub auth: Authenticator,
    pub settings: WsSettings,
    /// Open connections; an upgrade beyond the limit gets 503.
    pub connections: ConnectionLimit,
    /// Closes every connection with a proper frame, and waits for them.
    pub shutdown: Shutdown,
}

/// WebSocket limits and timings.
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// Most active subscriptions per connection.
    pub max_subscriptions: usize,
    /// How long a client has to send `connection_init`.
    pub init_timeout: Duration,
    /// How often the server pings an idle connection.
    pub keep_alive: Duration,
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

/// Serves one upgraded connection until either side closes or the server stops.
pub async fn serve(
    socket: WebSocket,
    protocol: WebSocketProtocols,
    state: WsContext,
    _permit: OwnedSemaphorePermit,
) {
    let settings = state.settings.clone();
    let shutdown = state.shutdown.clone();
    let (mut sink, mut source) = socket.split();
    let mut guard = Guard::new(protocol, settings.max_subscriptions);

    // 1. connection_init, in time, with a valid token.
    let init = tokio::select! {
        first = tokio::time::timeout(settings.init_timeout, next_text(&mut source)) => first,
        () = shutdown.started() => {
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
    let principal = match state.auth.authenticate(header.as_deref()).await {
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
            () = shutdown.started() => {
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
