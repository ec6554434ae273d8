//! Running data sources: linking (validate, then save), changing a query,
//! refreshing on demand, and testing connections. Each BigQuery call happens
//! outside any database transaction; only its outcome is written, in one.

use std::{sync::Arc, time::Instant};

use chrono::Utc;
use entity::{connection, data_source};
use sea_orm::DatabaseConnection;

use crate::{
    auth::Principal,
    bigquery::{Measurement, QueryParams, Target, Warehouse, WarehouseError},
    domain::{progress::Period, validate},
    error::AppError,
    store::{
        connections,
        data_sources::{self, NewLink, Resolved, RunFailure, RunSuccess, SettingsPatch, Trigger},
        progress::ProgressChange,
    },
};

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
    /// Interval of a data source linked without one.
    default_interval_seconds: i64,
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
    /// A syncer over this database and warehouse.
    pub fn new(
        db: DatabaseConnection,
        warehouse: Arc<Warehouse>,
        default_interval_seconds: i64,
    ) -> Syncer {
        Syncer {
            db,
            warehouse,
            default_interval_seconds,
        }
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
    ) -> Result<(data_source::Model, Vec<ProgressChange>), AppError> {
        let sql = validate::sql(&request.sql)?;
        let interval = validate::sync_interval(
            request
                .sync_interval_seconds
                .unwrap_or(self.default_interval_seconds),
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
        let run = self.validate(&conn, &id, &sql, &resolved).await?;
        data_sources::insert_linked(
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
        .await
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
    ) -> Result<(data_source::Model, Vec<ProgressChange>), AppError> {
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
        let mut changes = Vec::new();
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
            let (updated, c) =
                data_sources::replace_query(&self.db, &principal.org, &ds.id, conn.id, sql, run)
                    .await?;
            changes = c;
            ds = updated;
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
        Ok((ds, changes))
    }

    /// Runs a data source now and records the outcome. A BigQuery failure is
    /// recorded on the data source (state `ERROR`, `lastError`) rather than
    /// returned as an error; the last good value stays.
    pub async fn refresh(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(data_source::Model, Vec<ProgressChange>), AppError> {
        let ds = data_sources::require(&self.db, &principal.org.id, id).await?;
        if ds.state == "PAUSED" {
            return Err(AppError::bad_input(
                "id",
                "This data source is paused so that a manual check-in is kept; resume it with updateDataSource(paused: false) first.",
            ));
        }
        self.run(&principal.org, ds, Trigger::Refresh).await
    }

    /// One run of a data source, recorded.
    pub async fn run(
        &self,
        org: &entity::organization::Model,
        ds: data_source::Model,
        trigger: Trigger,
    ) -> Result<(data_source::Model, Vec<ProgressChange>), AppError> {
        let conn = connections::get(&self.db, &org.id, &ds.connection_id)
            .await?
            .ok_or_else(|| AppError::not_found("connection", &ds.connection_id))?;
        let resolved = data_sources::resolve_existing(&self.db, &ds).await?;
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
                let run = success(m, started, clock);
                tracing::info!(
                    data_source_id = %ds.id,
                    job_id = run.job_id.as_deref().unwrap_or(""),
                    bytes = run.bytes_processed.unwrap_or(0),
                    duration_ms = run.duration_ms,
                    "data source synced"
                );
                let (updated, _changed, changes) =
                    data_sources::record_success(&self.db, org, &ds.id, trigger, run).await?;
                Ok((updated, changes))
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
                let updated =
                    data_sources::record_failure(&self.db, &org.id, &ds.id, trigger, fail).await?;
                Ok((updated, Vec::new()))
            }
        }
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
