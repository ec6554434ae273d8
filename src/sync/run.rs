//! One run of a data source: take the lease (waiting out another
//! replica's), run the query, record the outcome.

use std::time::{Duration, Instant};

use chrono::Utc;
use entity::{data_source, enums::SyncTrigger, organization};
use sea_orm::EntityTrait;

use crate::{
    bigquery::{Measurement, WarehouseError},
    error::AppError,
    store::{
        Notice, connections, data_sources, lease,
        runs::{self, Recorded, RunFailure, RunSuccess},
    },
};

use super::{Syncer, params_for, schedule, target_of};

/// A run that produced a number, timed from `started`.
pub(super) fn success(
    m: Measurement,
    started: chrono::DateTime<Utc>,
    clock: Instant,
) -> RunSuccess {
    RunSuccess {
        value: m.value,
        next_sync_at: None,
        job_id: m.job.job_id,
        bytes_processed: m.job.bytes_processed,
        attempts: m.job.attempts.max(1),
        started_at: started,
        duration_ms: clock.elapsed().as_millis() as i64,
    }
}

/// A run that failed, timed from `started`.
fn failure(err: &WarehouseError, started: chrono::DateTime<Utc>, clock: Instant) -> RunFailure {
    let attempts = match err {
        WarehouseError::Service { attempts, .. } => (*attempts).max(1),
        _ => 1,
    };
    RunFailure {
        code: err.code(),
        reason: err.reason().map(str::to_owned),
        message: err.message(),
        transient: err.is_transient(),
        attempts,
        started_at: started,
        duration_ms: clock.elapsed().as_millis() as i64,
    }
}

impl Syncer {
    /// Takes the lease (waiting out another replica's), runs, records. A
    /// BigQuery failure is recorded on the data source, not returned.
    #[tracing::instrument(skip_all, fields(data_source_id = %ds.id, org_id = %ds.org_id, ?trigger))]
    pub async fn run(
        &self,
        org: &organization::Model,
        ds: data_source::Model,
        trigger: SyncTrigger,
    ) -> Result<Recorded, AppError> {
        let lease_for = chrono::Duration::from_std(self.settings.lease).unwrap_or_default();
        let replica = self.settings.replica.as_str();
        let already_ours = ds.lease_owner.as_deref() == Some(replica)
            && ds.lease_expires_at.is_some_and(|t| t > Utc::now());
        if !already_ours {
            let deadline = Instant::now() + self.settings.lease;
            loop {
                let now = Utc::now();
                if lease::claim_one(&self.db, &ds.id, replica, now, now + lease_for).await? {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(AppError::Conflict(
                        "Another server is still running this data source; try again shortly."
                            .to_owned(),
                    ));
                }
                // Another replica runs it: wait for its outcome and take that.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let current = data_sources::require(&self.db, &org.id, &ds.id).await?;
                if current.lease_owner.is_none()
                    && current.last_synced_at.max(current.last_error_at)
                        > ds.last_synced_at.max(ds.last_error_at)
                {
                    return Ok(Recorded {
                        data_source: current,
                        notice: Notice::default(),
                    });
                }
            }
        }
        let outcome = self.execute(org, &ds, trigger).await;
        if outcome.is_err() {
            let _ = lease::release(&self.db, &ds.id, replica).await;
        }
        outcome
    }

    /// One run of a data source against BigQuery, recorded.
    async fn execute(
        &self,
        org: &organization::Model,
        ds: &data_source::Model,
        trigger: SyncTrigger,
    ) -> Result<Recorded, AppError> {
        let conn = connections::get(&self.db, &org.id, &ds.connection_id)
            .await?
            .ok_or_else(|| AppError::not_found("connection", &ds.connection_id))?;
        let target = data_sources::resolve_existing(&self.db, ds).await?;
        let started = Utc::now();
        let clock = Instant::now();
        let labels = [("app", "okr-pulse"), ("data_source", ds.id.as_str())];
        let outcome = match self.guard(&ds.sql) {
            Ok(()) => {
                self.warehouse
                    .measure(
                        &target_of(&conn, &org.slug),
                        &ds.sql,
                        params_for(target.period),
                        &labels,
                    )
                    .await
            }
            Err(refused) => Err(refused),
        };
        match outcome {
            Ok(m) => {
                let mut run = success(m, started, clock);
                run.next_sync_at = Some(schedule::next_sync_at(
                    Utc::now(),
                    ds.sync_interval_seconds,
                    rand::random(),
                ));
                tracing::info!(
                    job_id = run.job_id.as_deref().unwrap_or(""),
                    bytes = run.bytes_processed.unwrap_or(0),
                    duration_ms = run.duration_ms,
                    "data source synced"
                );
                runs::record_success(&self.db, org, &ds.id, trigger, run).await
            }
            Err(err) => {
                let fail = failure(&err, started, clock);
                tracing::warn!(
                    code = fail.code,
                    reason = fail.reason.as_deref().unwrap_or(""),
                    transient = fail.transient,
                    "data source sync failed"
                );
                runs::record_failure(&self.db, &org.id, &ds.id, trigger, fail).await
            }
        }
    }

    /// The organization a data source belongs to.
    pub async fn org_of(&self, ds: &data_source::Model) -> Result<organization::Model, AppError> {
        organization::Entity::find_by_id(ds.org_id.clone())
            .one(&self.db)
            .await?
            .ok_or_else(|| AppError::not_found("organization", &ds.org_id))
    }
}
