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

use std::{
    collections::{HashSet, VecDeque},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

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

/// How many delivered ids are remembered, so that an event seen again (a
/// notification and a catch-up finding the same change) is delivered once.
const REMEMBERED: usize = 20_000;

/// How far below the newest delivered id a catch-up looks: changes commit
/// out of id order across replicas, so one with a lower id may be the one
/// the listener missed.
const CATCH_UP_MARGIN: i64 = 1_000;

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

/// The ids this replica has delivered lately, and the newest of each kind.
#[derive(Default)]
struct Delivered {
    seen: HashSet<(bool, i64)>,
    order: VecDeque<(bool, i64)>,
    newest_point: i64,
    newest_run: i64,
    /// The newest ids when this replica started: older changes are history.
    floor_point: i64,
    floor_run: i64,
}

impl Delivered {
    /// Keeps the ids not delivered yet and remembers them.
    fn fresh(&mut self, notice: Notice) -> Notice {
        let mut fresh = Notice::default();
        for (is_point, id) in notice
            .points
            .into_iter()
            .map(|id| (true, id))
            .chain(notice.sync_runs.into_iter().map(|id| (false, id)))
        {
            if !self.seen.insert((is_point, id)) {
                continue;
            }
            self.order.push_back((is_point, id));
            if self.order.len() > REMEMBERED
                && let Some(old) = self.order.pop_front()
            {
                self.seen.remove(&old);
            }
            if is_point {
                self.newest_point = self.newest_point.max(id);
                fresh.points.push(id);
            } else {
                self.newest_run = self.newest_run.max(id);
                fresh.sync_runs.push(id);
            }
        }
        fresh
    }
}

/// Where events come from and go to.
#[derive(Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    db: DatabaseConnection,
    /// Whether notices go through PostgreSQL NOTIFY.
    postgres: bool,
    /// What was delivered lately: nothing twice, and where a catch-up starts.
    delivered: Arc<Mutex<Delivered>>,
    /// Subscriptions receiving events, however many share one receiver.
    subscribers: Arc<AtomicUsize>,
}

/// Counts one live subscription while it is held.
pub struct SubscriberGuard(Arc<AtomicUsize>);

impl Drop for SubscriberGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
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
            delivered: Arc::new(Mutex::new(Delivered::default())),
            subscribers: Arc::default(),
        }
    }

    /// A new subscriber's receiver.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }

    /// How many subscriptions on this replica are receiving events now.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.load(Ordering::Relaxed)
    }

    /// Counts a subscription as receiving events until the guard drops.
    pub fn count_subscriber(&self) -> SubscriberGuard {
        self.subscribers.fetch_add(1, Ordering::Relaxed);
        SubscriberGuard(self.subscribers.clone())
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

    /// Loads the events a notice names and hands them to local subscribers,
    /// each once.
    async fn deliver(&self, notice: Notice) {
        let notice = match self.delivered.lock() {
            Ok(mut delivered) => delivered.fresh(notice),
            Err(poisoned) => poisoned.into_inner().fresh(notice),
        };
        // With nobody listening here, loading the events would be wasted reads.
        if notice.is_empty() || self.sender.receiver_count() == 0 {
            return;
        }
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

    /// Notes where this replica starts: changes committed before it started
    /// are history, not events.
    pub async fn start_from_now(&self) {
        match loader::newest_ids(&self.db).await {
            Ok((point, run)) => {
                if let Ok(mut delivered) = self.delivered.lock() {
                    delivered.newest_point = point;
                    delivered.newest_run = run;
                    delivered.floor_point = point;
                    delivered.floor_run = run;
                }
            }
            Err(err) => tracing::warn!(error = %err, "could not read the newest event ids"),
        }
    }

    /// Delivers what was committed around and after the newest ids delivered.
    async fn catch_up(&self) {
        let (point, run) = match self.delivered.lock() {
            Ok(d) => (
                d.newest_point
                    .saturating_sub(CATCH_UP_MARGIN)
                    .max(d.floor_point),
                d.newest_run
                    .saturating_sub(CATCH_UP_MARGIN)
                    .max(d.floor_run),
            ),
            Err(_) => return,
        };
        match loader::ids_after(&self.db, point, run).await {
            Ok(notice) => self.deliver(notice).await,
            Err(err) => tracing::warn!(error = %err, "could not catch up on events"),
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
            // What was committed while nobody listened is loaded from the
            // database, so no subscriber misses a change.
            self.catch_up().await;
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
                    // The connection dropped: connect again and catch up.
                    Ok(None) => {
                        tracing::warn!("event listener lost its connection; reconnecting");
                        break;
                    }
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
    fn an_id_is_delivered_once_however_often_it_is_announced() {
        let mut delivered = Delivered::default();
        let first = delivered.fresh(Notice {
            points: vec![3, 1],
            sync_runs: vec![1],
        });
        assert_eq!(first.points, vec![3, 1]);
        let again = delivered.fresh(Notice {
            points: vec![1, 2, 3],
            sync_runs: vec![1, 2],
        });
        assert_eq!(again.points, vec![2]);
        assert_eq!(again.sync_runs, vec![2]);
        assert_eq!((delivered.newest_point, delivered.newest_run), (3, 2));
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
