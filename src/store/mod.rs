//! sea-orm reads and writes, one file per aggregate. Every query is scoped
//! to the caller's organization; an id from another organization reads as
//! not found. Every write that changes progress or records a sync run
//! returns a [`Notice`] of what it committed, for the caller to publish
//! after the commit.

pub mod connections;
pub mod data_sources;
pub mod db;
pub mod events;
pub mod history;
pub mod key_results;
pub mod lease;
pub mod objectives;
pub mod orgs;
pub mod record;
pub mod runs;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use orgs::Principal;

/// A new primary key: a UUIDv7, so ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The current instant, truncated to microseconds so that what is stored
/// reads back identically on SQLite and PostgreSQL.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    DateTime::from_timestamp_micros(t.timestamp_micros()).unwrap_or(t)
}

/// What a committed write changed, by id: the history points written and
/// the sync runs recorded. Events are rebuilt from these after the commit,
/// on this replica or, through PostgreSQL, on every other.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Notice {
    /// History points written.
    #[serde(default, rename = "p", skip_serializing_if = "Vec::is_empty")]
    pub points: Vec<i64>,
    /// Sync runs recorded.
    #[serde(default, rename = "s", skip_serializing_if = "Vec::is_empty")]
    pub sync_runs: Vec<i64>,
}

impl Notice {
    /// Whether there is nothing to announce.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty() && self.sync_runs.is_empty()
    }
}
