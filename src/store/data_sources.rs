//! Data sources: which query feeds which objective or key result, found and
//! checked; their settings; unlinking. Runs are recorded in
//! [`runs`](super::runs), leases taken in [`lease`](super::lease).

use chrono::Duration;
use entity::{data_source, enums::DataSourceState, enums::ProgressMode, key_result, objective};
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};

use crate::{
    domain::{Node, node::split, progress::Period, warehouse::SyncInterval},
    error::AppError,
};

use super::{new_id, now, objectives::period_of};

/// What a data source feeds, found and checked.
#[derive(Debug, Clone)]
pub struct Target {
    pub node: Node,
    /// The period its `@period_start` / `@period_end` come from.
    pub period: Period,
    /// The value it shows now, to tell a changed value from an unchanged one.
    pub current_value: Option<f64>,
}

/// Finds the key result or objective to link, in the caller's organization.
/// An objective takes its value from a query only in DATA_SOURCE mode.
pub async fn resolve(
    db: &impl ConnectionTrait,
    org_id: &str,
    node: &Node,
) -> Result<Target, AppError> {
    resolve_in_mode(db, org_id, node, true).await
}

/// The target of an existing data source. An objective switched away from
/// DATA_SOURCE mode keeps its link readable.
pub async fn resolve_existing(
    db: &impl ConnectionTrait,
    ds: &data_source::Model,
) -> Result<Target, AppError> {
    let node = node_of(ds)?;
    resolve_in_mode(db, &ds.org_id, &node, false).await
}

async fn resolve_in_mode(
    db: &impl ConnectionTrait,
    org_id: &str,
    node: &Node,
    require_data_source_mode: bool,
) -> Result<Target, AppError> {
    match node {
        Node::KeyResult(kr_id) => {
            let kr = key_result::Entity::find_by_id(kr_id.clone())
                .filter(key_result::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("key result", kr_id))?;
            let o = objective::Entity::find_by_id(kr.objective_id.clone())
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("objective", &kr.objective_id))?;
            Ok(Target {
                node: node.clone(),
                period: period_of(&o),
                current_value: kr.current_value,
            })
        }
        Node::Objective(o_id) => {
            let o = objective::Entity::find_by_id(o_id.clone())
                .filter(objective::Column::OrgId.eq(org_id))
                .one(db)
                .await?
                .ok_or_else(|| AppError::not_found("objective", o_id))?;
            if require_data_source_mode && o.progress_mode != ProgressMode::DataSource {
                return Err(AppError::bad_input(
                    "objectiveId",
                    "Only an objective with progressMode DATA_SOURCE (and its own startValue and targetValue) takes its value from a query; update the objective first, or link a key result instead.",
                ));
            }
            Ok(Target {
                node: node.clone(),
                period: period_of(&o),
                current_value: o.current_value,
            })
        }
    }
}

/// The node a stored data source feeds.
pub fn node_of(ds: &data_source::Model) -> Result<Node, AppError> {
    Node::of_row(ds.objective_id.as_deref(), ds.key_result_id.as_deref())
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("data source {} feeds nothing", ds.id)))
}

/// The data source of a key result or objective, if it has one.
pub async fn of_node(
    db: &impl ConnectionTrait,
    node: &Node,
) -> Result<Option<data_source::Model>, AppError> {
    let filter = match node {
        Node::KeyResult(id) => data_source::Column::KeyResultId.eq(id.as_str()),
        Node::Objective(id) => data_source::Column::ObjectiveId.eq(id.as_str()),
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

/// Data sources of these nodes, in at most two statements.
pub async fn of_nodes(
    db: &impl ConnectionTrait,
    org_id: &str,
    nodes: &[Node],
) -> Result<Vec<data_source::Model>, sea_orm::DbErr> {
    let (objective_ids, key_result_ids) = split(nodes);
    let mut rows = Vec::new();
    if !objective_ids.is_empty() {
        rows.extend(
            data_source::Entity::find()
                .filter(data_source::Column::OrgId.eq(org_id))
                .filter(data_source::Column::ObjectiveId.is_in(objective_ids))
                .all(db)
                .await?,
        );
    }
    if !key_result_ids.is_empty() {
        rows.extend(
            data_source::Entity::find()
                .filter(data_source::Column::OrgId.eq(org_id))
                .filter(data_source::Column::KeyResultId.is_in(key_result_ids))
                .all(db)
                .await?,
        );
    }
    Ok(rows)
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

/// A new id for a data source, known before it is saved so that its first
/// BigQuery job can carry it as a label.
pub fn reserve_id() -> String {
    new_id()
}

/// The refusal for a second data source on one target.
pub fn already_linked() -> AppError {
    AppError::Conflict(
        "This already has a data source; change it with updateDataSource or unlink it first."
            .to_owned(),
    )
}

/// Settings of a data source that need no BigQuery run to change.
#[derive(Debug, Clone, Default)]
pub struct SettingsPatch {
    pub interval: Option<SyncInterval>,
    pub paused: Option<bool>,
}

/// Applies interval and pause changes; a new SQL or connection is saved
/// through [`replace_query`](super::runs::replace_query) after validation.
pub async fn update_settings(
    db: &impl ConnectionTrait,
    ds: data_source::Model,
    patch: SettingsPatch,
) -> Result<data_source::Model, AppError> {
    let at = now();
    let was_paused = ds.state == DataSourceState::Paused;
    let has_error = ds.last_error_code.is_some();
    let has_value = ds.last_value.is_some();
    let mut active: data_source::ActiveModel = ds.into();
    if let Some(interval) = patch.interval {
        active.sync_interval_seconds = Set(interval.seconds());
        active.next_sync_at = Set(at + Duration::seconds(interval.seconds()));
    }
    match patch.paused {
        Some(true) => active.state = Set(DataSourceState::Paused),
        Some(false) if was_paused => {
            let state = if has_error {
                DataSourceState::Error
            } else if has_value {
                DataSourceState::Ok
            } else {
                DataSourceState::Pending
            };
            active.state = Set(state);
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
