//! Recording values and keeping every ancestor's roll-up current.
//!
//! A value reaches an objective or key result through [`record_value`] (a
//! check-in today; syncs and refreshes use the same path), which writes the
//! history point and then walks up the tree with [`roll_up_ancestors`], all
//! inside the caller's transaction so that a failure leaves nothing half done.

use chrono::{DateTime, Utc};
use entity::{data_source, key_result, objective, progress_point};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set, TransactionTrait, sea_query::Query,
};

use crate::{
    auth::Principal,
    domain::progress::{
        self, KeyResultKind, KpiCondition, Period, Status, expected_progress, kpi_progress,
        kpi_status, metric_progress, objective_roll_up, progress_changed,
    },
    error::AppError,
};

use super::{now, orgs::Scoring};

/// Longest check-in note accepted, in characters.
const MAX_NOTE_CHARS: usize = 2000;

/// Deepest alignment tree walked; deeper means corrupted data, not a real tree.
pub const MAX_TREE_DEPTH: usize = 1000;

/// Where a value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Sync,
    Refresh,
    CheckIn,
    RollUp,
}

impl Source {
    /// The stored and public name.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sync => "SYNC",
            Source::Refresh => "REFRESH",
            Source::CheckIn => "CHECK_IN",
            Source::RollUp => "ROLL_UP",
        }
    }
}

/// An objective's progress mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    RollUp,
    DataSource,
    Manual,
}

impl ProgressMode {
    /// The stored and public name.
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressMode::RollUp => "ROLL_UP",
            ProgressMode::DataSource => "DATA_SOURCE",
            ProgressMode::Manual => "MANUAL",
        }
    }

    /// Parses a stored name; unknown names read as roll-up.
    pub fn parse(s: &str) -> ProgressMode {
        match s {
            "DATA_SOURCE" => ProgressMode::DataSource,
            "MANUAL" => ProgressMode::Manual,
            _ => ProgressMode::RollUp,
        }
    }
}

/// Parses a stored key result kind.
pub fn kind_of(kr: &key_result::Model) -> KeyResultKind {
    if kr.kind == "KPI" {
        KeyResultKind::Kpi
    } else {
        KeyResultKind::Metric
    }
}

/// Parses a stored KPI condition.
pub fn condition_of(kr: &key_result::Model) -> KpiCondition {
    if kr.kpi_condition.as_deref() == Some("AT_MOST") {
        KpiCondition::AtMost
    } else {
        KpiCondition::AtLeast
    }
}

/// The period of an objective.
pub fn period_of(o: &objective::Model) -> Period {
    Period {
        start: o.period_start,
        end: o.period_end,
    }
}

/// A key result's raw progress for a value.
pub fn key_result_progress(kr: &key_result::Model, value: f64) -> Option<f64> {
    match kind_of(kr) {
        KeyResultKind::Kpi => Some(kpi_progress(condition_of(kr), kr.target_value, value)),
        KeyResultKind::Metric => metric_progress(kr.start_value?, kr.target_value, value),
    }
}

/// An objective's own progress (MANUAL or DATA_SOURCE mode) for a value.
pub fn objective_own_progress(o: &objective::Model, value: f64) -> Option<f64> {
    metric_progress(o.start_value?, o.target_value?, value)
}

/// Expected progress and status of a key result at `at`.
pub fn key_result_status(
    kr: &key_result::Model,
    progress: Option<f64>,
    period: Period,
    scoring: Scoring,
    at: DateTime<Utc>,
) -> (f64, Status) {
    let expected = expected_progress(period, scoring.tz, at);
    let status = match kind_of(kr) {
        KeyResultKind::Kpi => kpi_status(condition_of(kr), kr.target_value, kr.current_value),
        KeyResultKind::Metric => progress::status(progress, expected, scoring.thresholds),
    };
    (expected, status)
}

/// Expected progress and status of an objective with this progress at `at`.
pub fn objective_status(
    o: &objective::Model,
    progress: Option<f64>,
    scoring: Scoring,
    at: DateTime<Utc>,
) -> (f64, Status) {
    let expected = expected_progress(period_of(o), scoring.tz, at);
    (
        expected,
        progress::status(progress, expected, scoring.thresholds),
    )
}

