//! sea-orm reads and writes, one file per aggregate. Every query is scoped
//! to the caller's organization; an id from another organization reads as
//! not found.

pub mod connections;
pub mod data_sources;
pub mod db;
pub mod events;
pub mod key_results;
pub mod objectives;
pub mod orgs;
pub mod progress;

use chrono::{DateTime, Utc};

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
