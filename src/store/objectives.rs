//! Objectives: the alignment tree.
//!
//! Deleting an objective deletes its key results, its data source and all
//! their history; its child objectives are kept and move up to the deleted
//! objective's parent (or become roots), so that deleting a node never
//! silently deletes other people's objectives.

use chrono::NaiveDate;
use entity::{enums::ProgressMode, objective};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};

use crate::{
    domain::{
        bounds::TreeBounds,
        inputs::{self, NewObjective, ObjectivePatch},
        progress::{Period, metric_progress, progress_changed},
    },
    error::AppError,
};

use super::{
    Notice, Principal, new_id, now, orgs,
    record::{MAX_TREE_DEPTH, roll_up_ancestors},
};

/// Which objectives a list holds.
#[derive(Debug, Clone, Copy)]
pub struct ObjectiveFilter {
    /// Only those without a parent.
    pub roots_only: bool,
    /// Only those whose period ends on or after this day.
    pub period_from: Option<NaiveDate>,
    /// Only those whose period starts on or before this day.
    pub period_to: Option<NaiveDate>,
    /// Most rows.
    pub limit: u64,
    /// Rows skipped first.
    pub offset: u64,
}

/// The period of an objective.
pub fn period_of(o: &objective::Model) -> Period {
    Period {
        start: o.period_start,
        end: o.period_end,
    }
}

