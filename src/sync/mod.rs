//! Running data sources: linking (validate, then save), changing a query,
//! refreshing on demand, the scheduler, and testing connections. Each
//! BigQuery call happens outside any database transaction; only its outcome
//! is written, in one, and its events are published after the commit.
//!
//! One data source never runs twice at once: in this process a second
//! request joins the run in flight; across replicas a lease in the database
//! (claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL) keeps others out
//! until the run is recorded or the lease lapses.

pub mod schedule;
pub mod scheduler;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use entity::{connection, data_source, organization};
use futures::{FutureExt, future::Shared};
use sea_orm::{DatabaseConnection, EntityTrait};

use crate::{
    auth::Principal,
    bigquery::{Measurement, QueryParams, Target, Warehouse, WarehouseError},
    domain::{progress::Period, validate},
    error::AppError,
    events::{EventBus, Notice},
    store::{
        connections,
        data_sources::{
            self, NewLink, Recorded, Resolved, RunFailure, RunSuccess, SettingsPatch, Trigger,
        },
        progress::ProgressChange,
    },
};

/// How the syncer paces itself.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Interval of a data source linked without one, in seconds.
    pub default_interval_seconds: i64,
    /// How long a claimed run keeps other replicas away.
    pub lease: Duration,
    /// Least time between two refreshes of one data source.
    pub refresh_min_interval: Duration,
    /// This replica's name on the leases it holds.
    pub replica: String,
}

/// A run in flight that later callers join.
type SharedRun = Shared<futures::future::BoxFuture<'static, Result<Arc<Recorded>, Arc<AppError>>>>;

/// A link request as the caller described it.
#[derive(Debug, Clone)]
pub struct LinkRequest {
    pub key_result_id: Option<String>,
    pub objective_id: Option<String>,
    pub connection_id: Option<String>,
    pub sql: String,
    pub sync_interval_seconds: Option<i64>,
}

/// Changes to a data source; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UpdateRequest {
    pub sql: Option<String>,
    pub connection_id: Option<String>,
    pub sync_interval_seconds: Option<i64>,
    pub paused: Option<bool>,
}

/// Runs data sources against BigQuery and records what happened.
#[derive(Clone)]
pub struct Syncer {
    db: DatabaseConnection,
    warehouse: Arc<Warehouse>,
    events: EventBus,
    settings: Arc<SyncSettings>,
    /// Runs in flight in this process, by data source id.
    in_flight: Arc<Mutex<HashMap<String, SharedRun>>>,
}

/// The ids an outcome announces.
fn notice_of(changes: &[ProgressChange], sync_run: Option<i64>) -> Notice {
    Notice {
        points: changes.iter().map(|c| c.point_id).collect(),
        sync_runs: sync_run.into_iter().collect(),
    }
}

/// The BigQuery target of a connection.
fn target_of(conn: &connection::Model) -> Target {
    Target {
        project_id: conn.project_id.clone(),
        location: conn.location.clone(),
        maximum_bytes_billed: conn.maximum_bytes_billed,
    }
}

/// The named parameters for a period, as of now.
fn params_for(period: Period) -> QueryParams {
    QueryParams {
        period_start: period.start,
        period_end: period.end,
        as_of: Utc::now(),
    }
}

