//! A tree query costs a fixed number of SQL statements, whatever its size.

use serde_json::{Value, json};

use crate::helpers::{Caller, TREE, TestApp, seed_tree, spawn_app, unique_org};

/// Statements one tree query costs, and its response: the fewest of three
/// runs, so that the server's own background work (the event listener
/// catching up once it listens, on PostgreSQL) is not counted.
async fn measure(app: &TestApp, caller: &Caller) -> (u64, Value) {
    let mut fewest = u64::MAX;
    let mut data = Value::Null;
    for _ in 0..3 {
        let before = app.statements.get();
        data = app.data(caller, TREE, json!({})).await;
        fewest = fewest.min(app.statements.get() - before);
    }
    (fewest, data)
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
