//! GraphQL subscriptions over WebSocket on `/graphql`, for both
//! `graphql-transport-ws` and the legacy `graphql-ws` (subscriptions-transport-ws)
//! protocol.
//!
//! async-graphql runs the subscriptions; this layer in front of it adds what
//! the reference clients rely on and async-graphql does not do by itself:
//! authentication from the `connection_init` payload or, failing that, the
//! upgrade request's `Authorization` header (4403 on a bad token, after a
//! `connection_error` for legacy clients; 1011 when the server itself
//! fails), 4408 when no `connection_init` arrives in time, 4409 for a
//! duplicate subscription id, 4400 for a malformed message, 1009 for a
//! message above the size limit, 4403 when the token expires, server
//! keep-alive pings, limits on connections and on subscriptions per
//! connection, close frames answered, and a proper close frame at shutdown.
//!
//! Reading from the socket never waits on a queue that only this loop
//! drains: a message async-graphql cannot take yet is held, and reading
//! pauses, while the loop keeps driving async-graphql until it can.

mod feeds;
mod guard;
mod occupancy;
mod operations;

use std::{sync::Arc, time::Duration};

use async_graphql::http::{WebSocketProtocols, WsMessage};
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::{SinkExt, StreamExt};
use sea_orm::DatabaseConnection;
use serde_json::{Value, json};
use tokio::sync::{OwnedSemaphorePermit, mpsc};

use crate::{
    auth::Authenticator,
    error::AppError,
    graphql::{AppSchema, RequestAuth, admit::Admission},
    shutdown::Shutdown,
};

pub use feeds::Feeds;
pub use guard::PendingByAddress;
use guard::{Guard, Verdict, authorization, close};
pub use occupancy::Occupancy;
use operations::Operations;

