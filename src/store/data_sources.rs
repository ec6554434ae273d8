//! Data sources: which query feeds which objective or key result, the
//! outcome of every run, and the value it records.
//!
//! A successful run records its value through
//! [`progress::record_value`](super::progress::record_value), the same path a
//! check-in takes, so history and roll-up behave identically whatever the
//! value's source. A failed run records the error and keeps the last good
//! value.

use chrono::{DateTime, Duration, Utc};
use entity::{data_source, key_result, objective, organization, sync_run};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Set, SqlErr, TransactionTrait,
};

use crate::{domain::progress::Period, error::AppError};

use super::{
    new_id, now,
    progress::{NewValue, ProgressChange, ProgressMode, Source, period_of, record_value},
};

/// What a data source feeds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Feeds {
    KeyResult(String),
    Objective(String),
}

/// A data source's target, resolved and checked.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub feeds: Feeds,
    /// The period its `@period_start` / `@period_end` come from.
    pub period: Period,
    /// The value it shows now, to tell a changed value from an unchanged one.
    pub current_value: Option<f64>,
}

/// Finds the key result or objective to link, in the caller's organization.
pub async fn resolve(
    db: &impl ConnectionTrait,
    org_id: &str,
    key_result_id: Option<&str>,
    objective_id: Option<&str>,
) -> Result<Resolved, AppError> {
    match (key_result_id, objective_id) {
        (Some(kr_id), None) => {
            let kr = key_result::Entity::find_by_id(kr_id.to_owned())
                .filter(key_result::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("key result", kr_id))?;
            let o = objective::Entity::find_by_id(kr.objective_id.clone())
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("objective", &kr.objective_id))?;
            Ok(Resolved {
                feeds: Feeds::KeyResult(kr.id),
                period: period_of(&o),
                current_value: kr.current_value,
            })
        }
        (None, Some(o_id)) => {
            let o = objective::Entity::find_by_id(o_id.to_owned())
                .filter(objective::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("objective", o_id))?;
            if ProgressMode::parse(&o.progress_mode) != ProgressMode::DataSource {
                return Err(AppError::bad_input(
                    "objectiveId",
                    "Only an objective with progressMode DATA_SOURCE (and its own startValue and targetValue) takes its value from a query; update the objective first, or link a key result instead.",
                ));
            }
            Ok(Resolved {
                feeds: Feeds::Objective(o.id.clone()),
                period: period_of(&o),
                current_value: o.current_value,
            })
        }
        _ => Err(AppError::bad_input(
            "keyResultId",
            "Give exactly one of keyResultId and objectiveId.",
        )),
    }
}

/// The resolved target of an existing data source.
pub async fn resolve_existing(
    db: &impl ConnectionTrait,
    ds: &data_source::Model,
) -> Result<Resolved, AppError> {
    let mut resolved = resolve(
        db,
        &ds.org_id,
        ds.key_result_id.as_deref(),
        ds.objective_id.as_deref(),
    )
    .await;
    // An objective switched away from DATA_SOURCE keeps its link readable.
    if let (Err(AppError::BadUserInput { .. }), Some(o_id)) = (&resolved, &ds.objective_id) {
        let o = objective::Entity::find_by_id(o_id.clone())
            .one(db)
            .await?
            .ok_or_else(|| AppError::not_found("objective", o_id))?;
        resolved = Ok(Resolved {
            feeds: Feeds::Objective(o.id.clone()),
            period: period_of(&o),
            current_value: o.current_value,
        });
    }
    resolved
}

/// The data source of a key result or objective, if it has one.
pub async fn of_target(
    db: &impl ConnectionTrait,
    feeds: &Feeds,
) -> Result<Option<data_source::Model>, AppError> {
    let filter = match feeds {
        Feeds::KeyResult(id) => data_source::Column::KeyResultId.eq(id.clone()),
        Feeds::Objective(id) => data_source::Column::ObjectiveId.eq(id.clone()),
    };
    Ok(data_source::Entity::find().filter(filter).one(db).await?)
}

/// One data source of the organization.
pub async fn get(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
) -> Result<Option<data_source::Model>, AppError> {
    Ok(data_source::Entity::find_by_id(id.to_owned())
        .filter(data_source::Column::OrgId.eq(org_id))
        .one(db)
        .await?)
}

