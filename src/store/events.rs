//! Rebuilding events from what was committed: a history point becomes a
//! progress event (with the point before it for the previous values), a
//! sync run becomes a sync event.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use entity::{
    data_source,
    enums::{DataSourceState, ProgressSource, Status, SyncOutcome},
    key_result, objective, progress_point, sync_run,
};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::Node;

use super::{history::previous_point, record::MAX_TREE_DEPTH};

/// A committed change of one objective's or key result's progress.
#[derive(Debug, Clone)]
pub struct ProgressEvent {
    pub org_id: String,
    pub objective_id: String,
    /// Set for a key result's change; none for the objective's own.
    pub key_result_id: Option<String>,
    pub value: Option<f64>,
    pub previous_value: Option<f64>,
    pub progress: Option<f64>,
    pub previous_progress: Option<f64>,
    pub status: Status,
    pub previous_status: Status,
    pub source: ProgressSource,
    pub at: DateTime<Utc>,
    /// The objective and all its ancestors, nearest first: a subscriber to
    /// any of them sees this event.
    pub lineage: Vec<String>,
}

/// The outcome of one run of a data source.
#[derive(Debug, Clone)]
pub struct SyncEvent {
    pub org_id: String,
    pub data_source_id: String,
    pub objective_id: Option<String>,
    pub key_result_id: Option<String>,
    /// The data source's state after the run.
    pub state: DataSourceState,
    pub value: Option<f64>,
    /// Whether the value moved.
    pub changed: bool,
    /// Code and message, on failure.
    pub error: Option<(String, String)>,
    pub job_id: Option<String>,
    pub at: DateTime<Utc>,
}

/// Most ids one catch-up loads.
const CATCH_UP_LIMIT: u64 = 10_000;

/// The newest history point and sync run ids.
pub async fn newest_ids(db: &impl ConnectionTrait) -> Result<(i64, i64), DbErr> {
    let point: Option<Option<i64>> = progress_point::Entity::find()
        .select_only()
        .expr(progress_point::Column::Id.max())
        .into_tuple()
        .one(db)
        .await?;
    let run: Option<Option<i64>> = sync_run::Entity::find()
        .select_only()
        .expr(sync_run::Column::Id.max())
        .into_tuple()
        .one(db)
        .await?;
    Ok((point.flatten().unwrap_or(0), run.flatten().unwrap_or(0)))
}

/// The ids of history points and sync runs above these, oldest first.
pub async fn ids_after(
    db: &impl ConnectionTrait,
    point: i64,
    run: i64,
) -> Result<crate::store::Notice, DbErr> {
    let points: Vec<i64> = progress_point::Entity::find()
        .select_only()
        .column(progress_point::Column::Id)
        .filter(progress_point::Column::Id.gt(point))
        .order_by_asc(progress_point::Column::Id)
        .limit(CATCH_UP_LIMIT)
        .into_tuple()
        .all(db)
        .await?;
    let sync_runs: Vec<i64> = sync_run::Entity::find()
        .select_only()
        .column(sync_run::Column::Id)
        .filter(sync_run::Column::Id.gt(run))
        .order_by_asc(sync_run::Column::Id)
        .limit(CATCH_UP_LIMIT)
        .into_tuple()
        .all(db)
        .await?;
    Ok(crate::store::Notice { points, sync_runs })
}

/// Loads the events for these points and sync runs, oldest first.
pub async fn load(
    db: &impl ConnectionTrait,
    point_ids: &[i64],
    sync_run_ids: &[i64],
) -> Result<(Vec<ProgressEvent>, Vec<SyncEvent>), DbErr> {
    let mut progress = Vec::new();
    let mut lineages: HashMap<String, Vec<String>> = HashMap::new();
    if !point_ids.is_empty() {
        let points = progress_point::Entity::find()
            .filter(progress_point::Column::Id.is_in(point_ids.iter().copied()))
            .order_by_asc(progress_point::Column::Id)
            .all(db)
            .await?;
        for point in points {
            if let Some(event) = progress_event(db, point, &mut lineages).await? {
                progress.push(event);
            }
        }
    }
    let mut syncs = Vec::new();
    if !sync_run_ids.is_empty() {
        let runs = sync_run::Entity::find()
            .filter(sync_run::Column::Id.is_in(sync_run_ids.iter().copied()))
            .order_by_asc(sync_run::Column::Id)
            .all(db)
            .await?;
        for run in runs {
            let Some(ds) = data_source::Entity::find_by_id(run.data_source_id.clone())
                .one(db)
                .await?
            else {
                continue;
            };
            syncs.push(SyncEvent {
                org_id: run.org_id,
                data_source_id: run.data_source_id,
                objective_id: ds.objective_id,
                key_result_id: ds.key_result_id,
                state: ds.state,
                value: run.value,
                changed: run.outcome == SyncOutcome::Ok,
                error: run
                    .error_code
                    .map(|code| (code, run.error_message.unwrap_or_default())),
                job_id: run.job_id,
                at: run.started_at + Duration::milliseconds(run.duration_ms),
            });
        }
    }
    Ok((progress, syncs))
}

async fn progress_event(
    db: &impl ConnectionTrait,
    point: progress_point::Model,
    lineages: &mut HashMap<String, Vec<String>>,
) -> Result<Option<ProgressEvent>, DbErr> {
    let Some(node) = Node::of_row(
        point.objective_id.as_deref(),
        point.key_result_id.as_deref(),
    ) else {
        return Ok(None);
    };
    let objective_id = match &node {
        Node::KeyResult(kr_id) => {
            let parent: Option<String> = key_result::Entity::find_by_id(kr_id.clone())
                .select_only()
                .column(key_result::Column::ObjectiveId)
                .into_tuple()
                .one(db)
                .await?;
            let Some(parent) = parent else {
                return Ok(None);
            };
            parent
        }
        Node::Objective(o_id) => o_id.clone(),
    };
    let previous = previous_point(db, &node, point.id).await?;
    if !lineages.contains_key(&objective_id) {
        let chain = lineage(db, &objective_id).await?;
        lineages.insert(objective_id.clone(), chain);
    }
    let lineage = lineages.get(&objective_id).cloned().unwrap_or_default();
    Ok(Some(ProgressEvent {
        org_id: point.org_id,
        objective_id,
        key_result_id: point.key_result_id,
        value: point.value,
        previous_value: previous.as_ref().and_then(|p| p.value),
        progress: point.progress,
        previous_progress: previous.as_ref().and_then(|p| p.progress),
        status: point.status,
        previous_status: previous.as_ref().map_or(Status::NotStarted, |p| p.status),
        source: point.source,
        at: point.at,
        lineage,
    }))
}

/// An objective and its ancestors, nearest first.
async fn lineage(db: &impl ConnectionTrait, objective_id: &str) -> Result<Vec<String>, DbErr> {
    let mut chain = vec![objective_id.to_owned()];
    let mut cursor = objective_id.to_owned();
    for _ in 0..MAX_TREE_DEPTH {
        let parent: Option<Option<String>> = objective::Entity::find_by_id(cursor.clone())
            .select_only()
            .column(objective::Column::ParentId)
            .into_tuple()
            .one(db)
            .await?;
        match parent.flatten() {
            Some(p) if !chain.contains(&p) => {
                chain.push(p.clone());
                cursor = p;
            }
            _ => break,
        }
    }
    Ok(chain)
}