/// An objective's own progress (MANUAL or DATA_SOURCE mode) for a value.
pub fn own_progress(o: &objective::Model, value: f64) -> Option<f64> {
    metric_progress(o.start_value?, o.target_value?, value)
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
    filter: ObjectiveFilter,
) -> Result<Vec<objective::Model>, AppError> {
    use objective::Column as C;
    let mut query = objective::Entity::find().filter(C::OrgId.eq(org_id));
    if filter.roots_only {
        query = query.filter(C::ParentId.is_null());
    }
    if let Some(from) = filter.period_from {
        query = query.filter(C::PeriodEnd.gte(from));
    }
    if let Some(to) = filter.period_to {
        query = query.filter(C::PeriodStart.lte(to));
    }
    Ok(query
        .order_by_asc(C::CreatedAt)
        .order_by_asc(C::Id)
        .limit(filter.limit)
        .offset(filter.offset)
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

/// Locks an objective's row until the transaction ends (PostgreSQL; SQLite
/// has one writer), so that two writes cannot both take its last free slot.
pub async fn lock(db: &impl ConnectionTrait, org_id: &str, id: &str) -> Result<(), AppError> {
    if db.get_database_backend() == DbBackend::Postgres {
        objective::Entity::find_by_id(id.to_owned())
            .filter(objective::Column::OrgId.eq(org_id))
            .lock_exclusive()
            .one(db)
            .await?;
    }
    Ok(())
}

/// How many child objectives `parent` holds.
async fn count_children(
    db: &impl ConnectionTrait,
    org_id: &str,
    parent: &str,
) -> Result<u64, AppError> {
    Ok(objective::Entity::find()
        .filter(objective::Column::OrgId.eq(org_id))
        .filter(objective::Column::ParentId.eq(parent))
        .count(db)
        .await?)
}

/// The level of `id` in its tree, a root being level 1.
async fn level_of(db: &impl ConnectionTrait, org_id: &str, id: &str) -> Result<u64, AppError> {
    let mut level = 0;
    let mut cursor = Some(id.to_owned());
    while let Some(current) = cursor {
        level += 1;
        if level > MAX_TREE_DEPTH as u64 {
            break;
        }
        cursor = require(db, org_id, &current, "parent objective")
            .await?
            .parent_id;
    }
    Ok(level)
}

/// How many levels the subtree of `id` spans, itself included (1 for a
/// leaf), counted no further than `limit` + 1.
async fn height_of(
    db: &impl ConnectionTrait,
    org_id: &str,
    id: &str,
    limit: u64,
) -> Result<u64, AppError> {
    let mut level = vec![id.to_owned()];
    let mut height = 1;
    while height <= limit {
        let below: Vec<String> = objective::Entity::find()
            .select_only()
            .column(objective::Column::Id)
            .filter(objective::Column::OrgId.eq(org_id))
            .filter(objective::Column::ParentId.is_in(level))
            .into_tuple()
            .all(db)
            .await?;
        if below.is_empty() {
            break;
        }
        height += 1;
        level = below;
    }
    Ok(height)
}

/// Refuses placing the subtree of `id` (`height` levels) under `parent`
/// when the parent is full or the tree would grow too deep.
async fn check_placement(
    db: &impl ConnectionTrait,
    org_id: &str,
    parent: &str,
    height: u64,
    bounds: TreeBounds,
) -> Result<(), AppError> {
    lock(db, org_id, parent).await?;
    bounds.check_children(count_children(db, org_id, parent).await?, 1)?;
    bounds.check_depth(level_of(db, org_id, parent).await?, height)?;
    Ok(())
}

/// Creates an objective and rolls it into its parent.
pub async fn create(
    db: &DatabaseConnection,
    principal: &Principal,
    input: NewObjective,
    bounds: TreeBounds,
) -> Result<(objective::Model, Notice), AppError> {
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    if let Some(parent) = &input.parent_id {
        require(&txn, &org_id, parent, "parent objective").await?;
        check_placement(&txn, &org_id, parent, 1, bounds).await?;
    }
    let owner_id = require_owner(&txn, principal, input.owner_id.as_deref()).await?;
    let at = now();
    let row = objective::ActiveModel {
        id: Set(new_id()),
        org_id: Set(org_id.clone()),
        parent_id: Set(input.parent_id.clone()),
        owner_id: Set(owner_id),
        title: Set(input.title.into_inner()),
        description: Set(input.description.into_inner()),
        period_start: Set(input.period.start),
        period_end: Set(input.period.end),
        progress_mode: Set(input.progress_mode),
        weight: Set(input.weight.get()),
        start_value: Set(input.own_range.map(|r| r.start())),
        target_value: Set(input.own_range.map(|r| r.target())),
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
        input.parent_id,
        at,
        &mut notice,
    )
    .await?;
    txn.commit().await?;
    Ok((model, notice))
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
    bounds: TreeBounds,
) -> Result<(objective::Model, Notice), AppError> {
    let org_id = principal.org.id.clone();
    let scoring = principal.scoring();
    let txn = db.begin().await?;
    let current = require(&txn, &org_id, id, "objective").await?;
    let mut active: objective::ActiveModel = current.clone().into();
    if let Some(title) = patch.title {
        active.title = Set(title.into_inner());
    }
    if let Some(description) = patch.description {
        active.description = Set(description.into_inner());
    }
    let period = inputs::period(
        patch.period_start.unwrap_or(current.period_start),
        patch.period_end.unwrap_or(current.period_end),
    )?;
    active.period_start = Set(period.start);
    active.period_end = Set(period.end);
    if let Some(weight) = patch.weight {
        active.weight = Set(weight.get());
    }
    let mode = patch.progress_mode.unwrap_or(current.progress_mode);
    let start = patch.start_value.map(|v| v.get());
    let target = patch.target_value.map(|v| v.get());
    let range = if mode == ProgressMode::RollUp {
        inputs::own_range(mode, start, target)?
    } else {
        inputs::own_range(
            mode,
            start.or(current.start_value),
            target.or(current.target_value),
        )?
    };
    active.progress_mode = Set(mode);
    active.start_value = Set(range.map(|r| r.start()));
    active.target_value = Set(range.map(|r| r.target()));
    if let Some(owner) = &patch.owner_id {
        active.owner_id = Set(require_owner(&txn, principal, Some(owner)).await?);
    }
    let old_parent = current.parent_id.clone();
    if let Some(new_parent) = &patch.parent_id {
        if let Some(p) = new_parent
            && current.parent_id.as_deref() != Some(p.as_str())
        {
            refuse_cycle(&txn, &org_id, id, p).await?;
            let height = height_of(&txn, &org_id, id, bounds.depth).await?;
            check_placement(&txn, &org_id, p, height, bounds).await?;
        }
        active.parent_id = Set(new_parent.clone());
    }
    let at = now();
    active.updated_at = Set(at);
    let updated = active.update(&txn).await?;

    let mut notice = Notice::default();
    let own = match mode {
        ProgressMode::RollUp => None,
        _ => updated
            .current_value
            .and_then(|v| own_progress(&updated, v)),
    };
    if mode != ProgressMode::RollUp && progress_changed(own, updated.progress) {
        let mut a: objective::ActiveModel = updated.clone().into();
        a.progress = Set(own);
        a.update(&txn).await?;
    }
    roll_up_ancestors(&txn, &org_id, scoring, Some(id.to_owned()), at, &mut notice).await?;
    if mode != ProgressMode::RollUp {
        roll_up_ancestors(
            &txn,
            &org_id,
            scoring,
            updated.parent_id.clone(),
            at,
            &mut notice,
        )
        .await?;
    }
    if old_parent != updated.parent_id {
        roll_up_ancestors(&txn, &org_id, scoring, old_parent, at, &mut notice).await?;
        roll_up_ancestors(
            &txn,
            &org_id,
            scoring,
            updated.parent_id.clone(),
            at,
            &mut notice,
        )
        .await?;
    }
    let fresh = require(&txn, &org_id, id, "objective").await?;
    txn.commit().await?;
    Ok((fresh, notice))
}

/// Deletes an objective with its key results, data source and history; its
/// children move up to its parent.
pub async fn delete(
    db: &DatabaseConnection,
    principal: &Principal,
    id: &str,
    bounds: TreeBounds,
) -> Result<Notice, AppError> {
    let org_id = principal.org.id.clone();
    let txn = db.begin().await?;
    let current = require(&txn, &org_id, id, "objective").await?;
    if let Some(parent) = &current.parent_id {
        // Its children move up: the parent must have room for them.
        lock(&txn, &org_id, parent).await?;
        let moving = count_children(&txn, &org_id, id).await?;
        let staying = count_children(&txn, &org_id, parent)
            .await?
            .saturating_sub(1);
        if moving > 0 && bounds.check_children(staying, moving).is_err() {
            return Err(AppError::Conflict(format!(
                "Deleting this objective would move its {moving} child objectives to a parent that can hold only {} more (MAX_CHILDREN_PER_OBJECTIVE is {}); move some of them first.",
                bounds.children_per_objective.saturating_sub(staying),
                bounds.children_per_objective
            )));
        }
    }
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
    let mut notice = Notice::default();
    roll_up_ancestors(
        &txn,
        &org_id,
        principal.scoring(),
        current.parent_id,
        now(),
        &mut notice,
    )
    .await?;
    txn.commit().await?;
    Ok(notice)
}
