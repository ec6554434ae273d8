//! Objectives: the alignment tree.
//!
//! Deleting an objective deletes its key results, its data source and all
//! their history; its child objectives are kept and move up to the deleted
//! objective's parent (or become roots), so that deleting a node never
//! silently deletes other people's objectives.

use chrono::NaiveDate;
use entity::objective;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, Set, TransactionTrait,
};

use crate::{
    auth::Principal,
    domain::validate::{self, Title},
    error::AppError,
};

use super::{
    new_id, now,
    orgs::{self, Scoring},
    progress::{
        MAX_TREE_DEPTH, ProgressChange, ProgressMode, objective_own_progress, roll_up_ancestors,
    },
};

/// Longest description accepted, in characters.
const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// A new objective as the caller described it.
#[derive(Debug, Clone)]
pub struct NewObjective {
    pub title: String,
    pub description: Option<String>,
    pub parent_id: Option<String>,
    pub owner_id: Option<String>,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    pub progress_mode: ProgressMode,
    pub weight: Option<f64>,
    pub start_value: Option<f64>,
    pub target_value: Option<f64>,
}

/// Changes to an objective; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ObjectivePatch {
    pub title: Option<String>,
    pub description: Option<String>,
    /// `Some(None)` makes the objective a root.
    pub parent_id: Option<Option<String>>,
    pub owner_id: Option<String>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub progress_mode: Option<ProgressMode>,
    pub weight: Option<f64>,
    pub start_value: Option<f64>,
    pub target_value: Option<f64>,
}

fn description(raw: Option<String>) -> Result<String, AppError> {
    let text = raw.unwrap_or_default();
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(AppError::bad_input(
            "description",
            format!("The description must be at most {MAX_DESCRIPTION_CHARS} characters."),
        ));
    }
    Ok(text)
}

/// Own start/target are required when progress does not roll up, and
/// meaningless when it does.
fn own_range(mode: ProgressMode, start: Option<f64>, target: Option<f64>) -> Result<(), AppError> {
    match (mode, start, target) {
        (ProgressMode::RollUp, None, None) => Ok(()),
        (ProgressMode::RollUp, _, _) => Err(AppError::bad_input(
            "startValue",
            "startValue and targetValue apply only to MANUAL or DATA_SOURCE objectives; a ROLL_UP objective takes its progress from its key results.",
        )),
        (_, Some(s), Some(t)) => Ok(validate::metric_range(s, t)?),
        (_, _, _) => Err(AppError::bad_input(
            "targetValue",
            "A MANUAL or DATA_SOURCE objective needs both startValue and targetValue.",
        )),
    }
}

async fn require_owner(
    db: &impl ConnectionTrait,
    principal: &Principal,
    owner_id: Option<&str>,
) -> Result<String, AppError> {
    match owner_id {
        None => Ok(principal.user.id.clone()),
        Some(id) => orgs::user_in_org(db, &principal.org.id, id)
            .await?
            .map(|u| u.id)
            .ok_or_else(|| AppError::not_found("user", id)),
    }
}

/// One objective of the caller's organization.
pub async fn get(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
) -> Result<Option<objective::Model>, AppError> {
    Ok(objective::Entity::find_by_id(id.to_owned())
        .filter(objective::Column::OrgId.eq(org_id))
        .one(db)
        .await?)
}

async fn require(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
    what: &'static str,
) -> Result<objective::Model, AppError> {
    get(db, org_id, id)
        .await?
        .ok_or_else(|| AppError::not_found(what, id))
}

/// Every objective of the organization (or only its roots), oldest first.
pub async fn list(
    db: &impl ConnectionTrait,
    org_id: &str,
    roots_only: bool,
) -> Result<Vec<objective::Model>, AppError> {
    let mut query = objective::Entity::find().filter(objective::Column::OrgId.eq(org_id));
    if roots_only {
        query = query.filter(objective::Column::ParentId.is_null());
    }
    Ok(query
        .order_by_asc(objective::Column::CreatedAt)
        .order_by_asc(objective::Column::Id)
        .all(db)
        .await?)
}

/// Objectives with these ids, in one statement.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    org_id: &str,
    ids: &[String],
) -> Result<Vec<objective::Model>, sea_orm::DbErr> {
    objective::Entity::find()
        .filter(objective::Column::OrgId.eq(org_id))
        .filter(objective::Column::Id.is_in(ids.iter().cloned()))
        .all(db)
        .await
}

/// Children of these objectives, oldest first, in one statement.
pub async fn children_of(
    db: &impl ConnectionTrait,
    org_id: &str,
    parent_ids: &[String],
) -> Result<Vec<objective::Model>, sea_orm::DbErr> {
    objective::Entity::find()
        .filter(objective::Column::OrgId.eq(org_id))
        .filter(objective::Column::ParentId.is_in(parent_ids.iter().cloned()))
        .order_by_asc(objective::Column::CreatedAt)
        .order_by_asc(objective::Column::Id)
        .all(db)
        .await
}

/// Creates an objective and rolls it into its parent.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewObjective,
) -> Result<(objective::Model, Vec<ProgressChange>), AppError> {
    let title = Title::parse(&input.title)?.into_inner();
    let description = description(input.description)?;
    validate::period(input.period_start, input.period_end)?;
    let weight = validate::weight(input.weight.unwrap_or(1.0))?;
    own_range(input.progress_mode, input.start_value, input.target_value)?;
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    if let Some(parent) = &input.parent_id {
        require(&txn, &org_id, parent, "parent objective").await?;
    }
    let owner_id = require_owner(&txn, principal, input.owner_id.as_deref()).await?;
    let at = now();
    let row = objective::ActiveModel {
        id: Set(new_id()),
        org_id: Set(org_id.clone()),
        parent_id: Set(input.parent_id.clone()),
        owner_id: Set(owner_id),
        title: Set(title),
        description: Set(description),
        period_start: Set(input.period_start),
        period_end: Set(input.period_end),
        progress_mode: Set(input.progress_mode.as_str().to_owned()),
        weight: Set(weight),
        start_value: Set(input.start_value),
        target_value: Set(input.target_value),
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
        input.parent_id,
        at,
        &mut changes,
    )
    .await?;
    txn.commit().await?;
    Ok((model, changes))
}

