//! The outcome of every run: the sync log, the value a successful run
//! records (through [`record_value`], the same path a check-in takes, so
//! history and roll-up behave identically whatever the value's source), and
//! the error a failed run leaves while the last good value stays.

use chrono::{DateTime, Duration, Utc};
use entity::{
    data_source,
    enums::{DataSourceState, SyncOutcome, SyncTrigger},
    organization, sync_run,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};

use crate::error::AppError;

use super::{
    Notice,
    data_sources::{Target, already_linked, require, resolve_existing},
    now,
    record::{NewValue, record_value},
};

/// A run that produced a number.
#[derive(Debug, Clone)]
pub struct RunSuccess {
    pub value: f64,
    /// When to run next (the caller adds jitter).
    pub next_sync_at: Option<DateTime<Utc>>,
    pub job_id: Option<String>,
    pub bytes_processed: Option<i64>,
    pub attempts: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
}

/// A run that did not.
#[derive(Debug, Clone)]
pub struct RunFailure {
    pub code: &'static str,
    pub reason: Option<String>,
    pub message: String,
    pub transient: bool,
    pub attempts: u32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i64,
}

/// How to link: everything already validated against BigQuery.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub id: String,
    pub connection_id: String,
    pub sql: String,
    pub sync_interval_seconds: i64,
    pub created_by: String,
}

/// What one recorded run left behind.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub data_source: data_source::Model,
    /// The history points and the sync run it wrote, to publish.
    pub notice: Notice,
}

/// Saves a validated link, its first run and its first value, in one transaction.
pub async fn insert_linked(
    db: &DatabaseConnection,
    org: &organization::Model,
    target: &Target,
    link: NewLink,
    run: RunSuccess,
) -> Result<Recorded, AppError> {
    let txn = db.begin().await?;
    let at = now();
    let (objective_id, key_result_id) = target.node.columns();
    let row = data_source::ActiveModel {
        id: Set(link.id.clone()),
        org_id: Set(org.id.clone()),
        connection_id: Set(link.connection_id),
        objective_id: Set(objective_id),
        key_result_id: Set(key_result_id),
        sql: Set(link.sql),
        sync_interval_seconds: Set(link.sync_interval_seconds),
        state: Set(DataSourceState::Ok),
        last_value: Set(Some(run.value)),
        last_synced_at: Set(Some(at)),
        next_sync_at: Set(at + Duration::seconds(link.sync_interval_seconds)),
        last_error_code: Set(None),
        last_error_message: Set(None),
        last_error_at: Set(None),
        last_error_reason: Set(None),
        last_error_transient: Set(None),
        consecutive_failures: Set(0),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_by: Set(link.created_by),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let model = row.insert(&txn).await.map_err(|err| match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => already_linked(),
        _ => err.into(),
    })?;
    let mut notice = Notice::default();
    insert_run(
        &txn,
        &model,
        SyncTrigger::Link,
        Ok(&run),
        SyncOutcome::Ok,
        &mut notice,
    )
    .await?;
    write_value(&txn, org, target, run.value, SyncTrigger::Link, &mut notice).await?;
    txn.commit().await?;
    Ok(Recorded {
        data_source: model,
        notice,
    })
}

async fn write_value(
    db: &impl ConnectionTrait,
    org: &organization::Model,
    target: &Target,
    value: f64,
    trigger: SyncTrigger,
    notice: &mut Notice,
) -> Result<(), AppError> {
    let input = NewValue {
        node: target.node.clone(),
        value,
        note: None,
        source: trigger.source(),
        pause_automatic_updates: false,
    };
    record_value(db, org, input, now(), notice).await?;
    Ok(())
}

async fn insert_run(
    db: &impl ConnectionTrait,
    ds: &data_source::Model,
    trigger: SyncTrigger,
    outcome: Result<&RunSuccess, &RunFailure>,
    label: SyncOutcome,
    notice: &mut Notice,
) -> Result<sync_run::Model, AppError> {
    let row = match outcome {
        Ok(run) => sync_run::ActiveModel {
            org_id: Set(ds.org_id.clone()),
            data_source_id: Set(ds.id.clone()),
            started_at: Set(run.started_at),
            duration_ms: Set(run.duration_ms),
            outcome: Set(label),
            trigger: Set(trigger),
            job_id: Set(run.job_id.clone()),
            bytes_processed: Set(run.bytes_processed),
            value: Set(Some(run.value)),
            error_code: Set(None),
            error_message: Set(None),
            error_reason: Set(None),
            attempts: Set(run.attempts as i32),
            ..Default::default()
        },
        Err(fail) => sync_run::ActiveModel {
            org_id: Set(ds.org_id.clone()),
            data_source_id: Set(ds.id.clone()),
            started_at: Set(fail.started_at),
            duration_ms: Set(fail.duration_ms),
            outcome: Set(SyncOutcome::Error),
            trigger: Set(trigger),
            job_id: Set(None),
            bytes_processed: Set(None),
            value: Set(None),
            error_code: Set(Some(fail.code.to_owned())),
            error_message: Set(Some(fail.message.clone())),
            error_reason: Set(fail.reason.clone()),
            attempts: Set(fail.attempts as i32),
            ..Default::default()
        },
    };
    let model = row.insert(db).await?;
    notice.sync_runs.push(model.id);
    Ok(model)
}

/// Records a successful run: the value (with a history point and roll-up
/// when it moved), the run, and the next sync time.
pub async fn record_success(
    db: &DatabaseConnection,
    org: &organization::Model,
    ds_id: &str,
    trigger: SyncTrigger,
    run: RunSuccess,
) -> Result<Recorded, AppError> {
    save_success(db, org, ds_id, trigger, run, None).await
}

