//! Pure types and rules: no I/O, nothing of ours imported.

pub mod progress;
pub mod validate;
