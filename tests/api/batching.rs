//! A tree query costs a fixed number of SQL statements, whatever its size.

use serde_json::{Value, json};

use crate::helpers::{Caller, TREE, TestApp, objective_input, seed_tree, spawn_app, unique_org};

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

/// The tree with the whole history of every objective and key result.
const TREE_WITH_HISTORY: &str = "{ objectives(limit: 100) { id history(limit: 20) { at value } keyResults { id history(limit: 20) { at value } } } }";

#[tokio::test]
async fn history_on_every_node_costs_the_same_statements_for_10_and_for_100_objectives() {
    let mut counts = Vec::new();
    for n in [10, 100] {
        let app = spawn_app().await;
        let caller = Caller::admin(&unique_org("h"));
        seed_tree(&app, &caller, n).await;
        let mut fewest = u64::MAX;
        for _ in 0..3 {
            let before = app.statements.get();
            let data = app.data(&caller, TREE_WITH_HISTORY, json!({})).await;
            fewest = fewest.min(app.statements.get() - before);
            let objectives = data["objectives"].as_array().unwrap();
            assert_eq!(objectives.len(), n);
            assert!(objectives.iter().all(|o| {
                o["history"].as_array().unwrap().len() == 1
                    && o["keyResults"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .all(|kr| kr["history"].as_array().unwrap().len() == 1)
            }));
        }
        counts.push(fewest);
    }
    assert_eq!(
        counts[0], counts[1],
        "statements must not grow with the tree"
    );
    assert!(
        counts[1] <= 10,
        "{} statements for one tree query",
        counts[1]
    );
}

#[tokio::test]
async fn batched_history_gives_each_node_its_own_points_in_order_and_window() {
    let app = spawn_app().await;
    let caller = Caller::admin(&unique_org("h"));
    let objective = app.objective(&caller, objective_input("Grow")).await;
    let mut krs = Vec::new();
    for (title, values) in [("A", vec![10.0, 20.0, 30.0]), ("B", vec![5.0, 15.0])] {
        let kr = app
            .key_result(
                &caller,
                json!({ "objectiveId": objective, "title": title, "kind": "METRIC", "startValue": 0, "targetValue": 100 }),
            )
            .await;
        krs.push((kr, values));
    }
    // Interleaved check-ins, so that the two histories are mixed in time.
    for i in 0..3 {
        for (kr, values) in &krs {
            if let Some(value) = values.get(i) {
                app.check_in(&caller, kr, *value).await;
            }
        }
    }
    let data = app
        .data(
            &caller,
            "{ objectives(limit: 10) { history(limit: 10) { value } keyResults { id history(limit: 10) { at value } firstTwo: history(limit: 2) { value } } } }",
            json!({}),
        )
        .await;
    let values = |list: &Value| -> Vec<f64> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| p["value"].as_f64().unwrap())
            .collect()
    };
    let objective = &data["objectives"][0];
    assert_eq!(
        objective["history"].as_array().unwrap().len(),
        5,
        "one roll-up point per check-in"
    );
    let listed = objective["keyResults"].as_array().unwrap();
    for (kr, expected) in &krs {
        let node = listed.iter().find(|k| k["id"] == kr.as_str()).unwrap();
        assert_eq!(&values(&node["history"]), expected);
        assert_eq!(values(&node["firstTwo"]), expected[..2].to_vec());
        let times: Vec<&str> = node["history"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["at"].as_str().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    }
    // A window from the second point of A on leaves A two points, B its last.
    let a_second = data["objectives"][0]["keyResults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["id"] == krs[0].0.as_str())
        .unwrap()["history"][1]["at"]
        .clone();
    let windowed = app
        .data(
            &caller,
            "query($from: DateTime) { objectives(limit: 10) { keyResults { id history(from: $from, limit: 10) { value } } } }",
            json!({ "from": a_second }),
        )
        .await;
    for kr in windowed["objectives"][0]["keyResults"].as_array().unwrap() {
        let expected = if kr["id"] == krs[0].0.as_str() {
            vec![20.0, 30.0]
        } else {
            vec![15.0]
        };
        assert_eq!(values(&kr["history"]), expected);
    }
}