/// Saves a validated new SQL and/or connection with the value it returned.
pub async fn replace_query(
    db: &DatabaseConnection,
    org: &organization::Model,
    ds_id: &str,
    connection_id: String,
    sql: String,
    run: RunSuccess,
) -> Result<Recorded, AppError> {
    save_success(
        db,
        org,
        ds_id,
        SyncTrigger::Link,
        run,
        Some((connection_id, sql)),
    )
    .await
}

/// The one place a successful run is written, with the new query when the
/// run validated one. A paused data source stays paused.
async fn save_success(
    db: &DatabaseConnection,
    org: &organization::Model,
    ds_id: &str,
    trigger: SyncTrigger,
    run: RunSuccess,
    new_query: Option<(String, String)>,
) -> Result<Recorded, AppError> {
    let txn = db.begin().await?;
    let ds = require(&txn, &org.id, ds_id).await?;
    let target = resolve_existing(&txn, &ds).await?;
    let changed = target.current_value != Some(run.value);
    let mut notice = Notice::default();
    let label = if changed {
        SyncOutcome::Ok
    } else {
        SyncOutcome::Unchanged
    };
    insert_run(&txn, &ds, trigger, Ok(&run), label, &mut notice).await?;
    if changed {
        write_value(&txn, org, &target, run.value, trigger, &mut notice).await?;
    }
    let at = now();
    let next = run
        .next_sync_at
        .unwrap_or(at + Duration::seconds(ds.sync_interval_seconds));
    let paused = ds.state == DataSourceState::Paused;
    let mut active: data_source::ActiveModel = ds.into();
    if let Some((connection_id, sql)) = new_query {
        active.connection_id = Set(connection_id);
        active.sql = Set(sql);
    }
    if !paused {
        active.state = Set(DataSourceState::Ok);
    }
    active.last_value = Set(Some(run.value));
    active.last_synced_at = Set(Some(at));
    active.next_sync_at = Set(next);
    active.last_error_code = Set(None);
    active.last_error_message = Set(None);
    active.last_error_at = Set(None);
    active.last_error_reason = Set(None);
    active.last_error_transient = Set(None);
    active.consecutive_failures = Set(0);
    active.lease_owner = Set(None);
    active.lease_expires_at = Set(None);
    active.updated_at = Set(at);
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(Recorded {
        data_source: updated,
        notice,
    })
}

/// Seconds until the next attempt after `failures` failures in a row: a
/// transient failure retries sooner (1, 2, 4 … minutes), never later than
/// the normal interval.
pub fn retry_after_seconds(interval: i64, failures: i32, transient: bool) -> i64 {
    if !transient {
        return interval;
    }
    let exponent = failures.clamp(1, 10) - 1;
    (60_i64 << exponent).min(interval)
}

/// Records a failed run; the last good value stays.
pub async fn record_failure(
    db: &DatabaseConnection,
    org_id: &str,
    ds_id: &str,
    trigger: SyncTrigger,
    failure: RunFailure,
) -> Result<Recorded, AppError> {
    let txn = db.begin().await?;
    let ds = require(&txn, org_id, ds_id).await?;
    let mut notice = Notice::default();
    insert_run(
        &txn,
        &ds,
        trigger,
        Err(&failure),
        SyncOutcome::Error,
        &mut notice,
    )
    .await?;
    let at = now();
    let failures = ds.consecutive_failures + 1;
    let wait = retry_after_seconds(ds.sync_interval_seconds, failures, failure.transient);
    let mut active: data_source::ActiveModel = ds.into();
    active.state = Set(DataSourceState::Error);
    active.last_error_code = Set(Some(failure.code.to_owned()));
    active.last_error_message = Set(Some(failure.message));
    active.last_error_reason = Set(failure.reason);
    active.last_error_transient = Set(Some(failure.transient));
    active.last_error_at = Set(Some(at));
    active.consecutive_failures = Set(failures);
    active.next_sync_at = Set(at + Duration::seconds(wait));
    active.lease_owner = Set(None);
    active.lease_expires_at = Set(None);
    active.updated_at = Set(at);
    let updated = active.update(&txn).await?;
    txn.commit().await?;
    Ok(Recorded {
        data_source: updated,
        notice,
    })
}

/// The newest sync runs of a data source, newest first.
pub async fn recent_runs(
    db: &impl ConnectionTrait,
    data_source_id: &str,
    limit: u64,
) -> Result<Vec<sync_run::Model>, AppError> {
    Ok(sync_run::Entity::find()
        .filter(sync_run::Column::DataSourceId.eq(data_source_id))
        .order_by_desc(sync_run::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// When the last refresh of a data source started, if any.
pub async fn last_refresh(
    db: &impl ConnectionTrait,
    data_source_id: &str,
) -> Result<Option<DateTime<Utc>>, AppError> {
    Ok(sync_run::Entity::find()
        .select_only()
        .column(sync_run::Column::StartedAt)
        .filter(sync_run::Column::DataSourceId.eq(data_source_id))
        .filter(sync_run::Column::Trigger.eq(SyncTrigger::Refresh))
        .order_by_desc(sync_run::Column::Id)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_failures_retry_sooner_but_never_later_than_the_interval() {
        assert_eq!(retry_after_seconds(3600, 1, true), 60);
        assert_eq!(retry_after_seconds(3600, 2, true), 120);
        assert_eq!(retry_after_seconds(3600, 7, true), 3600);
        assert_eq!(retry_after_seconds(30, 1, true), 30);
    }

    #[test]
    fn permanent_failures_wait_for_the_normal_interval() {
        assert_eq!(retry_after_seconds(3600, 1, false), 3600);
    }
}
