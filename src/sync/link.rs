//! Linking a query to an objective or key result, previewing one, and
//! changing a linked query: the SQL is checked against BigQuery (a dry run,
//! then one real run) before anything is saved.

use std::time::Instant;

use chrono::Utc;
use entity::{connection, data_source};

use crate::{
    domain::inputs::{DataSourcePatch, NewLink},
    error::AppError,
    store::{
        Notice, Principal, connections,
        data_sources::{self, SettingsPatch, Target},
        runs::{self, RunSuccess},
    },
};

use super::{Syncer, params_for, run::success, schedule, target_of};

/// What a query returned when previewed, without saving anything.
#[derive(Debug, Clone)]
pub struct Preview {
    pub value: f64,
    pub bytes_processed: Option<i64>,
    pub job_id: Option<String>,
    /// The connection it ran through.
    pub connection: connection::Model,
}

impl Syncer {
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

    /// The target and connection of a link, checked: the node exists (and
    /// takes values from a query) and has no data source yet.
    async fn prepare(
        &self,
        principal: &Principal,
        link: &NewLink,
    ) -> Result<(Target, connection::Model), AppError> {
        let target = data_sources::resolve(&self.db, &principal.org.id, &link.node).await?;
        if data_sources::of_node(&self.db, &target.node)
            .await?
            .is_some()
        {
            return Err(data_sources::already_linked());
        }
        let conn = self
            .pick_connection(principal, link.connection_id.as_deref())
            .await?;
        Ok((target, conn))
    }

    /// Validates the SQL against BigQuery (dry run, then one run) and only
    /// then saves the link with its first value.
    pub async fn link(
        &self,
        principal: &Principal,
        link: NewLink,
    ) -> Result<(data_source::Model, Notice), AppError> {
        let interval = link.interval.unwrap_or(self.settings.default_interval);
        let (target, conn) = self.prepare(principal, &link).await?;
        let id = data_sources::reserve_id();
        let mut run = self
            .validate(&principal.org.slug, &conn, &id, link.sql.as_str(), &target)
            .await?;
        run.next_sync_at = Some(schedule::next_sync_at(
            Utc::now(),
            interval.seconds(),
            rand::random(),
        ));
        let recorded = runs::insert_linked(
            &self.db,
            &principal.org,
            &target,
            runs::NewLink {
                id,
                connection_id: conn.id,
                sql: link.sql.into_inner(),
                sync_interval_seconds: interval.seconds(),
                created_by: principal.user.id.clone(),
            },
            run,
        )
        .await?;
        Ok((recorded.data_source, recorded.notice))
    }

    /// Runs exactly the checks of [`Syncer::link`] and returns the value,
    /// saving nothing.
    pub async fn preview(&self, principal: &Principal, link: NewLink) -> Result<Preview, AppError> {
        let (target, conn) = self.prepare(principal, &link).await?;
        let run = self
            .validate(
                &principal.org.slug,
                &conn,
                "preview",
                link.sql.as_str(),
                &target,
            )
            .await?;
        Ok(Preview {
            value: run.value,
            bytes_processed: run.bytes_processed,
            job_id: run.job_id,
            connection: conn,
        })
    }

    async fn validate(
        &self,
        org: &str,
        conn: &connection::Model,
        ds_id: &str,
        sql: &str,
        target: &Target,
    ) -> Result<RunSuccess, AppError> {
        self.guard(sql)?;
        let started = Utc::now();
        let clock = Instant::now();
        let labels = [("app", "okr-pulse"), ("data_source", ds_id)];
        let measurement = self
            .warehouse
            .validate(
                &target_of(conn, org),
                sql,
                params_for(target.period),
                &labels,
            )
            .await?;
        Ok(success(measurement, started, clock))
    }

    /// Changes a data source. A new SQL or connection is validated against
    /// BigQuery before anything is saved.
    pub async fn update(
        &self,
        principal: &Principal,
        id: &str,
        patch: DataSourcePatch,
    ) -> Result<(data_source::Model, Notice), AppError> {
        let mut ds = data_sources::require(&self.db, &principal.org.id, id).await?;
        let current = connections::require_usable_for(&self.db, principal, &ds).await?;
        let new_conn = match &patch.connection_id {
            Some(conn_id) => Some(connections::require_usable(&self.db, principal, conn_id).await?),
            None => None,
        };
        let query_changed = patch.sql.as_ref().is_some_and(|s| s.as_str() != ds.sql)
            || new_conn.as_ref().is_some_and(|c| c.id != ds.connection_id);
        let mut notice = Notice::default();
        if query_changed {
            let conn = new_conn.unwrap_or(current);
            let sql = patch.sql.map_or_else(|| ds.sql.clone(), |s| s.into_inner());
            let target = data_sources::resolve_existing(&self.db, &ds).await?;
            let run = self
                .validate(&principal.org.slug, &conn, &ds.id, &sql, &target)
                .await?;
            let recorded =
                runs::replace_query(&self.db, &principal.org, &ds.id, conn.id, sql, run).await?;
            notice = recorded.notice;
            ds = recorded.data_source;
        }
        if patch.interval.is_some() || patch.paused.is_some() {
            ds = data_sources::update_settings(
                &self.db,
                ds,
                SettingsPatch {
                    interval: patch.interval,
                    paused: patch.paused,
                },
            )
            .await?;
        }
        Ok((ds, notice))
    }
}