/// One committed change of an objective's or key result's progress.
#[derive(Debug, Clone)]
pub struct ProgressChange {
    /// The history point that records it; events are rebuilt from it.
    pub point_id: i64,
    pub objective_id: String,
    /// Set when the key result changed; none for the objective's own change.
    pub key_result_id: Option<String>,
    pub value: Option<f64>,
    pub previous_value: Option<f64>,
    pub progress: Option<f64>,
    pub previous_progress: Option<f64>,
    pub status: Status,
    pub previous_status: Status,
    pub source: Source,
    pub at: DateTime<Utc>,
}

/// What a history point belongs to.
enum PointOwner<'a> {
    Objective(&'a str),
    KeyResult(&'a str),
}

/// Writes one history point.
#[allow(clippy::too_many_arguments)]
async fn write_point(
    db: &impl ConnectionTrait,
    org_id: &str,
    owner: PointOwner<'_>,
    at: DateTime<Utc>,
    value: Option<f64>,
    progress: Option<f64>,
    expected: f64,
    status: Status,
    source: Source,
    note: Option<String>,
) -> Result<progress_point::Model, AppError> {
    let (objective_id, key_result_id) = match owner {
        PointOwner::Objective(id) => (Some(id.to_owned()), None),
        PointOwner::KeyResult(id) => (None, Some(id.to_owned())),
    };
    let row = progress_point::ActiveModel {
        org_id: Set(org_id.to_owned()),
        objective_id: Set(objective_id),
        key_result_id: Set(key_result_id),
        at: Set(at),
        value: Set(value),
        progress: Set(progress),
        expected_progress: Set(expected),
        status: Set(status.as_str().to_owned()),
        source: Set(source.as_str().to_owned()),
        note: Set(note),
        ..Default::default()
    };
    Ok(row.insert(db).await?)
}

/// Recomputes the roll-up of `start` and of each of its ancestors, writing a
/// point (source `ROLL_UP`) for every objective whose progress changed.
///
/// The walk stops at the first objective that does not roll up or whose
/// progress did not move: nothing above it can have changed.
pub async fn roll_up_ancestors(
    db: &impl ConnectionTrait,
    org_id: &str,
    scoring: Scoring,
    start: Option<String>,
    at: DateTime<Utc>,
    changes: &mut Vec<ProgressChange>,
) -> Result<(), AppError> {
    let mut next = start;
    let mut depth = 0;
    while let Some(id) = next {
        depth += 1;
        if depth > MAX_TREE_DEPTH {
            return Err(AppError::internal(anyhow::anyhow!(
                "objective tree deeper than {MAX_TREE_DEPTH} at {id}"
            )));
        }
        let Some(o) = objective::Entity::find_by_id(id.clone())
            .filter(objective::Column::OrgId.eq(org_id))
            .one(db)
            .await?
        else {
            return Ok(());
        };
        if ProgressMode::parse(&o.progress_mode) != ProgressMode::RollUp {
            return Ok(());
        }
        let new_progress = computed_roll_up(db, &o.id).await?;
        if !progress_changed(o.progress, new_progress) {
            return Ok(());
        }
        let (expected, status) = objective_status(&o, new_progress, scoring, at);
        let (_, previous_status) = objective_status(&o, o.progress, scoring, at);
        let point = write_point(
            db,
            org_id,
            PointOwner::Objective(&o.id),
            at,
            None,
            new_progress,
            expected,
            status,
            Source::RollUp,
            None,
        )
        .await?;
        changes.push(ProgressChange {
            point_id: point.id,
            objective_id: o.id.clone(),
            key_result_id: None,
            value: None,
            previous_value: None,
            progress: new_progress,
            previous_progress: o.progress,
            status,
            previous_status,
            source: Source::RollUp,
            at,
        });
        next = o.parent_id.clone();
        let mut active: objective::ActiveModel = o.into();
        active.progress = Set(new_progress);
        active.updated_at = Set(at);
        active.update(db).await?;
    }
    Ok(())
}

/// The roll-up of one objective from its key results and children as stored.
async fn computed_roll_up(
    db: &impl ConnectionTrait,
    objective_id: &str,
) -> Result<Option<f64>, AppError> {
    let krs = key_result::Entity::find()
        .filter(key_result::Column::ObjectiveId.eq(objective_id))
        .all(db)
        .await?;
    let children: Vec<(f64, Option<f64>)> = objective::Entity::find()
        .select_only()
        .column(objective::Column::Weight)
        .column(objective::Column::Progress)
        .filter(objective::Column::ParentId.eq(objective_id))
        .into_tuple()
        .all(db)
        .await?;
    let krs: Vec<_> = krs
        .iter()
        .map(|kr| (kind_of(kr), kr.weight, kr.progress))
        .collect();
    Ok(objective_roll_up(&krs, &children))
}

/// A value to record on one key result or objective.
#[derive(Debug, Clone)]
pub struct NewValue {
    pub key_result_id: Option<String>,
    pub objective_id: Option<String>,
    pub value: f64,
    pub note: Option<String>,
    /// Pause the linked data source so syncs stop overwriting this value.
    pub pause_automatic_updates: bool,
}

/// A manual check-in: records the value and rolls it up, in one transaction.
pub async fn check_in(
    db: &sea_orm::DatabaseConnection,
    principal: &Principal,
    input: NewValue,
) -> Result<(progress_point::Model, Vec<ProgressChange>), AppError> {
    let note = match input.note.as_deref().map(str::trim) {
        Some("") | None => None,
        Some(n) if n.chars().count() > MAX_NOTE_CHARS => {
            return Err(AppError::bad_input(
                "note",
                format!("The note must be at most {MAX_NOTE_CHARS} characters."),
            ));
        }
        Some(n) => Some(n.to_owned()),
    };
    if !input.value.is_finite() {
        return Err(AppError::bad_input(
            "value",
            "value must be a finite number.",
        ));
    }
    let txn = db.begin().await?;
    let mut changes = Vec::new();
    let point = record_value(
        &txn,
        &principal.org,
        &input,
        note,
        Source::CheckIn,
        now(),
        &mut changes,
    )
    .await?;
    txn.commit().await?;
    Ok((point, changes))
}

/// Records a value on a key result or objective, writes its point and rolls
/// the change up through every ancestor. Runs inside the caller's transaction.
pub async fn record_value(
    db: &impl ConnectionTrait,
    org: &entity::organization::Model,
    input: &NewValue,
    note: Option<String>,
    source: Source,
    at: DateTime<Utc>,
    changes: &mut Vec<ProgressChange>,
) -> Result<progress_point::Model, AppError> {
    let org_id = org.id.as_str();
    let scoring = Scoring::of(org);
    let (point, parent, data_source_filter) = match (&input.key_result_id, &input.objective_id) {
        (Some(kr_id), None) => {
            let kr = key_result::Entity::find_by_id(kr_id.clone())
                .filter(key_result::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("key result", kr_id))?;
            let o = objective::Entity::find_by_id(kr.objective_id.clone())
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("objective", &kr.objective_id))?;
            let progress = key_result_progress(&kr, input.value);
            let previous = kr.clone();
            let mut updated = kr.clone();
            updated.current_value = Some(input.value);
            updated.progress = progress;
            let (expected, status) =
                key_result_status(&updated, progress, period_of(&o), scoring, at);
            let (_, previous_status) =
                key_result_status(&previous, previous.progress, period_of(&o), scoring, at);
            let mut active: key_result::ActiveModel = kr.into();
            active.current_value = Set(Some(input.value));
            active.progress = Set(progress);
            active.updated_at = Set(at);
            active.update(db).await?;
            let point = write_point(
                db,
                org_id,
                PointOwner::KeyResult(kr_id),
                at,
                Some(input.value),
                progress,
                expected,
                status,
                source,
                note,
            )
            .await?;
            changes.push(ProgressChange {
                point_id: point.id,
                objective_id: o.id.clone(),
                key_result_id: Some(kr_id.clone()),
                value: Some(input.value),
                previous_value: previous.current_value,
                progress,
                previous_progress: previous.progress,
                status,
                previous_status,
                source,
                at,
            });
            (
                point,
                Some(o.id),
                data_source::Column::KeyResultId.eq(kr_id.clone()),
            )
        }
        (None, Some(o_id)) => {
            let o = objective::Entity::find_by_id(o_id.clone())
                .filter(objective::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("objective", o_id))?;
            if ProgressMode::parse(&o.progress_mode) == ProgressMode::RollUp {
                return Err(AppError::bad_input(
                    "objectiveId",
                    "This objective's progress rolls up from its key results and child objectives; check in on a key result, or set its progressMode to MANUAL first.",
                ));
            }
            let progress = objective_own_progress(&o, input.value);
            let (expected, status) = objective_status(&o, progress, scoring, at);
            let (_, previous_status) = objective_status(&o, o.progress, scoring, at);
            let point = write_point(
                db,
                org_id,
                PointOwner::Objective(o_id),
                at,
                Some(input.value),
                progress,
                expected,
                status,
                source,
                note,
            )
            .await?;
            changes.push(ProgressChange {
                point_id: point.id,
                objective_id: o.id.clone(),
                key_result_id: None,
                value: Some(input.value),
                previous_value: o.current_value,
                progress,
                previous_progress: o.progress,
                status,
                previous_status,
                source,
                at,
            });
            let parent = o.parent_id.clone();
            let mut active: objective::ActiveModel = o.into();
            active.current_value = Set(Some(input.value));
            active.progress = Set(progress);
            active.updated_at = Set(at);
            active.update(db).await?;
            (
                point,
                parent,
                data_source::Column::ObjectiveId.eq(o_id.clone()),
            )
        }
        _ => {
            return Err(AppError::bad_input(
                "keyResultId",
                "Give exactly one of keyResultId and objectiveId.",
            ));
        }
    };
    if input.pause_automatic_updates {
        data_source::Entity::update_many()
            .col_expr(data_source::Column::State, "PAUSED".into())
            .col_expr(data_source::Column::UpdatedAt, at.into())
            .filter(data_source_filter)
            .filter(data_source::Column::OrgId.eq(org_id))
            .exec(db)
            .await?;
    }
    roll_up_ancestors(db, org_id, scoring, parent, at, changes).await?;
    Ok(point)
}

