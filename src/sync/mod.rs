//! Running queries against BigQuery and recording what they returned:
//! linking (validate, then save), changing a query, one run of a data
//! source, and testing connections. Each BigQuery call happens outside any
//! database transaction; only its outcome is written, in one. What a write
//! committed comes back as a [`Notice`](crate::store::Notice); publishing it
//! is the caller's job ([`crate::service`]).
//!
//! One data source never runs twice at once across replicas: a lease in the
//! database (claimed with `FOR UPDATE SKIP LOCKED` on PostgreSQL) keeps
//! others out until the run is recorded or the lease lapses.

pub mod connection_test;
pub mod link;
pub mod run;
pub mod schedule;
pub mod scheduler;

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use entity::connection;
use sea_orm::DatabaseConnection;

use crate::{
    bigquery::{QueryParams, Target, Warehouse, WarehouseError},
    domain::{progress::Period, sql_guard, warehouse::SyncInterval},
};

/// How the syncer paces itself.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Interval of a data source linked without one.
    pub default_interval: SyncInterval,
    /// How long a claimed run keeps other replicas away.
    pub lease: Duration,
    /// Least time between two refreshes of one data source.
    pub refresh_min_interval: Duration,
    /// This replica's name on the leases it holds.
    pub replica: String,
}

/// Runs data sources against BigQuery and records what happened.
#[derive(Clone)]
pub struct Syncer {
    db: DatabaseConnection,
    warehouse: Arc<Warehouse>,
    settings: Arc<SyncSettings>,
}

impl Syncer {
    /// A syncer over this database and warehouse.
    pub fn new(db: DatabaseConnection, warehouse: Arc<Warehouse>, settings: SyncSettings) -> Self {
        Syncer {
            db,
            warehouse,
            settings: Arc::new(settings),
        }
    }

    /// The database.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The pacing settings.
    pub fn settings(&self) -> &SyncSettings {
        &self.settings
    }

    /// The warehouse in use.
    pub fn warehouse(&self) -> &Warehouse {
        &self.warehouse
    }

    /// The SQL guard for this warehouse.
    fn guard(&self, sql: &str) -> Result<(), WarehouseError> {
        guard(sql, self.warehouse.config().emulator_host.is_some())
    }
}

/// The BigQuery target of a connection of the organization `org` (its slug).
fn target_of(conn: &connection::Model, org: &str) -> Target {
    Target {
        org: org.to_owned(),
        readable_projects: crate::store::connections::readable_projects(conn),
        project_id: conn.project_id.clone(),
        location: conn.location.clone(),
        maximum_bytes_billed: conn.maximum_bytes_billed,
    }
}

/// The local SQL guard, checked before any BigQuery call: a dry run of a
/// script may already execute it on some BigQuery emulators, so what is not
/// one SELECT never leaves the server. Against an emulator, DuckDB's file
/// and table functions are refused too: the emulator runs with its host's
/// rights.
fn guard(sql: &str, emulator: bool) -> Result<(), WarehouseError> {
    sql_guard::check(sql).map_err(|refusal| WarehouseError::Refused {
        message: refusal.message(),
    })?;
    if emulator {
        sql_guard::check_emulator_functions(sql).map_err(|refusal| WarehouseError::NotAllowed {
            message: refusal.message(),
        })?;
    }
    Ok(())
}

/// The named parameters for a period, as of now.
fn params_for(period: Period) -> QueryParams {
    QueryParams {
        period_start: period.start,
        period_end: period.end,
        as_of: Utc::now(),
    }
}
