//! What the tests share, by concern: the server in this process
//! ([`app`]), server processes of their own ([`process`]), the GraphQL
//! client ([`graphql`]), the BigQuery emulator ([`emulator`]), a WebSocket
//! client ([`ws`]) and throw-away PostgreSQL databases ([`postgres`]).

mod app;
mod emulator;
mod fake_google;
mod graphql;
mod postgres;
mod process;
mod seed;
mod ws;

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Days, NaiveDate, Utc};
use serde_json::{Value, json};

pub use app::{
    Caller, SECRET, TestApp, on_postgres, spawn_app, spawn_app_with, spawn_app_with_emulator,
};
pub use emulator::{Emulator, PROJECT};
pub use fake_google::*;
pub use graphql::GqlError;
pub use process::ServerProcess;
pub use seed::{TREE, seed_tree};
pub use ws::{WsClient, WsEnd};

/// A period of 100 days around today: expected progress is about 50 %.
pub fn period_half_elapsed() -> (NaiveDate, NaiveDate) {
    let today = Utc::now().date_naive();
    (
        today.checked_sub_days(Days::new(50)).unwrap(),
        today.checked_add_days(Days::new(49)).unwrap(),
    )
}

/// Input for an objective over [`period_half_elapsed`].
pub fn objective_input(title: &str) -> Value {
    let (start, end) = period_half_elapsed();
    json!({ "title": title, "periodStart": start.to_string(), "periodEnd": end.to_string() })
}

/// A unique organization slug per call, so tests never share tenants by accident.
pub fn unique_org(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The resident memory of this process (server and test) in bytes.
pub fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}