/// The data source with this id, or `NOT_FOUND`.
pub async fn require(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
) -> Result<data_source::Model, AppError> {
    get(db, org_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("data source", id))
}

/// Data sources of these objectives and key results, in at most two statements.
pub async fn of_targets(
    db: &impl ConnectionTrait,
    org_id: &str,
    objective_ids: &[String],
    key_result_ids: &[String],
) -> Result<Vec<data_source::Model>, sea_orm::DbErr> {
    let mut rows = Vec::new();
    if !objective_ids.is_empty() {
        rows.extend(
            data_source::Entity::find()
                .filter(data_source::Column::OrgId.eq(org_id))
                .filter(data_source::Column::ObjectiveId.is_in(objective_ids.iter().cloned()))
                .all(db)
                .await?,
        );
    }
    if !key_result_ids.is_empty() {
        rows.extend(
            data_source::Entity::find()
                .filter(data_source::Column::OrgId.eq(org_id))
                .filter(data_source::Column::KeyResultId.is_in(key_result_ids.iter().cloned()))
                .all(db)
                .await?,
        );
    }
    Ok(rows)
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

/// "key result 'Leads'", "objective 'Grow'": what each data source feeds.
pub async fn describe_targets(
    db: &impl ConnectionTrait,
    sources: &[data_source::Model],
) -> Result<Vec<String>, AppError> {
    let mut names = Vec::new();
    for ds in sources {
        if let Some(kr_id) = &ds.key_result_id {
            if let Some(kr) = key_result::Entity::find_by_id(kr_id.clone())
                .one(db)
                .await?
            {
                names.push(format!("key result '{}'", kr.title));
            }
        } else if let Some(o_id) = &ds.objective_id
            && let Some(o) = objective::Entity::find_by_id(o_id.clone()).one(db).await?
        {
            names.push(format!("objective '{}'", o.title));
        }
    }
    Ok(names)
}

/// What started a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Linking, or changing the SQL or connection.
    Link,
    /// The scheduler.
    Sync,
    /// `refreshDataSource`.
    Refresh,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::Link => "LINK",
            Trigger::Sync => "SYNC",
            Trigger::Refresh => "REFRESH",
        }
    }

    fn source(self) -> Source {
        match self {
            Trigger::Refresh => Source::Refresh,
            Trigger::Link | Trigger::Sync => Source::Sync,
        }
    }
}

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

/// A new id for a data source, known before it is saved so that its first
/// BigQuery job can carry it as a label.
pub fn reserve_id() -> String {
    new_id()
}

/// Saves a validated link, its first run and its first value, in one transaction.
pub async fn insert_linked(
    db: &DatabaseConnection,
    org: &organization::Model,
    resolved: &Resolved,
    link: NewLink,
    run: RunSuccess,
) -> Result<Recorded, AppError> {
    let txn = db.begin().await?;
    let at = now();
    let (objective_id, key_result_id) = match &resolved.feeds {
        Feeds::Objective(id) => (Some(id.clone()), None),
        Feeds::KeyResult(id) => (None, Some(id.clone())),
    };
    let row = data_source::ActiveModel {
        id: Set(link.id.clone()),
        org_id: Set(org.id.clone()),
        connection_id: Set(link.connection_id),
        objective_id: Set(objective_id),
        key_result_id: Set(key_result_id),
        sql: Set(link.sql),
        sync_interval_seconds: Set(link.sync_interval_seconds),
        state: Set("OK".to_owned()),
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
    let sync_run = insert_run(&txn, &model, Trigger::Link, Ok(&run), "OK").await?;
    let mut changes = Vec::new();
    write_value(&txn, org, resolved, run.value, Trigger::Link, &mut changes).await?;
    txn.commit().await?;
    Ok(Recorded {
        data_source: model,
        changes,
        sync_run_id: sync_run.id,
    })
}

/// What one recorded run left behind.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub data_source: data_source::Model,
    /// Progress changes it caused (none when the value did not move).
    pub changes: Vec<ProgressChange>,
    /// The sync run that logs it.
    pub sync_run_id: i64,
}

/// The refusal for a second data source on one target.
pub fn already_linked() -> AppError {
    AppError::Conflict(
        "This already has a data source; change it with updateDataSource or unlink it first."
            .to_owned(),
    )
}

