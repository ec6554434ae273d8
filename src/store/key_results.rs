//! Key results: metrics and KPIs of an objective.

use entity::key_result;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use crate::{
    auth::Principal,
    domain::{
        progress::{KeyResultKind, KpiCondition},
        validate::{self, Title},
    },
    error::AppError,
};

use super::{
    new_id, now, objectives,
    orgs::Scoring,
    progress::{ProgressChange, key_result_progress, roll_up_ancestors},
};

/// Longest unit accepted, in characters.
const MAX_UNIT_CHARS: usize = 50;

/// A new key result as the caller described it.
#[derive(Debug, Clone)]
pub struct NewKeyResult {
    pub objective_id: String,
    pub title: String,
    pub kind: KeyResultKind,
    pub kpi_condition: Option<KpiCondition>,
    pub start_value: Option<f64>,
    pub target_value: f64,
    pub unit: Option<String>,
    pub weight: Option<f64>,
}

/// Changes to a key result; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct KeyResultPatch {
    pub title: Option<String>,
    pub kpi_condition: Option<KpiCondition>,
    pub start_value: Option<f64>,
    pub target_value: Option<f64>,
    pub unit: Option<String>,
    pub weight: Option<f64>,
}

fn unit(raw: Option<String>) -> Result<String, AppError> {
    let unit = raw.unwrap_or_default().trim().to_owned();
    if unit.chars().count() > MAX_UNIT_CHARS {
        return Err(AppError::bad_input(
            "unit",
            format!("The unit must be at most {MAX_UNIT_CHARS} characters."),
        ));
    }
    Ok(unit)
}

fn condition_name(c: KpiCondition) -> &'static str {
    match c {
        KpiCondition::AtLeast => "AT_LEAST",
        KpiCondition::AtMost => "AT_MOST",
    }
}

/// Checks the numbers of a key result of this kind.
fn check_range(
    kind: KeyResultKind,
    condition: Option<KpiCondition>,
    start: Option<f64>,
    target: f64,
) -> Result<(), AppError> {
    match kind {
        KeyResultKind::Metric => {
            if condition.is_some() {
                return Err(AppError::bad_input(
                    "kpiCondition",
                    "kpiCondition applies only to KPI key results.",
                ));
            }
            let start = start.ok_or_else(|| {
                AppError::bad_input("startValue", "A METRIC key result needs a startValue.")
            })?;
            Ok(validate::metric_range(start, target)?)
        }
        KeyResultKind::Kpi => {
            if condition.is_none() {
                return Err(AppError::bad_input(
                    "kpiCondition",
                    "A KPI key result needs a kpiCondition (AT_LEAST or AT_MOST).",
                ));
            }
            if start.is_some() {
                return Err(AppError::bad_input(
                    "startValue",
                    "A KPI has no startValue; it only keeps its value on one side of targetValue.",
                ));
            }
            validate::finite("targetValue", target)?;
            Ok(())
        }
    }
}

/// One key result of the caller's organization.
pub async fn get(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
) -> Result<Option<key_result::Model>, AppError> {
    Ok(key_result::Entity::find_by_id(id.to_owned())
        .filter(key_result::Column::OrgId.eq(org_id))
        .one(db)
        .await?)
}

/// Key results of these objectives, oldest first, in one statement.
pub async fn of_objectives(
    db: &impl ConnectionTrait,
    org_id: &str,
    objective_ids: &[String],
) -> Result<Vec<key_result::Model>, sea_orm::DbErr> {
    key_result::Entity::find()
        .filter(key_result::Column::OrgId.eq(org_id))
        .filter(key_result::Column::ObjectiveId.is_in(objective_ids.iter().cloned()))
        .order_by_asc(key_result::Column::CreatedAt)
        .order_by_asc(key_result::Column::Id)
        .all(db)
        .await
}

