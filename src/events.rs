//! Events: every committed change of progress and every sync outcome,
//! delivered to subscribers after the transaction that made it commits.
//!
//! Publishers hand over only ids (history points, sync runs). The replica
//! that delivers an event loads what it needs from the database, so the
//! same small message works in one process and across replicas:
//!
//! - SQLite (one process): ids go straight to the local loader.
//! - PostgreSQL: ids go out with `NOTIFY okr_pulse_events`; every replica,
//!   this one included, `LISTEN`s, loads and delivers. A listener whose
//!   connection drops reconnects and listens again by itself.
//!
//! Delivery to subscribers is a bounded broadcast channel: a publisher never
//! waits for a subscriber, and a subscriber that falls behind skips to the
//! newest events instead of queueing an unbounded backlog.

use std::{sync::Arc, time::Duration};

use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use tokio::sync::broadcast;

use crate::store::events as loader;

pub use crate::store::{
    Notice,
    events::{ProgressEvent, SyncEvent},
};

/// The PostgreSQL channel events travel on.
const CHANNEL: &str = "okr_pulse_events";

/// Largest NOTIFY payload we send; PostgreSQL allows just under 8000 bytes.
const MAX_PAYLOAD: usize = 7000;

/// How many events each subscriber may fall behind before it skips ahead.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// One delivered event.
#[derive(Debug, Clone)]
pub enum Event {
    Progress(Arc<ProgressEvent>),
    Sync(Arc<SyncEvent>),
}

impl Notice {
    /// Splits into payloads that each fit one NOTIFY.
    fn payloads(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut current = Notice::default();
        let mut size = 0;
        let items = self
            .points
            .iter()
            .map(|p| (true, *p))
            .chain(self.sync_runs.iter().map(|s| (false, *s)));
        for (is_point, id) in items {
            // An id costs at most 20 digits and a comma.
            if size + 21 > MAX_PAYLOAD - 32 {
                out.push(serde_json::to_string(&current).unwrap_or_default());
                current = Notice::default();
                size = 0;
            }
            if is_point {
                current.points.push(id);
            } else {
                current.sync_runs.push(id);
            }
            size += 21;
        }
        if !current.is_empty() {
            out.push(serde_json::to_string(&current).unwrap_or_default());
        }
        out
    }
}

/// Where events come from and go to.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    db: DatabaseConnection,
    /// Whether notices go through PostgreSQL NOTIFY.
    postgres: bool,
}

impl EventBus {
    /// A bus over this database. On PostgreSQL, call [`EventBus::listen`] to
    /// start receiving.
    pub fn new(db: DatabaseConnection) -> EventBus {
        let postgres = matches!(
            db.get_database_backend(),
            sea_orm::DatabaseBackend::Postgres
        );
        let (sender, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        EventBus {
            sender,
            db,
            postgres,
        }
    }

    /// A new subscriber's receiver.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// How many subscriptions on this replica are receiving events now.
    pub fn subscriber_count(&self) -> usize {
        self.sender.receiver_count()
    }

    /// Announces committed changes. Call only after the commit.
    pub async fn committed(&self, notice: Notice) {
        if notice.is_empty() {
            return;
        }
        if self.postgres {
            for payload in notice.payloads() {
                let stmt = Statement::from_sql_and_values(
                    sea_orm::DatabaseBackend::Postgres,
                    "SELECT pg_notify($1, $2)",
                    [CHANNEL.into(), payload.into()],
                );
                if let Err(err) = self.db.execute_raw(stmt).await {
                    tracing::error!(error = %err, "could not publish events");
                }
            }
        } else {
            self.deliver(notice).await;
        }
    }

    /// Loads the events a notice names and hands them to local subscribers.
    async fn deliver(&self, notice: Notice) {
        match loader::load(&self.db, &notice.points, &notice.sync_runs).await {
            Ok((progress, syncs)) => {
                for event in progress {
                    let _ = self.sender.send(Event::Progress(Arc::new(event)));
                }
                for event in syncs {
                    let _ = self.sender.send(Event::Sync(Arc::new(event)));
                }
            }
            Err(err) => tracing::error!(error = ?err, "could not load events"),
        }
    }

    /// Listens on PostgreSQL for notices from every replica until `stop`
    /// completes; reconnects after a lost connection.
    pub async fn listen(self, url: String, stop: tokio_util::sync::CancellationToken) {
        use sea_orm::sqlx::postgres::PgListener;
        let mut backoff = Duration::from_millis(100);
        while !stop.is_cancelled() {
            let mut listener = match PgListener::connect(&url).await {
                Ok(listener) => listener,
                Err(err) => {
                    tracing::warn!(error = %err, "event listener cannot connect; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = stop.cancelled() => return,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            if let Err(err) = listener.listen(CHANNEL).await {
                tracing::warn!(error = %err, "event listener cannot LISTEN; retrying");
                continue;
            }
            backoff = Duration::from_millis(100);
            tracing::info!("listening for events on PostgreSQL");
            loop {
                let next = tokio::select! {
                    next = listener.try_recv() => next,
                    () = stop.cancelled() => return,
                };
                match next {
                    Ok(Some(notification)) => {
                        match serde_json::from_str::<Notice>(notification.payload()) {
                            Ok(notice) => self.deliver(notice).await,
                            Err(err) => {
                                tracing::warn!(error = %err, "ignoring a malformed event notice")
                            }
                        }
                    }
                    // The connection dropped; sqlx reconnects and listens again on the next call.
                    Ok(None) => tracing::warn!("event listener lost its connection; reconnecting"),
                    Err(err) => {
                        tracing::warn!(error = %err, "event listener failed; reconnecting");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notice_is_split_into_payloads_below_the_notify_limit() {
        let notice = Notice {
            points: (0..2000).map(|i| i64::MAX - i).collect(),
            sync_runs: vec![1, 2, 3],
        };
        let payloads = notice.payloads();
        assert!(payloads.len() > 1);
        let mut points = Vec::new();
        let mut runs = Vec::new();
        for payload in &payloads {
            assert!(payload.len() < MAX_PAYLOAD, "{}", payload.len());
            let back: Notice = serde_json::from_str(payload).unwrap();
            points.extend(back.points);
            runs.extend(back.sync_runs);
        }
        assert_eq!(points, notice.points);
        assert_eq!(runs, notice.sync_runs);
    }

    #[test]
    fn a_small_notice_is_one_short_payload() {
        let notice = Notice {
            points: vec![41, 42],
            sync_runs: vec![],
        };
        assert_eq!(notice.payloads(), vec![r#"{"p":[41,42]}"#.to_owned()]);
    }
}
