//! sea-orm entities, one module per table.
//!
//! Enumerations (roles, statuses, modes) are typed in [`enums`] and stored as
//! their upper-case API names in text columns.

pub mod connection;
pub mod connection_share;
pub mod data_source;
pub mod enums;
pub mod key_result;
pub mod objective;
pub mod organization;
pub mod progress_point;
pub mod sync_run;
pub mod user;
