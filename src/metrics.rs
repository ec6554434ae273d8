//! `GET /metrics`: counters in the Prometheus text format, for dashboards
//! and for the benchmark program. They are counts only: no names, ids or
//! values of any organization.

use std::{
    fmt::Write as _,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use crate::{
    events::EventBus,
    store::db::StatementCounter,
    ws::{ConnectionLimit, Feeds},
};

/// What the server counts.
#[derive(Clone)]
pub struct Metrics {
    pub statements: StatementCounter,
    pub events: EventBus,
    pub sync_runs: SyncRunCounter,
    /// Open WebSockets are the permits taken from this limit.
    pub websockets: ConnectionLimit,
    pub max_websockets: usize,
    /// Shared executions of subscriptions.
    pub feeds: Feeds,
    /// When set, `/metrics` answers only `Authorization: Bearer <token>`:
    /// the counts show every organization's activity together.
    pub token: Option<String>,
}

/// Sync runs recorded by this replica.
#[derive(Clone, Default, Debug)]
pub struct SyncRunCounter(Arc<AtomicU64>);

impl SyncRunCounter {
    /// Counts one recorded run.
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs recorded since start.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

impl Metrics {
    /// Whether a request with this `Authorization` header may read the
    /// metrics; compared in constant time.
    pub fn allows(&self, authorization: Option<&[u8]>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let expected = format!("Bearer {token}");
        let given = authorization.unwrap_or_default();
        given.len() == expected.len()
            && given
                .iter()
                .zip(expected.as_bytes())
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let open = self
            .max_websockets
            .saturating_sub(self.websockets.available_permits());
        let rows: [(&str, &str, &str, u64); 6] = [
            (
                "okr_pulse_sql_statements_total",
                "counter",
                "SQL statements sent to the database.",
                self.statements.get(),
            ),
            (
                "okr_pulse_sql_writes_total",
                "counter",
                "SQL statements that insert, update or delete rows.",
                self.statements.writes(),
            ),
            (
                "okr_pulse_sync_runs_total",
                "counter",
                "Data source runs recorded by this replica.",
                self.sync_runs.get(),
            ),
            (
                "okr_pulse_websocket_connections",
                "gauge",
                "Open WebSocket connections.",
                open as u64,
            ),
            (
                "okr_pulse_subscriptions",
                "gauge",
                "Subscriptions receiving events on this replica.",
                self.events.subscriber_count() as u64,
            ),
            (
                "okr_pulse_subscription_executions",
                "gauge",
                "Subscription executions running; subscriptions asking the same share one.",
                self.feeds.running() as u64,
            ),
        ];
        let mut out = String::new();
        for (name, kind, help, value) in rows {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        out
    }
}
