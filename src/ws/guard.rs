//! The protocol rules checked on every client message before async-graphql
//! sees it: ids, limits, message types, and the close codes of the
//! graphql-transport-ws protocol.

use std::{
    borrow::Cow,
    collections::{HashMap, HashSet},
    net::IpAddr,
    sync::{Arc, Mutex},
};

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
    pub const POLICY: u16 = 1008;
    pub const TOO_BIG: u16 = 1009;
    pub const SERVER_ERROR: u16 = 1011;
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

/// The envelope of a message to the client: its type and operation id.
#[derive(serde::Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    id: Option<Cow<'a, str>>,
}

/// Per-connection protocol state checked before async-graphql sees a message.
pub struct Guard {
    legacy: bool,
    max_subscriptions: usize,
    active: HashSet<String>,
    /// Subscriptions that have sent a result: a later error is theirs.
    answered: HashSet<String>,
    /// Subscriptions refused with `error`: async-graphql's `complete` for
    /// them is not passed on (an `error` already ends a subscription).
    refused: HashSet<String>,
}

impl Guard {
    pub fn new(protocol: WebSocketProtocols, max_subscriptions: usize) -> Guard {
        Guard {
            legacy: protocol == WebSocketProtocols::SubscriptionsTransportWS,
            max_subscriptions,
            active: HashSet::new(),
            answered: HashSet::new(),
            refused: HashSet::new(),
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

    /// Rewrites a message from async-graphql before it is sent, or drops
    /// it: a subscription's first result that carries only errors (the
    /// document did not validate, was too complex, the caller may not run
    /// it) is an `error` message, as the protocols define, not a `next`.
    pub fn outgoing(&mut self, text: String) -> Option<String> {
        // Only the envelope is read: most messages are results of
        // subscriptions already answered, and pass as they are.
        let Ok(head) = serde_json::from_str::<Head<'_>>(&text) else {
            return Some(text);
        };
        let Some(id) = head.id.map(Cow::into_owned) else {
            return Some(text);
        };
        let kind = head.kind.as_ref();
        let result = if self.legacy { "data" } else { "next" };
        if kind == "complete" && self.refused.remove(&id) {
            return None;
        }
        if kind == result && !self.answered.contains(&id) {
            let message = serde_json::from_str::<Value>(&text).unwrap_or_default();
            let payload = message.get("payload");
            let no_data = payload
                .and_then(|p| p.get("data"))
                .is_none_or(Value::is_null);
            let errors = payload
                .and_then(|p| p.get("errors"))
                .filter(|e| e.as_array().is_some_and(|e| !e.is_empty()));
            if let (true, Some(errors)) = (no_data, errors) {
                self.active.remove(&id);
                self.refused.insert(id.clone());
                return Some(json!({ "id": id, "type": "error", "payload": errors }).to_string());
            }
            self.answered.insert(id);
            return Some(text);
        }
        if matches!(kind, "complete" | "error") {
            self.active.remove(&id);
            self.answered.remove(&id);
        }
        Some(text)
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

/// Connections per client address that have not authenticated yet, so one
/// address cannot hold every slot with sockets that never say who they are.
#[derive(Clone, Default)]
pub struct PendingByAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

impl PendingByAddress {
    /// A slot for one more unauthenticated connection from `address`, or
    /// none when it already has `max` of them.
    pub fn enter(&self, address: Option<IpAddr>, max: usize) -> Option<PendingSlot> {
        let Some(address) = address.map(client_group) else {
            return Some(PendingSlot(None));
        };
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = counts.entry(address).or_default();
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(PendingSlot(Some((self.clone(), address))))
    }

    /// How many unauthenticated connections `address` has.
    pub fn count(&self, address: IpAddr) -> usize {
        let counts = self
            .0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        counts
            .get(&client_group(address))
            .copied()
            .unwrap_or_default()
    }
}

/// The address a per-address limit counts a client under: an IPv4 address
/// as it is (IPv4-mapped IPv6 too), an IPv6 address by its /64 network, since
/// one host is commonly given a whole /64 and could otherwise take a fresh
/// address for every connection.
pub fn client_group(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

/// An unauthenticated connection's place; given back when dropped.
pub struct PendingSlot(Option<(PendingByAddress, IpAddr)>);

impl Drop for PendingSlot {
    fn drop(&mut self) {
        if let Some((pending, address)) = self.0.take() {
            let mut counts = pending
                .0
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(count) = counts.get_mut(&address) {
                *count = count.saturating_sub(1);
                if *count == 0 {
                    counts.remove(&address);
                }
            }
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

    #[test]
    fn ipv6_clients_share_one_cap_per_64_network_and_mapped_ipv4_counts_as_ipv4() {
        let pending = PendingByAddress::default();
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let first = pending.enter(Some(a), 2);
        let second = pending.enter(Some(b), 2);
        assert!(first.is_some() && second.is_some());
        assert!(
            pending
                .enter(Some("2001:db8:1:2::77".parse().unwrap()), 2)
                .is_none()
        );
        assert!(pending.enter(Some(other), 2).is_some());
        drop(first);
        assert_eq!(pending.count(b), 1);
        assert_eq!(
            client_group("::ffff:192.0.2.7".parse().unwrap()),
            "192.0.2.7".parse::<IpAddr>().unwrap()
        );
    }

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
        g.outgoing(json!({ "id": "a", "type": "complete" }).to_string());
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

    #[test]
    fn a_first_result_with_only_errors_becomes_an_error_and_its_complete_is_dropped() {
        let mut g = guard();
        g.inspect(&subscribe("a"));
        let next = json!({ "id": "a", "type": "next", "payload": { "data": null, "errors": [{ "message": "Unknown field" }] } });
        let out: Value = serde_json::from_str(&g.outgoing(next.to_string()).unwrap()).unwrap();
        assert_eq!(out["type"], "error");
        assert_eq!(out["payload"][0]["message"], "Unknown field");
        assert_eq!(
            g.outgoing(json!({ "id": "a", "type": "complete" }).to_string()),
            None
        );
        // The id is free again.
        assert_eq!(g.inspect(&subscribe("a")), Verdict::Forward);
    }

    #[test]
    fn results_after_the_first_pass_through_even_with_errors() {
        let mut g = guard();
        g.inspect(&subscribe("a"));
        let ok =
            json!({ "id": "a", "type": "next", "payload": { "data": { "x": 1 } } }).to_string();
        assert_eq!(g.outgoing(ok.clone()), Some(ok));
        let later = json!({ "id": "a", "type": "next", "payload": { "data": null, "errors": [{ "message": "m" }] } }).to_string();
        assert_eq!(g.outgoing(later.clone()), Some(later));
    }

    #[test]
    fn one_address_may_hold_only_so_many_unauthenticated_connections() {
        let pending = PendingByAddress::default();
        let address: IpAddr = "127.0.0.1".parse().unwrap();
        let a = pending.enter(Some(address), 2).unwrap();
        let _b = pending.enter(Some(address), 2).unwrap();
        assert!(pending.enter(Some(address), 2).is_none());
        assert!(
            pending
                .enter(Some("10.0.0.1".parse().unwrap()), 2)
                .is_some()
        );
        drop(a);
        assert_eq!(pending.count(address), 1);
        assert!(pending.enter(Some(address), 2).is_some());
    }
}