async fn write_value(
    db: &impl ConnectionTrait,
    org: &organization::Model,
    resolved: &Resolved,
    value: f64,
    trigger: Trigger,
    changes: &mut Vec<ProgressChange>,
) -> Result<(), AppError> {
    let (key_result_id, objective_id) = match &resolved.feeds {
        Feeds::KeyResult(id) => (Some(id.clone()), None),
        Feeds::Objective(id) => (None, Some(id.clone())),
    };
    let input = NewValue {
        key_result_id,
        objective_id,
        value,
        note: None,
        pause_automatic_updates: false,
    };
    record_value(db, org, &input, None, trigger.source(), now(), changes).await?;
    Ok(())
}

async fn insert_run(
    db: &impl ConnectionTrait,
    ds: &data_source::Model,
    trigger: Trigger,
    outcome: Result<&RunSuccess, &RunFailure>,
    label: &str,
) -> Result<sync_run::Model, AppError> {
    let row = match outcome {
        Ok(run) => sync_run::ActiveModel {
            org_id: Set(ds.org_id.clone()),
            data_source_id: Set(ds.id.clone()),
            started_at: Set(run.started_at),
            duration_ms: Set(run.duration_ms),
            outcome: Set(label.to_owned()),
            trigger: Set(trigger.as_str().to_owned()),
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
            outcome: Set("ERROR".to_owned()),
            trigger: Set(trigger.as_str().to_owned()),
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
    Ok(row.insert(db).await?)
}

/// Records a successful run: the value (with a history point and roll-up
/// when it moved), the run, and the next sync time.
pub async fn record_success(
    db: &DatabaseConnection,
    org: &organization::Model,
    ds_id: &str,
    trigger: Trigger,
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
        Trigger::Link,
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
    trigger: Trigger,
    run: RunSuccess,
    new_query: Option<(String, String)>,
) -> Result<Recorded, AppError> {
    let txn = db.begin().await?;
    let ds = require(&txn, &org.id, ds_id).await?;
    let resolved = resolve_existing(&txn, &ds).await?;
    let changed = resolved.current_value != Some(run.value);
    let sync_run = insert_run(
        &txn,
        &ds,
        trigger,
        Ok(&run),
        if changed { "OK" } else { "UNCHANGED" },
    )
    .await?;
    let mut changes = Vec::new();
    if changed {
        write_value(&txn, org, &resolved, run.value, trigger, &mut changes).await?;
    }
    let at = now();
    let next = run
        .next_sync_at
        .unwrap_or(at + Duration::seconds(ds.sync_interval_seconds));
    let paused = ds.state == "PAUSED";
    let mut active: data_source::ActiveModel = ds.into();
    if let Some((connection_id, sql)) = new_query {
        active.connection_id = Set(connection_id);
        active.sql = Set(sql);
    }
    if !paused {
        active.state = Set("OK".to_owned());
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
        changes,
        sync_run_id: sync_run.id,
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
    trigger: Trigger,
    failure: RunFailure,
) -> Result<Recorded, AppError> {
    let txn = db.begin().await?;
    let ds = require(&txn, org_id, ds_id).await?;
    let sync_run = insert_run(&txn, &ds, trigger, Err(&failure), "ERROR").await?;
    let at = now();
    let failures = ds.consecutive_failures + 1;
    let wait = retry_after_seconds(ds.sync_interval_seconds, failures, failure.transient);
    let mut active: data_source::ActiveModel = ds.into();
    active.state = Set("ERROR".to_owned());
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
        changes: Vec::new(),
        sync_run_id: sync_run.id,
    })
}

/// Settings of a data source that need no BigQuery run to change.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    pub sync_interval_seconds: Option<i64>,
    pub paused: Option<bool>,
}