/// Which history to read.
#[derive(Debug, Clone, Copy)]
pub enum HistoryOf<'a> {
    Objective(&'a str),
    KeyResult(&'a str),
}

/// History points oldest first, optionally within `[from, to]`.
pub async fn history(
    db: &impl ConnectionTrait,
    org_id: &str,
    of: HistoryOf<'_>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<Vec<progress_point::Model>, AppError> {
    let mut query = progress_point::Entity::find().filter(progress_point::Column::OrgId.eq(org_id));
    query = match of {
        HistoryOf::Objective(id) => query.filter(progress_point::Column::ObjectiveId.eq(id)),
        HistoryOf::KeyResult(id) => query.filter(progress_point::Column::KeyResultId.eq(id)),
    };
    if let Some(from) = from {
        query = query.filter(progress_point::Column::At.gte(from));
    }
    if let Some(to) = to {
        query = query.filter(progress_point::Column::At.lte(to));
    }
    Ok(query
        .order_by_asc(progress_point::Column::At)
        .order_by_asc(progress_point::Column::Id)
        .all(db)
        .await?)
}

/// The newest point of each of these objectives and key results, in two
/// statements whatever their number.
pub async fn latest_points(
    db: &impl ConnectionTrait,
    org_id: &str,
    objective_ids: &[String],
    key_result_ids: &[String],
) -> Result<Vec<progress_point::Model>, sea_orm::DbErr> {
    use progress_point::Column as C;
    let mut points = Vec::new();
    for (column, ids) in [
        (C::ObjectiveId, objective_ids),
        (C::KeyResultId, key_result_ids),
    ] {
        if ids.is_empty() {
            continue;
        }
        let newest = Query::select()
            .expr(C::Id.max())
            .from(progress_point::Entity)
            .and_where(C::OrgId.eq(org_id))
            .and_where(column.is_in(ids.iter().cloned()))
            .group_by_col(column)
            .to_owned();
        points.extend(
            progress_point::Entity::find()
                .filter(C::Id.in_subquery(newest))
                .all(db)
                .await?,
        );
    }
    Ok(points)
}
