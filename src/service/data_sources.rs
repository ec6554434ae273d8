//! Linking, changing, refreshing and unlinking data sources, and the runs
//! the scheduler starts. A run of one data source that is already running
//! in this process is joined, not repeated.

use std::sync::Arc;

use chrono::Utc;
use entity::{
    data_source,
    enums::{DataSourceState, SyncTrigger},
    organization,
};
use futures::FutureExt;

use crate::{
    domain::inputs::{DataSourcePatch, NewLink},
    error::AppError,
    store::{
        Principal, connections, data_sources, lease,
        runs::{self, Recorded},
    },
    sync::{link::Preview, scheduler::Work},
};

use super::{Service, SharedRun};

impl Service {
    /// Validates the SQL against BigQuery and saves the link with its first value.
    pub async fn link(
        &self,
        principal: &Principal,
        link: NewLink,
    ) -> Result<data_source::Model, AppError> {
        let committed = self.syncer.link(principal, link).await?;
        Ok(self.published(committed).await)
    }

    /// What linking would return, saving nothing.
    pub async fn preview(&self, principal: &Principal, link: NewLink) -> Result<Preview, AppError> {
        self.syncer.preview(principal, link).await
    }

    /// Changes a data source; a new SQL or connection is validated first.
    pub async fn update_data_source(
        &self,
        principal: &Principal,
        id: &str,
        patch: DataSourcePatch,
    ) -> Result<data_source::Model, AppError> {
        let committed = self.syncer.update(principal, id, patch).await?;
        Ok(self.published(committed).await)
    }

    /// Removes a data source; the values it recorded stay.
    pub async fn unlink(&self, principal: &Principal, id: &str) -> Result<(), AppError> {
        let ds = data_sources::require(&self.db, &principal.org.id, id).await?;
        connections::require_usable_for(&self.db, principal, &ds).await?;
        data_sources::delete(&self.db, &principal.org.id, id).await
    }

    /// Runs a data source now and records the outcome. A BigQuery failure is
    /// recorded on the data source (state `ERROR`, `lastError`) rather than
    /// returned as an error; the last good value stays. A refresh while the
    /// data source is already running joins that run; refreshes closer
    /// together than the configured minimum are refused with `RATE_LIMITED`.
    pub async fn refresh(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<data_source::Model, AppError> {
        let ds = data_sources::require(&self.db, &principal.org.id, id).await?;
        connections::require_usable_for(&self.db, principal, &ds).await?;
        if ds.state == DataSourceState::Paused {
            return Err(AppError::bad_input(
                "id",
                "This data source is paused so that a manual check-in is kept; resume it with updateDataSource(paused: false) first.",
            ));
        }
        if let Some(run) = self.joinable(id) {
            return Ok(run.await?.data_source.clone());
        }
        if let Some(last) = runs::last_refresh(&self.db, id).await? {
            let min = chrono::Duration::from_std(self.syncer.settings().refresh_min_interval)
                .unwrap_or_default();
            let next_allowed = last + min;
            if Utc::now() < next_allowed {
                let wait = (next_allowed - Utc::now()).num_milliseconds().max(0) as f64 / 1000.0;
                return Err(AppError::RateLimited(format!(
                    "This data source was refreshed moments ago; try again in {wait:.1} s."
                )));
            }
        }
        let recorded = self
            .run_once(principal.org.clone(), ds, SyncTrigger::Refresh)
            .await?;
        Ok(recorded.data_source.clone())
    }

    /// The run of this data source in flight in this process, if any.
    fn joinable(&self, id: &str) -> Option<SharedRun> {
        self.in_flight.lock().ok()?.get(id).cloned()
    }

    /// Runs a data source unless it is running already, in which case the
    /// caller joins that run. The run goes on even if every caller goes
    /// away, so that what BigQuery answered is always recorded and published.
    pub async fn run_once(
        &self,
        org: organization::Model,
        ds: data_source::Model,
        trigger: SyncTrigger,
    ) -> Result<Arc<Recorded>, AppError> {
        let id = ds.id.clone();
        let shared = {
            let mut in_flight = self
                .in_flight
                .lock()
                .map_err(|_| AppError::internal(anyhow::anyhow!("in-flight map poisoned")))?;
            if let Some(run) = in_flight.get(&id) {
                run.clone()
            } else {
                let this = self.clone();
                let task_id = id.clone();
                let handle = self.shutdown.spawn(async move {
                    let outcome = this.syncer.run(&org, ds, trigger).await;
                    if let Ok(recorded) = &outcome {
                        this.runs.add();
                        this.events.committed(recorded.notice.clone()).await;
                    }
                    if let Ok(mut in_flight) = this.in_flight.lock() {
                        in_flight.remove(&task_id);
                    }
                    outcome.map(Arc::new)
                });
                let run: SharedRun = async move {
                    handle.await.unwrap_or_else(|err| {
                        Err(AppError::internal(anyhow::anyhow!(
                            "sync task failed: {err}"
                        )))
                    })
                }
                .boxed()
                .shared();
                in_flight.insert(id, run.clone());
                run
            }
        };
        shared.await
    }
}

/// Data sources claimed in the database and run through the service.
pub struct DataSourceWork(pub Service);

impl Work for DataSourceWork {
    type Job = data_source::Model;

    async fn claim(&self, limit: usize) -> Result<Vec<Self::Job>, AppError> {
        let settings = self.0.syncer.settings();
        let now = Utc::now();
        let lease_for = chrono::Duration::from_std(settings.lease).unwrap_or_default();
        lease::claim_due(
            &self.0.db,
            &settings.replica,
            now,
            now + lease_for,
            limit as u64,
        )
        .await
    }

    fn connection_of(job: &Self::Job) -> String {
        job.connection_id.clone()
    }

    async fn run(&self, ds: Self::Job) {
        let id = ds.id.clone();
        let outcome = match self.0.syncer.org_of(&ds).await {
            Ok(org) => self
                .0
                .run_once(org, ds, SyncTrigger::Sync)
                .await
                .map(|_| ()),
            Err(err) => Err(err),
        };
        if let Err(err) = outcome {
            tracing::error!(data_source_id = %id, error = ?err, "scheduled sync failed");
        }
    }

    async fn release(&self, ds: Self::Job) {
        let replica = &self.0.syncer.settings().replica;
        if let Err(err) = lease::release(&self.0.db, &ds.id, replica).await {
            tracing::warn!(data_source_id = %ds.id, error = ?err, "could not release a lease");
        }
    }
}
