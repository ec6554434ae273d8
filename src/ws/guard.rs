//! The protocol rules checked on every client message before async-graphql
//! sees it: ids, limits, message types, and the close codes of the
//! graphql-transport-ws protocol.

use std::collections::HashSet;

use async_graphql::http::WebSocketProtocols;
use serde_json::{Value, json};

/// Close codes of the graphql-transport-ws protocol.
pub mod close {
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
pub enum Verdict {
    /// Hand it to async-graphql.
    Forward,
    /// Answer it with these frames and do not forward it.
    Reply(Vec<String>),
    /// Close the connection.
    Close(u16, String),
}

/// Per-connection protocol state checked before async-graphql sees a message.
pub struct Guard {
    legacy: bool,
    max_subscriptions: usize,
    active: HashSet<String>,
}

impl Guard {
    pub fn new(protocol: WebSocketProtocols, max_subscriptions: usize) -> Guard {
        Guard {
            legacy: protocol == WebSocketProtocols::SubscriptionsTransportWS,
            max_subscriptions,
            active: HashSet::new(),
        }
    }

    /// Checks a client message after the connection was acknowledged.
    pub fn inspect(&mut self, text: &str) -> Verdict {
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
    pub fn observe(&mut self, text: &str) {
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
    pub fn keep_alive(&self) -> String {
        if self.legacy {
            json!({ "type": "ka" }).to_string()
        } else {
            json!({ "type": "ping", "payload": { "message": "keep-alive" } }).to_string()
        }
    }
}

/// The `Authorization` value of a `connection_init` payload.
pub fn authorization(payload: Option<&Value>) -> Option<String> {
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
