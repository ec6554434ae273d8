//! Recording values and keeping every ancestor's roll-up current.
//!
//! A value reaches an objective or key result through [`record_value`] (a
//! check-in, a sync or a refresh alike), which writes the history point and
//! then walks up the tree with [`roll_up_ancestors`], all inside the
//! caller's transaction so that a failure leaves nothing half done.

use chrono::{DateTime, Utc};
use entity::{
    data_source,
    enums::{DataSourceState, KeyResultKind, ProgressMode, ProgressSource, Status},
    key_result, objective, organization, progress_point,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QuerySelect, Set, TransactionTrait,
};

use crate::{
    domain::{
        Node,
        inputs::CheckIn,
        progress::{Scoring, evaluate_objective, objective_roll_up, progress_changed},
    },
    error::AppError,
};

use super::{
    Notice, Principal,
    key_results::{self, measure_of},
    now,
    objectives::{self, period_of},
    orgs::scoring,
};

/// Deepest alignment tree walked; deeper means corrupted data, not a real tree.
pub const MAX_TREE_DEPTH: usize = 1000;

/// One history point to write.
struct Point {
    value: Option<f64>,
    progress: Option<f64>,
    expected: f64,
    status: Status,
    source: ProgressSource,
    note: Option<String>,
}

/// Writes one history point of `node` and notes it for publishing.
async fn write_point(
    db: &impl ConnectionTrait,
    org_id: &str,
    node: &Node,
    at: DateTime<Utc>,
    point: Point,
    notice: &mut Notice,
) -> Result<progress_point::Model, AppError> {
    let (objective_id, key_result_id) = node.columns();
    let row = progress_point::ActiveModel {
        org_id: Set(org_id.to_owned()),
        objective_id: Set(objective_id),
        key_result_id: Set(key_result_id),
        at: Set(at),
        value: Set(point.value),
        progress: Set(point.progress),
        expected_progress: Set(point.expected),
        status: Set(point.status),
        source: Set(point.source),
        note: Set(point.note),
        ..Default::default()
    };
    let model = row.insert(db).await?;
    notice.points.push(model.id);
    Ok(model)
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
    notice: &mut Notice,
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
        if o.progress_mode != ProgressMode::RollUp {
            return Ok(());
        }
        let new_progress = computed_roll_up(db, &o.id).await?;
        if !progress_changed(o.progress, new_progress) {
            return Ok(());
        }
        let (expected, status) = evaluate_objective(new_progress, period_of(&o), scoring, at);
        let point = Point {
            value: None,
            progress: new_progress,
            expected,
            status,
            source: ProgressSource::RollUp,
            note: None,
        };
        write_point(
            db,
            org_id,
            &Node::Objective(o.id.clone()),
            at,
            point,
            notice,
        )
        .await?;
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
    let krs: Vec<(KeyResultKind, f64, Option<f64>)> = key_result::Entity::find()
        .select_only()
        .column(key_result::Column::Kind)
        .column(key_result::Column::Weight)
        .column(key_result::Column::Progress)
        .filter(key_result::Column::ObjectiveId.eq(objective_id))
        .into_tuple()
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
    Ok(objective_roll_up(&krs, &children))
}

/// A manual check-in: records the value and rolls it up, in one transaction.
pub async fn check_in(
    db: &DatabaseConnection,
    principal: &Principal,
    input: CheckIn,
) -> Result<(progress_point::Model, Notice), AppError> {
    let txn = db.begin().await?;
    let mut notice = Notice::default();
    let value = NewValue {
        node: input.node,
        value: input.value.get(),
        note: input.note.map(|n| n.into_inner()),
        source: ProgressSource::CheckIn,
        pause_automatic_updates: input.pause_automatic_updates,
    };
    let point = record_value(&txn, &principal.org, value, now(), &mut notice).await?;
    txn.commit().await?;
    Ok((point, notice))
}

/// A value to record on one key result or objective.
#[derive(Debug, Clone)]
pub struct NewValue {
    pub node: Node,
    pub value: f64,
    pub note: Option<String>,
    pub source: ProgressSource,
    /// Pause the linked data source so syncs stop overwriting this value.
    pub pause_automatic_updates: bool,
}

/// Records a value on a key result or objective, writes its point and rolls
/// the change up through every ancestor. Runs inside the caller's transaction.
pub async fn record_value(
    db: &impl ConnectionTrait,
    org: &organization::Model,
    input: NewValue,
    at: DateTime<Utc>,
    notice: &mut Notice,
) -> Result<progress_point::Model, AppError> {
    let org_id = org.id.as_str();
    let scoring = scoring(org);
    let NewValue {
        node,
        value,
        note,
        source,
        pause_automatic_updates,
    } = input;
    let (progress, expected, status, parent) = match &node {
        Node::KeyResult(kr_id) => {
            let kr = key_results::get(db, org_id, kr_id)
                .await?
                .ok_or_else(|| AppError::not_found("key result", kr_id))?;
            let o = objectives::get(db, org_id, &kr.objective_id)
                .await?
                .ok_or_else(|| AppError::not_found("objective", &kr.objective_id))?;
            let measure = measure_of(&kr)?;
            let progress = measure.progress(value);
            let (expected, status) =
                measure.evaluate(Some(value), progress, period_of(&o), scoring, at);
            let mut active: key_result::ActiveModel = kr.into();
            active.current_value = Set(Some(value));
            active.progress = Set(progress);
            active.updated_at = Set(at);
            active.update(db).await?;
            (progress, expected, status, Some(o.id))
        }
        Node::Objective(o_id) => {
            let o = objectives::get(db, org_id, o_id)
                .await?
                .ok_or_else(|| AppError::not_found("objective", o_id))?;
            if o.progress_mode == ProgressMode::RollUp {
                return Err(AppError::bad_input(
                    "objectiveId",
                    "This objective's progress rolls up from its key results and child objectives; check in on a key result, or set its progressMode to MANUAL first.",
                ));
            }
            let progress = objectives::own_progress(&o, value);
            let (expected, status) = evaluate_objective(progress, period_of(&o), scoring, at);
            let parent = o.parent_id.clone();
            let mut active: objective::ActiveModel = o.into();
            active.current_value = Set(Some(value));
            active.progress = Set(progress);
            active.updated_at = Set(at);
            active.update(db).await?;
            (progress, expected, status, parent)
        }
    };
    let point = Point {
        value: Some(value),
        progress,
        expected,
        status,
        source,
        note,
    };
    let point = write_point(db, org_id, &node, at, point, notice).await?;
    if pause_automatic_updates {
        let (objective_id, key_result_id) = node.columns();
        let filter = match key_result_id {
            Some(id) => data_source::Column::KeyResultId.eq(id),
            None => data_source::Column::ObjectiveId.eq(objective_id),
        };
        data_source::Entity::update_many()
            .col_expr(data_source::Column::State, DataSourceState::Paused.into())
            .col_expr(data_source::Column::UpdatedAt, at.into())
            .filter(filter)
            .filter(data_source::Column::OrgId.eq(org_id))
            .exec(db)
            .await?;
    }
    roll_up_ancestors(db, org_id, scoring, parent, at, notice).await?;
    Ok(point)
}
