//! Key results: metrics and KPIs of an objective.

use entity::{
    enums::{KeyResultKind, KpiCondition},
    key_result,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};

use crate::{
    domain::{
        bounds::TreeBounds,
        inputs::{self, KeyResultPatch, NewKeyResult},
        progress::Measure,
    },
    error::AppError,
};

use super::{Notice, Principal, new_id, now, objectives, record::roll_up_ancestors};

/// How a stored key result turns values into progress.
pub fn measure_of(kr: &key_result::Model) -> Result<Measure, AppError> {
    Measure::of_key_result(kr.kind, kr.kpi_condition, kr.start_value, kr.target_value).ok_or_else(
        || {
            AppError::internal(anyhow::anyhow!(
                "metric key result {} has no start value",
                kr.id
            ))
        },
    )
}

/// The stored columns of a measure: kind, condition, start and target.
fn columns_of(measure: Measure) -> (KeyResultKind, Option<KpiCondition>, Option<f64>, f64) {
    match measure {
        Measure::Metric { start, target } => (KeyResultKind::Metric, None, Some(start), target),
        Measure::Kpi { condition, target } => (KeyResultKind::Kpi, Some(condition), None, target),
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

/// Every key result of the organization, oldest first, in one statement.
pub async fn of_org(
    db: &impl ConnectionTrait,
    org_id: &str,
) -> Result<Vec<key_result::Model>, sea_orm::DbErr> {
    key_result::Entity::find()
        .filter(key_result::Column::OrgId.eq(org_id))
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
    bounds: TreeBounds,
) -> Result<(key_result::Model, Notice), AppError> {
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    let objective = objectives::get(&txn, &org_id, &input.objective_id)
        .await?
        .ok_or_else(|| AppError::not_found("objective", &input.objective_id))?;
    objectives::lock(&txn, &org_id, &objective.id).await?;
    let held = key_result::Entity::find()
        .filter(key_result::Column::OrgId.eq(org_id.as_str()))
        .filter(key_result::Column::ObjectiveId.eq(objective.id.as_str()))
        .count(&txn)
        .await?;
    bounds.check_key_result(held)?;
    let at = now();
    let (kind, condition, start, target) = columns_of(input.measure);
    let row = key_result::ActiveModel {
        id: Set(new_id()),
        org_id: Set(org_id.clone()),
        objective_id: Set(objective.id.clone()),
        title: Set(input.title.into_inner()),
        kind: Set(kind),
        kpi_condition: Set(condition),
        start_value: Set(start),
        target_value: Set(target),
        unit: Set(input.unit.into_inner()),
        weight: Set(input.weight.get()),
        current_value: Set(None),
        progress: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let model = row.insert(&txn).await?;
    let mut notice = Notice::default();
    roll_up_ancestors(
        &txn,
        &org_id,
        principal.scoring(),
        Some(objective.id),
        at,
        &mut notice,
    )
    .await?;
    txn.commit().await?;
    Ok((model, notice))
}

/// Applies changes to a key result, recomputing its progress from its
/// current value and re-rolling its objective.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
    patch: KeyResultPatch,
) -> Result<(key_result::Model, Notice), AppError> {
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    let current = get(&txn, &org_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("key result", id))?;
    let condition = match current.kind {
        KeyResultKind::Kpi => patch.kpi_condition.or(current.kpi_condition),
        KeyResultKind::Metric => patch.kpi_condition,
    };
    let measure = inputs::measure(
        current.kind,
        condition,
        patch.start_value.map(|v| v.get()).or(current.start_value),
        patch.target_value.map_or(current.target_value, |v| v.get()),
    )?;
    let mut next = current.clone();
    (
        next.kind,
        next.kpi_condition,
        next.start_value,
        next.target_value,
    ) = columns_of(measure);
    if let Some(title) = patch.title {
        next.title = title.into_inner();
    }
    if let Some(weight) = patch.weight {
        next.weight = weight.get();
    }
    if let Some(unit) = patch.unit {
        next.unit = unit.into_inner();
    }
    next.progress = next.current_value.and_then(|v| measure.progress(v));
    let at = now();
    next.updated_at = at;
    let mut active: key_result::ActiveModel = next.clone().into();
    active = active.reset_all();
    active.id = sea_orm::ActiveValue::Unchanged(next.id.clone());
    let updated = active.update(&txn).await?;
    let mut notice = Notice::default();
    roll_up_ancestors(
        &txn,
        &org_id,
        principal.scoring(),
        Some(updated.objective_id.clone()),
        at,
        &mut notice,
    )
    .await?;
    txn.commit().await?;
    Ok((updated, notice))
}

/// Deletes a key result with its data source and history, and re-rolls its
/// objective.
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
) -> Result<Notice, AppError> {
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    let current = get(&txn, &org_id, id)
        .await?
        .ok_or_else(|| AppError::not_found("key result", id))?;
    key_result::Entity::delete_by_id(id.to_owned())
        .exec(&txn)
        .await?;
    let mut notice = Notice::default();
    roll_up_ancestors(
        &txn,
        &org_id,
        principal.scoring(),
        Some(current.objective_id),
        now(),
        &mut notice,
    )
    .await?;
    txn.commit().await?;
    Ok(notice)
}