/// Refuses a parent that is the objective itself or one of its descendants.
async fn refuse_cycle(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
    new_parent: &str,
) -> Result<(), AppError> {
    let cycle = || {
        AppError::bad_input(
            "parentId",
            "That parent would make the objective its own ancestor; pick an objective outside its subtree.",
        )
    };
    let mut cursor = Some(new_parent.to_owned());
    for _ in 0..MAX_TREE_DEPTH {
        let Some(current) = cursor else {
            return Ok(());
        };
        if current == id {
            return Err(cycle());
        }
        cursor = require(db, org_id, &current, "parent objective")
            .await?
            .parent_id;
    }
    Err(cycle())
}

/// Applies changes to an objective and re-rolls every affected ancestor.
pub async fn update(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
    patch: ObjectivePatch,
) -> Result<(objective::Model, Vec<ProgressChange>), AppError> {
    let org_id = principal.org.id.clone();
    let scoring = Scoring::of(&principal.org);
    let txn = db.begin().await?;
    let current = require(&txn, &org_id, id, "objective").await?;
    let mut active: objective::ActiveModel = current.clone().into();
    if let Some(title) = &patch.title {
        active.title = Set(Title::parse(title)?.into_inner());
    }
    if patch.description.is_some() {
        active.description = Set(description(patch.description.clone())?);
    }
    let start = patch.period_start.unwrap_or(current.period_start);
    let end = patch.period_end.unwrap_or(current.period_end);
    validate::period(start, end)?;
    active.period_start = Set(start);
    active.period_end = Set(end);
    if let Some(weight) = patch.weight {
        active.weight = Set(validate::weight(weight)?);
    }
    let mode = patch
        .progress_mode
        .unwrap_or_else(|| ProgressMode::parse(&current.progress_mode));
    let (start_value, target_value) = if mode == ProgressMode::RollUp {
        // Leaving MANUAL/DATA_SOURCE drops the own range; naming one is refused.
        own_range(mode, patch.start_value, patch.target_value)?;
        (None, None)
    } else {
        let s = patch.start_value.or(current.start_value);
        let t = patch.target_value.or(current.target_value);
        own_range(mode, s, t)?;
        (s, t)
    };
    active.progress_mode = Set(mode.as_str().to_owned());
    active.start_value = Set(start_value);
    active.target_value = Set(target_value);
    if let Some(owner) = &patch.owner_id {
        active.owner_id = Set(require_owner(&txn, principal, Some(owner)).await?);
    }
    let old_parent = current.parent_id.clone();
    if let Some(new_parent) = &patch.parent_id {
        if let Some(p) = new_parent {
            refuse_cycle(&txn, &org_id, id, p).await?;
        }
        active.parent_id = Set(new_parent.clone());
    }
    let at = now();
    active.updated_at = Set(at);
    let updated = active.update(&txn).await?;

    let mut changes = Vec::new();
    // The objective's own progress, when its mode or range changed.
    let own = match mode {
        ProgressMode::RollUp => None,
        _ => updated
            .current_value
            .and_then(|v| objective_own_progress(&updated, v)),
    };
    if mode != ProgressMode::RollUp
        && crate::domain::progress::progress_changed(own, updated.progress)
    {
        let mut a: objective::ActiveModel = updated.clone().into();
        a.progress = Set(own);
        a.update(&txn).await?;
    }
    // Roll-up of the objective itself (mode may have switched to ROLL_UP),
    // then of the old and the new parent chains.
    roll_up_ancestors(
        &txn,
        &org_id,
        scoring,
        Some(id.to_owned()),
        at,
        &mut changes,
    )
    .await?;
    if mode != ProgressMode::RollUp {
        roll_up_ancestors(
            &txn,
            &org_id,
            scoring,
            updated.parent_id.clone(),
            at,
            &mut changes,
        )
        .await?;
    }
    if old_parent != updated.parent_id {
        roll_up_ancestors(&txn, &org_id, scoring, old_parent, at, &mut changes).await?;
        roll_up_ancestors(
            &txn,
            &org_id,
            scoring,
            updated.parent_id.clone(),
            at,
            &mut changes,
        )
        .await?;
    }
    let fresh = require(&txn, &org_id, id, "objective").await?;
    txn.commit().await?;
    Ok((fresh, changes))
}

/// Deletes an objective with its key results, data source and history; its
/// children move up to its parent.
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
) -> Result<Vec<ProgressChange>, AppError> {
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    let current = require(&txn, &org_id, id, "objective").await?;
    objective::Entity::update_many()
        .col_expr(
            objective::Column::ParentId,
            current.parent_id.clone().into(),
        )
        .filter(objective::Column::ParentId.eq(id))
        .filter(objective::Column::OrgId.eq(&org_id))
        .exec(&txn)
        .await?;
    objective::Entity::delete_by_id(id.to_owned())
        .exec(&txn)
        .await?;
    let mut changes = Vec::new();
    roll_up_ancestors(
        &txn,
        &org_id,
        Scoring::of(&principal.org),
        current.parent_id,
        now(),
        &mut changes,
    )
    .await?;
    txn.commit().await?;
    Ok(changes)
}