fn success(m: Measurement, started: chrono::DateTime<Utc>, clock: Instant) -> RunSuccess {
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
    /// A syncer over this database, warehouse and event bus.
    pub fn new(
        db: DatabaseConnection,
        warehouse: Arc<Warehouse>,
        events: EventBus,
        settings: SyncSettings,
    ) -> Syncer {
        Syncer {
            db,
            warehouse,
            events,
            settings: Arc::new(settings),
            in_flight: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The event bus outcomes are published on.
    pub fn events(&self) -> &EventBus {
        &self.events
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The pacing settings.
    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// Publishes progress changes after their commit.
    pub async fn publish(&self, changes: &[ProgressChange]) {
        self.events.committed(notice_of(changes, None)).await;
    }

    /// The warehouse in use.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// The connection to link through: the one named (if the caller may use
    /// it), or the only one the caller may use.
    async fn pick_connection(
        &self,
        principal: &Principal,
        connection_id: Option<&str>,
    ) -> Result<connection::Model, AppError> {
        if let Some(id) = connection_id {
            return connections::require_usable(&self.db, principal, id).await;
        }
        let usable = connections::list_for(&self.db, principal).await?;
        match usable.as_slice() {
            [] => Err(AppError::NoConnection(
                "You have no BigQuery connection to link through; ask an admin to create one and share it with you.".to_owned(),
            )),
            [only] => Ok(only.clone()),
            several => {
                let names: Vec<String> = several.iter().map(|c| format!("'{}'", c.name)).collect();
                Err(AppError::bad_input(
                    "connectionId",
                    format!(
                        "You may use several connections ({}); say which one with connectionId.",
                        names.join(", ")
                    ),
                ))
            }
        }
    }

    /// Validates the SQL against BigQuery (dry run, then one run) and only
    /// then saves the link with its first value.
    pub async fn link(
        &self,
        principal: &Principal,
        request: LinkRequest,
    ) -> Result<data_source::Model, AppError> {
        let sql = validate::sql(&request.sql)?;
        let interval = validate::sync_interval(
            request
                .sync_interval_seconds
                .unwrap_or(self.settings.default_interval_seconds),
        )?;
        let resolved = data_sources::resolve(
            &self.db,
            &principal.org.id,
            request.key_result_id.as_deref(),
            request.objective_id.as_deref(),
        )
        .await?;
        if data_sources::of_target(&self.db, &resolved.feeds)
            .await?
            .is_some()
        {
            return Err(data_sources::already_linked());
        }
        let conn = self
            .pick_connection(principal, request.connection_id.as_deref())
            .await?;
        let id = data_sources::reserve_id();
        let mut run = self.validate(&conn, &id, &sql, &resolved).await?;
        run.next_sync_at = Some(schedule::next_sync_at(Utc::now(), interval, rand::random()));
        let recorded = data_sources::insert_linked(
            &self.db,
            &principal.org,
            &resolved,
            NewLink {
                id,
                connection_id: conn.id,
                sql,
                sync_interval_seconds: interval,
                created_by: principal.user.id.clone(),
            },
            run,
        )
        .await?;
        self.events
            .committed(notice_of(&recorded.changes, Some(recorded.sync_run_id)))
            .await;
        Ok(recorded.data_source)
    }

    async fn validate(
        &self,
        conn: &connection::Model,
        ds_id: &str,
        sql: &str,
        resolved: &Resolved,
    ) -> Result<RunSuccess, AppError> {
        let started = Utc::now();
        let clock = Instant::now();
        let labels = [("app", "okr-pulse"), ("data_source", ds_id)];
        let measurement = self
            .warehouse
            .validate(&target_of(conn), sql, params_for(resolved.period), &labels)
            .await?;
        Ok(success(measurement, started, clock))
    }

    /// Changes a data source. A new SQL or connection is validated against
    /// BigQuery before anything is saved.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        request: UpdateRequest,
    ) -> Result<data_source::Model, AppError> {
        let ds = data_sources::require(&self.db, &principal.org.id, id).await?;
        let interval = request
            .sync_interval_seconds
            .map(validate::sync_interval)
            .transpose()?;
        let new_sql = request.sql.as_deref().map(validate::sql).transpose()?;
        let new_conn = match &request.connection_id {
            Some(conn_id) => Some(connections::require_usable(&self.db, principal, conn_id).await?),
            None => None,
        };
        let mut ds = ds;
        let query_changed = new_sql.as_ref().is_some_and(|s| *s != ds.sql)
            || new_conn.as_ref().is_some_and(|c| c.id != ds.connection_id);
        if query_changed {
            let conn = match new_conn {
                Some(c) => c,
                None => connections::get(&self.db, &principal.org.id, &ds.connection_id)
                    .await?
                    .ok_or_else(|| AppError::not_found("connection", &ds.connection_id))?,
            };
            // Changing the query of a data source needs the right to use its connection.
            if !connections::can_use(&self.db, principal, &conn).await? {
                return Err(AppError::Forbidden(format!(
                    "Connection '{}' is not shared with you; you may not change queries that run through it.",
                    conn.name
                )));
            }
            let sql = new_sql.unwrap_or_else(|| ds.sql.clone());
            let resolved = data_sources::resolve_existing(&self.db, &ds).await?;
            let run = self.validate(&conn, &ds.id, &sql, &resolved).await?;
            let recorded =
                data_sources::replace_query(&self.db, &principal.org, &ds.id, conn.id, sql, run)
                    .await?;
            self.events
                .committed(notice_of(&recorded.changes, Some(recorded.sync_run_id)))
                .await;
            ds = recorded.data_source;
        }
        if interval.is_some() || request.paused.is_some() {
            ds = data_sources::update_settings(
                &self.db,
                ds,
                SettingsPatch {
                    sync_interval_seconds: interval,
                    paused: request.paused,
                },
            )
            .await?;
        }
        Ok(ds)
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
        if ds.state == "PAUSED" {
            return Err(AppError::bad_input(
                "id",
                "This data source is paused so that a manual check-in is kept; resume it with updateDataSource(paused: false) first.",
            ));
        }
        if let Some(run) = self.joinable(id) {
            return Ok(run.await.map_err(|e| e.replicate())?.data_source.clone());
        }
        if let Some(last) = data_sources::last_refresh(&self.db, id).await? {
            let min =
                chrono::Duration::from_std(self.settings.refresh_min_interval).unwrap_or_default();
            let next_allowed = last + min;
            if Utc::now() < next_allowed {
                let wait = (next_allowed - Utc::now()).num_milliseconds().max(0) as f64 / 1000.0;
                return Err(AppError::RateLimited(format!(
                    "This data source was refreshed moments ago; try again in {wait:.1} s."
                )));
            }
        }
        let recorded = self
            .run_once(principal.org.clone(), ds, Trigger::Refresh)
            .await?;
        Ok(recorded.data_source.clone())
    }

    /// The run of this data source in flight in this process, if any.
    fn joinable(&self, id: &str) -> Option<SharedRun> {
        self.in_flight.lock().ok()?.get(id).cloned()
    }

    /// Runs a data source unless it is running already, in which case the
    /// caller joins that run. Another replica's live lease is waited out.
    pub async fn run_once(
        &self,
        org: organization::Model,
        ds: data_source::Model,
        trigger: Trigger,
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
                // The run goes on even if every caller goes away, so that
                // what BigQuery answered is always recorded.
                let handle = tokio::spawn(async move {
                    let outcome = this.run_leased(&org, ds, trigger).await;
                    if let Ok(mut in_flight) = this.in_flight.lock() {
                        in_flight.remove(&task_id);
                    }
                    outcome.map(Arc::new).map_err(Arc::new)
                });
                let run: SharedRun = async move {
                    handle.await.unwrap_or_else(|err| {
                        Err(Arc::new(AppError::internal(anyhow::anyhow!(
                            "sync task failed: {err}"
                        ))))
                    })
                }
                .boxed()
                .shared();
                in_flight.insert(id, run.clone());
                run
            }
        };
        shared.await.map_err(|e| e.replicate())
    }

    /// Takes the lease (waiting out another replica's), runs, records.
    async fn run_leased(
        &self,
        org: &organization::Model,
        ds: data_source::Model,
        trigger: Trigger,
    ) -> Result<Recorded, AppError> {
        let lease = chrono::Duration::from_std(self.settings.lease).unwrap_or_default();
        let replica = self.settings.replica.as_str();
        let already_ours = ds.lease_owner.as_deref() == Some(replica)
            && ds.lease_expires_at.is_some_and(|t| t > Utc::now());
        if !already_ours {
            let deadline = Instant::now() + self.settings.lease;
            loop {
                let now = Utc::now();
                if data_sources::claim_one(&self.db, &ds.id, replica, now, now + lease).await? {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(AppError::Conflict(
                        "Another server is still running this data source; try again shortly."
                            .to_owned(),
                    ));
                }
                // Another replica runs it: wait for its outcome and join it.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let current = data_sources::require(&self.db, &org.id, &ds.id).await?;
                if current.lease_owner.is_none()
                    && current.last_synced_at.max(current.last_error_at)
                        > ds.last_synced_at.max(ds.last_error_at)
                {
                    return Ok(Recorded {
                        data_source: current,
                        changes: Vec::new(),
                        sync_run_id: 0,
                    });
                }
            }
        }
        let outcome = self.execute(org, &ds, trigger).await;
        if outcome.is_err() {
            let _ = data_sources::release(&self.db, &ds.id, replica).await;
        }
        let recorded = outcome?;
        self.events
            .committed(notice_of(&recorded.changes, Some(recorded.sync_run_id)))
            .await;
        Ok(recorded)
    }

    /// One run of a data source against BigQuery, recorded.
    async fn execute(
        &self,
        org: &organization::Model,
        ds: &data_source::Model,
        trigger: Trigger,
    ) -> Result<Recorded, AppError> {
        let conn = connections::get(&self.db, &org.id, &ds.connection_id)
            .await?
            .ok_or_else(|| AppError::not_found("connection", &ds.connection_id))?;
        let resolved = data_sources::resolve_existing(&self.db, ds).await?;
        let started = Utc::now();
        let clock = Instant::now();
        let labels = [("app", "okr-pulse"), ("data_source", ds.id.as_str())];
        let outcome = self
            .warehouse
            .measure(
                &target_of(&conn),
                &ds.sql,
                params_for(resolved.period),
                &labels,
            )
            .await;
        match outcome {
            Ok(m) => {
                let mut run = success(m, started, clock);
                run.next_sync_at = Some(schedule::next_sync_at(
                    Utc::now(),
                    ds.sync_interval_seconds,
                    rand::random(),
                ));
                tracing::info!(
                    data_source_id = %ds.id,
                    job_id = run.job_id.as_deref().unwrap_or(""),
                    bytes = run.bytes_processed.unwrap_or(0),
                    duration_ms = run.duration_ms,
                    "data source synced"
                );
                data_sources::record_success(&self.db, org, &ds.id, trigger, run).await
            }
            Err(err) => {
                let fail = failure(&err, started, clock);
                tracing::warn!(
                    data_source_id = %ds.id,
                    code = fail.code,
                    reason = fail.reason.as_deref().unwrap_or(""),
                    transient = fail.transient,
                    "data source sync failed"
                );
                data_sources::record_failure(&self.db, &org.id, &ds.id, trigger, fail).await
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

    /// Dry-runs in the connection's project and stores the outcome.
    pub async fn test_connection(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<connection::Model, AppError> {
        let conn = connections::require_managed(&self.db, principal, id).await?;
        let (ok, message) = match self.warehouse.test(&target_of(&conn)).await {
            Ok(()) => (
                true,
                format!(
                    "The server can run queries in project '{}'.",
                    conn.project_id
                ),
            ),
            Err(err) => (false, err.message()),
        };
        connections::record_test(&self.db, conn, ok, message).await
    }
}