/// What every WebSocket connection shares.
#[derive(Clone)]
pub struct WsContext {
    pub schema: AppSchema,
    /// Reads of the connection's operations.
    pub reads: DatabaseConnection,
    pub auth: Authenticator,
    pub settings: WsSettings,
    /// Every operation is measured like an HTTP request before it runs.
    pub admission: Arc<Admission>,
    /// Open connections; an upgrade beyond the limit gets 503.
    pub connections: ConnectionLimit,
    /// Connections not authenticated yet, per client address.
    pub pending: PendingByAddress,
    /// Authenticated connections per user and per organization.
    pub occupancy: Occupancy,
    /// Closes every connection with a proper frame, and waits for them.
    pub shutdown: Shutdown,
    /// Shared executions of subscriptions, across connections.
    pub feeds: Feeds,
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
    /// Largest message a client may send.
    pub max_message_bytes: usize,
    /// Most connections from one address that have not authenticated yet.
    pub max_pending_per_address: usize,
    /// Largest `variables` one operation may carry, as JSON text.
    pub max_variables_bytes: usize,
    /// Most authenticated connections one user holds on this replica.
    pub max_per_user: usize,
    /// Most authenticated connections one organization holds on this replica.
    pub max_per_org: usize,
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

/// How the client's message stream ended, if it did.
enum Read {
    Text(String),
    /// Control frames: nothing to do.
    Skip,
    /// The client sent a close frame; it is answered with the same code.
    Closed(Option<CloseFrame>),
    /// The message is larger than allowed (1009).
    TooBig,
    /// The connection is gone.
    Gone,
}

fn read(message: Option<Result<Message, axum::Error>>) -> Read {
    match message {
        Some(Ok(Message::Text(text))) => Read::Text(text.to_string()),
        Some(Ok(Message::Binary(bytes))) => match String::from_utf8(bytes.to_vec()) {
            Ok(text) => Read::Text(text),
            Err(_) => Read::Text(String::new()),
        },
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Read::Skip,
        Some(Ok(Message::Close(frame))) => Read::Closed(frame),
        Some(Err(err)) => {
            let text = err.to_string().to_ascii_lowercase();
            if text.contains("too long")
                || text.contains("too big")
                || text.contains("capacity")
                || text.contains("space limit")
            {
                Read::TooBig
            } else {
                Read::Gone
            }
        }
        None => Read::Gone,
    }
}

/// Answers a client's close frame with the same code, so the client sees
/// its own code rather than 1006.
async fn answer_close(
    sink: &mut futures::stream::SplitSink<WebSocket, Message>,
    frame: Option<CloseFrame>,
) {
    let _ = sink.send(Message::Close(frame)).await;
    let _ = sink.close().await;
}

/// Serves one upgraded connection until either side closes or the server stops.
pub async fn serve(
    socket: WebSocket,
    protocol: WebSocketProtocols,
    state: WsContext,
    upgrade_authorization: Option<String>,
    pending: guard::PendingSlot,
    _permit: OwnedSemaphorePermit,
) {
    let settings = state.settings.clone();
    let shutdown = state.shutdown.clone();
    let legacy = protocol == WebSocketProtocols::SubscriptionsTransportWS;
    let (mut sink, mut source) = socket.split();
    let mut guard = Guard::new(protocol, settings.max_subscriptions);

    // Made once: a fresh wait on the shutdown signal at every turn of the
    // loops below would register and deregister with it each time, which
    // adds up with thousands of sockets woken by one event.
    let stopping = shutdown.started();
    tokio::pin!(stopping);

    // 1. connection_init, in time, with a valid token.
    let deadline = tokio::time::sleep(settings.init_timeout);
    tokio::pin!(deadline);
    let init_text = loop {
        let message = tokio::select! {
            message = source.next() => message,
            () = &mut deadline => {
                let _ = sink.send(close_frame(close::INIT_TIMEOUT, "Connection initialisation timeout")).await;
                return;
            }
            () = &mut stopping => {
                let _ = sink.send(close_frame(close::GOING_AWAY, "server shutting down")).await;
                return;
            }
        };
        match read(message) {
            Read::Text(text) => break text,
            Read::Skip => continue,
            Read::Closed(frame) => return answer_close(&mut sink, frame).await,
            Read::TooBig => {
                let _ = sink
                    .send(close_frame(close::TOO_BIG, "Message too big"))
                    .await;
                return;
            }
            Read::Gone => return,
        }
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
    // The token in connection_init wins over the upgrade request's header.
    let header = authorization(init_message.get("payload")).or(upgrade_authorization);
    let (principal, expires_at) = match state.auth.authenticate_with_expiry(header.as_deref()).await
    {
        Ok(authenticated) => authenticated,
        Err(err) => {
            let server_failed = matches!(err, AppError::Internal(_));
            tracing::info!(
                code = err.extension_code(),
                "websocket authentication refused"
            );
            if legacy {
                let refusal =
                    json!({ "type": "connection_error", "payload": { "message": err.message() } });
                let _ = sink.send(Message::Text(refusal.to_string().into())).await;
            }
            let frame = if server_failed {
                // A server-side failure is retryable; 4403 would make clients give up.
                close_frame(close::SERVER_ERROR, "Internal error; try again")
            } else {
                close_frame(close::FORBIDDEN, "Forbidden")
            };
            let _ = sink.send(frame).await;
            return;
        }
    };
    // One member may not take every slot, nor one organization starve the others.
    let _occupied = match state.occupancy.enter(
        &principal.user.id,
        &principal.org.id,
        settings.max_per_user,
        settings.max_per_org,
    ) {
        Ok(slot) => slot,
        Err(full) => {
            tracing::info!(cap = full.reason(), "websocket refused past a cap");
            let _ = sink.send(close_frame(close::POLICY, full.reason())).await;
            return;
        }
    };
    // What only the start needed is freed now rather than held for the
    // life of the socket: thousands of idle sockets add it up.
    drop((pending, init_message, header));

    // 2. Hand the acknowledged connection to async-graphql; each operation
    //    gets its own instant and loaders (fresh data on a long-lived socket).
    let mut data = async_graphql::Data::default();
    let org_id = principal.org.id.clone();
    data.insert(RequestAuth::Ok(Box::new(principal)));
    let operations = Operations {
        schema: state.schema.clone(),
        reads: state.reads.clone(),
        org_id,
        admission: state.admission.clone(),
        feeds: state.feeds.clone(),
        max_variables_bytes: settings.max_variables_bytes,
    };
    drop(state);
    let (to_graphql, from_client) = mpsc::channel::<String>(64);
    let mut graphql = async_graphql::http::WebSocket::new(
        operations,
        tokio_stream::wrappers::ReceiverStream::new(from_client),
        protocol,
    )
    .connection_data(data);
    if to_graphql.send(init_text).await.is_err() {
        return;
    }

    // 3. Relay, guarding every client message.
    let expiry = tokio::time::sleep(until(expires_at));
    tokio::pin!(expiry);
    let mut keep_alive = tokio::time::interval(settings.keep_alive);
    keep_alive.reset();
    // A client message async-graphql cannot take yet; reading waits for it.
    let mut held: Option<String> = None;
    loop {
        tokio::select! {
            () = &mut stopping => {
                let _ = sink.send(close_frame(close::GOING_AWAY, "server shutting down")).await;
                return;
            }
            () = &mut expiry => {
                let _ = sink.send(close_frame(close::FORBIDDEN, "Token expired")).await;
                return;
            }
            permit = to_graphql.reserve(), if held.is_some() => {
                let Ok(permit) = permit else { return };
                if let Some(text) = held.take() {
                    permit.send(text);
                }
            }
            incoming = source.next(), if held.is_none() => {
                let text = match read(incoming) {
                    Read::Text(text) => text,
                    Read::Skip => continue,
                    Read::Closed(frame) => return answer_close(&mut sink, frame).await,
                    Read::TooBig => {
                        let _ = sink.send(close_frame(close::TOO_BIG, "Message too big")).await;
                        return;
                    }
                    Read::Gone => return,
                };
                match guard.inspect(&text) {
                    Verdict::Forward => match to_graphql.try_send(text) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(text)) => held = Some(text),
                        Err(mpsc::error::TrySendError::Closed(_)) => return,
                    },
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
                        let Some(text) = guard.outgoing(text) else { continue };
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
        }
    }
}

/// How long until `exp` (seconds since the epoch).
fn until(exp: u64) -> Duration {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(exp).saturating_sub(now)
}

/// The shared connection limit.
pub type ConnectionLimit = Arc<tokio::sync::Semaphore>;
