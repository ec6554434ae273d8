//! The events subscribers receive.

use async_graphql::{ID, SimpleObject};
use chrono::{DateTime, Utc};
use entity::enums::{DataSourceState, ProgressSource, Status};

use crate::events::{ProgressEvent as Progress, SyncEvent as Sync};

/// A committed change of an objective's or key result's progress.
#[derive(SimpleObject, Clone)]
pub struct ProgressEvent {
    pub objective_id: ID,
    /// Null for the objective's own change.
    pub key_result_id: Option<ID>,
    pub value: Option<f64>,
    pub previous_value: Option<f64>,
    pub progress: Option<f64>,
    pub previous_progress: Option<f64>,
    pub status: Status,
    pub previous_status: Status,
    pub source: ProgressSource,
    pub at: DateTime<Utc>,
}

impl From<&Progress> for ProgressEvent {
    fn from(e: &Progress) -> Self {
        ProgressEvent {
            objective_id: e.objective_id.clone().into(),
            key_result_id: e.key_result_id.clone().map(ID),
            value: e.value,
            previous_value: e.previous_value,
            progress: e.progress,
            previous_progress: e.previous_progress,
            status: e.status,
            previous_status: e.previous_status,
            source: e.source,
            at: e.at,
        }
    }
}

/// Why a sync failed.
#[derive(SimpleObject, Clone)]
pub struct SyncEventError {
    pub code: String,
    pub message: String,
}

/// The outcome of one run of a data source.
#[derive(SimpleObject, Clone)]
pub struct SyncEvent {
    pub data_source_id: ID,
    pub objective_id: Option<ID>,
    pub key_result_id: Option<ID>,
    pub state: DataSourceState,
    pub value: Option<f64>,
    /// Whether the value moved.
    pub changed: bool,
    /// Null on success.
    pub error: Option<SyncEventError>,
    pub job_id: Option<String>,
    pub at: DateTime<Utc>,
}

impl From<&Sync> for SyncEvent {
    fn from(e: &Sync) -> Self {
        SyncEvent {
            data_source_id: e.data_source_id.clone().into(),
            objective_id: e.objective_id.clone().map(ID),
            key_result_id: e.key_result_id.clone().map(ID),
            state: e.state,
            value: e.value,
            changed: e.changed,
            error: e
                .error
                .clone()
                .map(|(code, message)| SyncEventError { code, message }),
            job_id: e.job_id.clone(),
            at: e.at,
        }
    }
}