/// Creates a key result and re-rolls its objective.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewKeyResult,
) -> Result<(key_result::Model, Vec<ProgressChange>), AppError> {
    let title = Title::parse(&input.title)?.into_inner();
    check_range(
        input.kind,
        input.kpi_condition,
        input.start_value,
        input.target_value,
    )?;
    let weight = validate::weight(input.weight.unwrap_or(1.0))?;
    let unit = unit(input.unit)?;
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    let objective = objectives::get(&txn, &org_id, &input.objective_id)
        .await?
        .ok_or_else(|| AppError::not_found("objective", &input.objective_id))?;
    let at = now();
    let row = key_result::ActiveModel {
        id: Set(new_id()),
        org_id: Set(org_id.clone()),
        objective_id: Set(objective.id.clone()),
        title: Set(title),
        kind: Set(match input.kind {
            KeyResultKind::Metric => "METRIC",
            KeyResultKind::Kpi => "KPI",
        }
        .to_owned()),
        kpi_condition: Set(input.kpi_condition.map(|c| condition_name(c).to_owned())),
        start_value: Set(input.start_value),
        target_value: Set(input.target_value),
        unit: Set(unit),
        weight: Set(weight),
        current_value: Set(None),
        progress: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let model = row.insert(&txn).await?;
    let mut changes = Vec::new();
    roll_up_ancestors(
        &txn,
        &org_id,
        Scoring::of(&principal.org),
        Some(objective.id),
        at,
        &mut changes,
    )
    .await?;
    txn.commit().await?;
    Ok((model, changes))
}

/// Applies changes to a key result, recomputing its progress from its
/// current value and re-rolling its objective.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
    patch: KeyResultPatch,
) -> Result<(key_result::Model, Vec<ProgressChange>), AppError> {
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    let current = get(&txn, &org_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("key result", id))?;
    let kind = super::progress::kind_of(&current);
    let condition = match kind {
        KeyResultKind::Kpi => Some(
            patch
                .kpi_condition
                .unwrap_or_else(|| super::progress::condition_of(&current)),
        ),
        KeyResultKind::Metric => patch.kpi_condition,
    };
    let start = patch.start_value.or(current.start_value);
    let target = patch.target_value.unwrap_or(current.target_value);
    check_range(kind, condition, start, target)?;
    let mut next = current.clone();
    next.start_value = start;
    next.target_value = target;
    next.kpi_condition = condition.map(|c| condition_name(c).to_owned());
    if let Some(title) = &patch.title {
        next.title = Title::parse(title)?.into_inner();
    }
    if let Some(w) = patch.weight {
        next.weight = validate::weight(w)?;
    }
    if patch.unit.is_some() {
        next.unit = unit(patch.unit)?;
    }
    next.progress = next
        .current_value
        .and_then(|v| key_result_progress(&next, v));
    let at = now();
    next.updated_at = at;
    let mut active: key_result::ActiveModel = next.clone().into();
    active = active.reset_all();
    active.id = sea_orm::ActiveValue::Unchanged(next.id.clone());
    let updated = active.update(&txn).await?;
    let mut changes = Vec::new();
    roll_up_ancestors(
        &txn,
        &org_id,
        Scoring::of(&principal.org),
        Some(updated.objective_id.clone()),
        at,
        &mut changes,
    )
    .await?;
    txn.commit().await?;
    Ok((updated, changes))
}

/// Deletes a key result with its data source and history, and re-rolls its objective.
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
) -> Result<Vec<ProgressChange>, AppError> {
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    let current = get(&txn, &org_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("key result", id))?;
    key_result::Entity::delete_by_id(id.to_owned())
        .exec(&txn)
        .await?;
    let mut changes = Vec::new();
    roll_up_ancestors(
        &txn,
        &org_id,
        Scoring::of(&principal.org),
        Some(current.objective_id),
        now(),
        &mut changes,
    )
    .await?;
    txn.commit().await?;
    Ok(changes)
}