/// Applies interval and pause changes; a new SQL or connection is saved
/// through [`replace_query`] after validation.
pub async fn update_settings(
    db: &impl ConnectionTrait,
    ds: data_source::Model,
    patch: SettingsPatch,
) -> Result<data_source::Model, AppError> {
    let at = now();
    let was_paused = ds.state == "PAUSED";
    let has_error = ds.last_error_code.is_some();
    let has_value = ds.last_value.is_some();
    let mut active: data_source::ActiveModel = ds.into();
    if let Some(seconds) = patch.sync_interval_seconds {
        active.sync_interval_seconds = Set(seconds);
        active.next_sync_at = Set(at + Duration::seconds(seconds));
    }
    match patch.paused {
        Some(true) => active.state = Set("PAUSED".to_owned()),
        Some(false) if was_paused => {
            let state = if has_error {
                "ERROR"
            } else if has_value {
                "OK"
            } else {
                "PENDING"
            };
            active.state = Set(state.to_owned());
            // Catch up at once: the value may have moved while paused.
            active.next_sync_at = Set(at);
        }
        _ => {}
    }
    active.updated_at = Set(at);
    Ok(active.update(db).await?)
}

/// Removes a data source and its sync log; the value it recorded stays.
pub async fn delete(db: &impl ConnectionTrait, org_id: &str, id: &str) -> Result<(), AppError> {
    let result = data_source::Entity::delete_many()
        .filter(data_source::Column::Id.eq(id))
        .filter(data_source::Column::OrgId.eq(org_id))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Err(AppError::not_found("data source", id));
    }
    Ok(())
}

/// Claims up to `limit` due data sources for `owner` until `lease_until`:
/// due (`next_sync_at <= now`), not paused, and not leased by a live lease.
/// On PostgreSQL the candidates are locked with `FOR UPDATE SKIP LOCKED`, so
/// replicas claiming at the same moment never get the same row.
pub async fn claim_due(
    db: &impl ConnectionTrait,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
    limit: u64,
) -> Result<Vec<data_source::Model>, AppError> {
    use data_source::Column as C;
    use sea_orm::sea_query::{LockBehavior, LockType, Query};
    if limit == 0 {
        return Ok(Vec::new());
    }
    let mut candidates = Query::select();
    candidates
        .column(C::Id)
        .from(data_source::Entity)
        .cond_where(
            sea_orm::Condition::all()
                .add(C::NextSyncAt.lte(now))
                .add(C::State.ne("PAUSED"))
                .add(
                    sea_orm::Condition::any()
                        .add(C::LeaseExpiresAt.is_null())
                        .add(C::LeaseExpiresAt.lt(now)),
                ),
        )
        .order_by(C::NextSyncAt, sea_orm::Order::Asc)
        .limit(limit);
    if db.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        candidates.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    let update = Query::update()
        .table(data_source::Entity)
        .value(C::LeaseOwner, owner)
        .value(C::LeaseExpiresAt, lease_until)
        .and_where(C::Id.in_subquery(candidates.to_owned()))
        .returning_all()
        .to_owned();
    let builder = db.get_database_backend();
    let rows = db.query_all_raw(builder.build(&update)).await?;
    let mut claimed = Vec::with_capacity(rows.len());
    for row in rows {
        use sea_orm::FromQueryResult;
        claimed.push(data_source::Model::from_query_result(&row, "")?);
    }
    Ok(claimed)
}

/// Claims one data source whatever its due time, unless a live lease holds it.
pub async fn claim_one(
    db: &impl ConnectionTrait,
    id: &str,
    owner: &str,
    now: DateTime<Utc>,
    lease_until: DateTime<Utc>,
) -> Result<bool, AppError> {
    use data_source::Column as C;
    let result = data_source::Entity::update_many()
        .col_expr(C::LeaseOwner, owner.into())
        .col_expr(C::LeaseExpiresAt, lease_until.into())
        .filter(C::Id.eq(id))
        .filter(
            sea_orm::Condition::any()
                .add(C::LeaseExpiresAt.is_null())
                .add(C::LeaseExpiresAt.lt(now)),
        )
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Gives a lease back without recording a run (the run was not made).
pub async fn release(db: &impl ConnectionTrait, id: &str, owner: &str) -> Result<(), AppError> {
    use data_source::Column as C;
    data_source::Entity::update_many()
        .col_expr(C::LeaseOwner, Option::<String>::None.into())
        .col_expr(C::LeaseExpiresAt, Option::<DateTime<Utc>>::None.into())
        .filter(C::Id.eq(id))
        .filter(C::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    Ok(())
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
        .filter(sync_run::Column::Trigger.eq("REFRESH"))
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
