//! A large OKR tree written straight into the database, for the batching
//! tests and the figures (seeding through the API would take minutes).

use chrono::Utc;
use entity::{
    enums::{KeyResultKind, ProgressMode, ProgressSource, Status},
    key_result, objective, progress_point,
};
use sea_orm::{EntityTrait, Set};
use serde_json::json;

use super::{Caller, TestApp, period_half_elapsed};

/// The dashboard-like tree query the batching tests and figures use.
pub const TREE: &str = "{ objectives { id title progress expectedProgress status owner { name } parent { id } children { id } latestPoint { value progress } keyResults { id title progress status latestPoint { value } } } }";

/// Inserts `n` objectives (a tenth of them roots, the rest their children),
/// each with two key results and a history point for every node.
pub async fn seed_tree(app: &TestApp, caller: &Caller, n: usize) {
    let me = app
        .data(caller, "{ me { id } organization { id } }", json!({}))
        .await;
    let user_id = me["me"]["id"].as_str().unwrap().to_owned();
    let org_id = me["organization"]["id"].as_str().unwrap().to_owned();
    let (start, end) = period_half_elapsed();
    let now = Utc::now();
    let roots = (n / 10).max(1);
    let mut objectives = Vec::new();
    let mut key_results = Vec::new();
    let mut points = Vec::new();
    for i in 0..n {
        let id = format!("obj-{n}-{i:05}");
        let parent = (i >= roots).then(|| format!("obj-{n}-{:05}", i % roots));
        objectives.push(objective::ActiveModel {
            id: Set(id.clone()),
            org_id: Set(org_id.clone()),
            parent_id: Set(parent),
            owner_id: Set(user_id.clone()),
            title: Set(format!("Objective {i}")),
            description: Set(String::new()),
            period_start: Set(start),
            period_end: Set(end),
            progress_mode: Set(ProgressMode::RollUp),
            weight: Set(1.0),
            start_value: Set(None),
            target_value: Set(None),
            current_value: Set(None),
            progress: Set(Some(50.0)),
            created_at: Set(now),
            updated_at: Set(now),
        });
        points.push(point(&org_id, Some(id.clone()), None, now));
        for k in 0..2 {
            let kr_id = format!("{id}-kr{k}");
            key_results.push(key_result::ActiveModel {
                id: Set(kr_id.clone()),
                org_id: Set(org_id.clone()),
                objective_id: Set(id.clone()),
                title: Set(format!("KR {k}")),
                kind: Set(KeyResultKind::Metric),
                kpi_condition: Set(None),
                start_value: Set(Some(0.0)),
                target_value: Set(100.0),
                unit: Set(String::new()),
                weight: Set(1.0),
                current_value: Set(Some(50.0)),
                progress: Set(Some(50.0)),
                created_at: Set(now),
                updated_at: Set(now),
            });
            points.push(point(&org_id, None, Some(kr_id), now));
        }
    }
    for chunk in objectives.chunks(200) {
        objective::Entity::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .unwrap();
    }
    for chunk in key_results.chunks(200) {
        key_result::Entity::insert_many(chunk.to_vec())
            .exec(&app.db)
            .await
            .unwrap();
    }
    for chunk in points.chunks(200) {
        progress_point::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&app.db)
            .await
            .unwrap();
    }
}

fn point(
    org_id: &str,
    objective_id: Option<String>,
    key_result_id: Option<String>,
    at: chrono::DateTime<Utc>,
) -> progress_point::ActiveModel {
    progress_point::ActiveModel {
        org_id: Set(org_id.to_owned()),
        objective_id: Set(objective_id),
        key_result_id: Set(key_result_id),
        at: Set(at),
        value: Set(Some(50.0)),
        progress: Set(Some(50.0)),
        expected_progress: Set(50.0),
        status: Set(Status::OnTrack),
        source: Set(ProgressSource::CheckIn),
        note: Set(None),
        ..Default::default()
    }
}
