//! Subscriptions: live progress and sync events of the caller's organization.

use async_graphql::{Context, ID, Result, SimpleObject, Subscription};
use chrono::{DateTime, Utc};
use futures::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

use crate::events::{Event, ProgressEvent as Progress, SyncEvent as Sync};

use super::{
    RequestContext,
    bigquery::{DataSourceState, syncer},
    types::{ProgressSource, Status},
};

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
            status: e.status.into(),
            previous_status: e.previous_status.into(),
            source: match e.source.as_str() {
                "SYNC" => ProgressSource::Sync,
                "REFRESH" => ProgressSource::Refresh,
                "ROLL_UP" => ProgressSource::RollUp,
                _ => ProgressSource::CheckIn,
            },
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
            state: match e.state.as_str() {
                "OK" => DataSourceState::Ok,
                "ERROR" => DataSourceState::Error,
                "PAUSED" => DataSourceState::Paused,
                _ => DataSourceState::Pending,
            },
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

/// Live events.
#[derive(Default)]
pub struct EventSubscription;

#[Subscription]
impl EventSubscription {
    /// Progress changes in the caller's organization. With `objectiveId`:
    /// that objective, its key results and every descendant. With
    /// `keyResultId`: that key result. With neither: everything.
    async fn progress_changed(
        &self,
        ctx: &Context<'_>,
        objective_id: Option<ID>,
        key_result_id: Option<ID>,
    ) -> Result<impl Stream<Item = ProgressEvent> + use<>> {
        let org_id = ctx.principal()?.org.id.clone();
        let receiver = syncer(ctx).events().subscribe();
        Ok(BroadcastStream::new(receiver).filter_map(move |item| {
            let keep = match &item {
                // A subscriber that fell behind skips to the newest events.
                Ok(Event::Progress(e)) => {
                    e.org_id == org_id
                        && objective_id
                            .as_ref()
                            .is_none_or(|o| e.lineage.contains(&o.0))
                        && key_result_id
                            .as_ref()
                            .is_none_or(|k| e.key_result_id.as_deref() == Some(k.0.as_str()))
                }
                _ => false,
            };
            let out = match (keep, item) {
                (true, Ok(Event::Progress(e))) => Some(ProgressEvent::from(e.as_ref())),
                _ => None,
            };
            async move { out }
        }))
    }

    /// Sync outcomes in the caller's organization, of one data source or all.
    async fn data_source_synced(
        &self,
        ctx: &Context<'_>,
        data_source_id: Option<ID>,
    ) -> Result<impl Stream<Item = SyncEvent> + use<>> {
        let org_id = ctx.principal()?.org.id.clone();
        let receiver = syncer(ctx).events().subscribe();
        Ok(BroadcastStream::new(receiver).filter_map(move |item| {
            let out = match item {
                Ok(Event::Sync(e))
                    if e.org_id == org_id
                        && data_source_id
                            .as_ref()
                            .is_none_or(|d| d.0 == e.data_source_id) =>
                {
                    Some(SyncEvent::from(e.as_ref()))
                }
                _ => None,
            };
            async move { out }
        }))
    }
}
