//! A tree query costs a fixed number of SQL statements, whatever its size.

use chrono::Utc;
use entity::{
    enums::{KeyResultKind, ProgressMode, ProgressSource, Status},
    key_result, objective, progress_point,
};
use sea_orm::{EntityTrait, Set};
use serde_json::{Value, json};

use crate::helpers::{Caller, TestApp, period_half_elapsed, spawn_app, unique_org};

const TREE: &str = "{ objectives { id title progress expectedProgress status owner { name } parent { id } children { id } latestPoint { value progress } keyResults { id title progress status latestPoint { value } } } }";

/// Inserts `n` objectives (a tenth of them roots, the rest their children),
/// each with two key results and a history point for every node.
async fn seed_tree(app: &TestApp, caller: &Caller, n: usize) {
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

/// Statements one tree query costs, and its response.
async fn measure(app: &TestApp, caller: &Caller) -> (u64, Value) {
    let before = app.statements.get();
    let data = app.data(caller, TREE, json!({})).await;
    (app.statements.get() - before, data)
}

#[tokio::test]
async fn a_tree_query_costs_the_same_statements_for_10_and_for_100_objectives() {
    let small = spawn_app().await;
    let caller = Caller::admin(&unique_org("small"));
    seed_tree(&small, &caller, 10).await;
    let (small_count, small_data) = measure(&small, &caller).await;
    assert_eq!(small_data["objectives"].as_array().unwrap().len(), 10);

    let large = spawn_app().await;
    let caller = Caller::admin(&unique_org("large"));
    seed_tree(&large, &caller, 100).await;
    let (large_count, large_data) = measure(&large, &caller).await;
    let objectives = large_data["objectives"].as_array().unwrap();
    assert_eq!(objectives.len(), 100);
    assert!(
        objectives
            .iter()
            .all(|o| o["keyResults"].as_array().unwrap().len() == 2
                && o["latestPoint"]["value"] == 50.0
                && o["owner"]["name"] == caller.sub.as_str())
    );
    assert_eq!(objectives[0]["children"].as_array().unwrap().len(), 9);

    assert_eq!(
        small_count, large_count,
        "statements must not grow with the tree"
    );
    assert!(
        large_count <= 10,
        "{large_count} statements for one tree query"
    );
}

/// Prints the statements and time of one query over 1,000 objectives with
/// 2,000 key results:
/// `cargo test --release --test api -- --ignored --nocapture tree_query_figures`.
#[tokio::test]
#[ignore = "benchmark: prints figures, run on demand"]
async fn tree_query_figures_for_1000_objectives() {
    let app = spawn_app().await;
    let caller = Caller::admin(&unique_org("bench"));
    seed_tree(&app, &caller, 1000).await;
    let mut timings = Vec::new();
    let mut statements = 0;
    for _ in 0..10 {
        let started = std::time::Instant::now();
        let (count, data) = measure(&app, &caller).await;
        timings.push(started.elapsed());
        statements = count;
        assert_eq!(data["objectives"].as_array().unwrap().len(), 1000);
    }
    timings.sort();
    println!(
        "tree query, 1000 objectives + 2000 key results ({}): {statements} SQL statements, median {:?}, worst {:?}",
        if crate::helpers::on_postgres() {
            "PostgreSQL"
        } else {
            "SQLite"
        },
        timings[timings.len() / 2],
        timings[timings.len() - 1]
    );
}
