//! sea-orm entities, one module per table.
//!
//! Enumerations (roles, statuses, modes) are stored as their upper-case
//! GraphQL names in text columns so that SQLite and PostgreSQL hold the same
//! values and a person reading the database sees the API's words.

pub mod connection;
pub mod connection_share;
pub mod data_source;
pub mod key_result;
pub mod objective;
pub mod organization;
pub mod progress_point;
pub mod sync_run;
pub mod user;
