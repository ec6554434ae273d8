//! A tree query costs a fixed number of SQL statements, whatever its size.

use serde_json::{Value, json};

use crate::helpers::{Caller, TREE, TestApp, objective_input, seed_tree, spawn_app, unique_org};

/// Statements one tree query costs, and its response: the fewest of three
/// runs, so that the server's own background work (the event listener
/// catching up once it listens, on PostgreSQL) is not counted.
async fn measure(app: &TestApp, caller: &Caller) -> (u64, Value) {
    measure_query(app, caller, TREE, json!({})).await
}

/// Statements one query costs and its data, as [`measure`] counts them.
async fn measure_query(
    app: &TestApp,
    caller: &Caller,
    query: &str,
    variables: Value,
) -> (u64, Value) {
    let mut fewest = u64::MAX;
    let mut data = Value::Null;
    for _ in 0..3 {
        let before = app.statements.get();
        data = app.data(caller, query, variables.clone()).await;
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

/// Each node's newest point, by objective and key result id.
fn newest_points(data: &Value) -> Vec<(String, Value)> {
    let mut points = Vec::new();
    for objective in data["objectives"].as_array().unwrap() {
        points.push((
            objective["id"].as_str().unwrap().to_owned(),
            objective["latestPoint"].clone(),
        ));
        for kr in objective["keyResults"].as_array().unwrap() {
            points.push((
                kr["id"].as_str().unwrap().to_owned(),
                kr["latestPoint"].clone(),
            ));
        }
    }
    points
}

#[tokio::test]
async fn the_newest_point_is_taken_from_a_whole_history_read_beside_it() {
    let app = spawn_app().await;
    let caller = Caller::admin(&unique_org("latest"));
    let objective = app.objective(&caller, objective_input("Grow")).await;
    app.objective(&caller, objective_input("Quiet")).await;
    for (title, values) in [
        ("A", vec![10.0, 20.0, 30.0]),
        ("B", vec![5.0]),
        ("C", vec![]),
    ] {
        let kr = app
            .key_result(
                &caller,
                json!({ "objectiveId": objective, "title": title, "kind": "METRIC", "startValue": 0, "targetValue": 100 }),
            )
            .await;
        for value in values {
            app.check_in(&caller, &kr, value).await;
        }
    }
    let newest = "latestPoint { id value }";
    let (_, alone) = measure_query(
        &app,
        &caller,
        &format!("{{ objectives(limit: 10) {{ id {newest} keyResults {{ id {newest} }} }} }}"),
        json!({}),
    )
    .await;
    let expected = newest_points(&alone);
    let values: Vec<Value> = expected.iter().map(|(_, p)| p["value"].clone()).collect();
    assert!(values.contains(&json!(30.0)) && values.contains(&json!(5.0)));
    assert!(
        values.contains(&Value::Null),
        "a node without points has none"
    );

    let history = "history { id }";
    let (history_only, _) = measure_query(
        &app,
        &caller,
        &format!("{{ objectives(limit: 10) {{ id {history} keyResults {{ id {history} }} }} }}"),
        json!({}),
    )
    .await;
    let (both, data) = measure_query(
        &app,
        &caller,
        &format!(
            "{{ objectives(limit: 10) {{ id {newest} {history} keyResults {{ id {newest} {history} }} }} }}"
        ),
        json!({}),
    )
    .await;
    assert_eq!(newest_points(&data), expected);
    assert_eq!(
        both, history_only,
        "the newest point of a whole history costs no statement of its own"
    );

    // Histories that are cut short or windowed do not hold every point,
    // so the newest point is read for itself, and still the newest.
    for partial in [
        "history(limit: 1) { id }",
        "history(from: \"2000-01-01T00:00:00Z\", limit: 100) { id }",
    ] {
        let (_, data) = measure_query(
            &app,
            &caller,
            &format!(
                "{{ objectives(limit: 10) {{ id {newest} {partial} keyResults {{ id {newest} {partial} }} }} }}"
            ),
            json!({}),
        )
        .await;
        assert_eq!(newest_points(&data), expected, "with {partial}");
    }
}

/// Every node's children, newest point and history, one page at a time.
const PAGED_TREE: &str = "query($limit: Int!, $offset: Int!, $from: NaiveDate) { objectives(limit: $limit, offset: $offset, periodFrom: $from) { id children { id } latestPoint { id } history(limit: 5) { id value } first: history(limit: 1) { id } keyResults { id latestPoint { id } history(limit: 5) { id value } } } }";

#[tokio::test]
async fn the_whole_organization_is_read_without_its_ids_and_answers_as_its_pages_do() {
    let app = spawn_app().await;
    let caller = Caller::admin(&unique_org("pages"));
    seed_tree(&app, &caller, 30).await;
    // Another organization's tree, which must not show through.
    seed_tree(&app, &Caller::admin(&unique_org("other")), 10).await;
    let page = |limit: u32, offset: u32, from: Option<&str>| {
        let variables = json!({ "limit": limit, "offset": offset, "from": from });
        measure_query(&app, &caller, PAGED_TREE, variables)
    };
    let (whole_cost, whole) = page(100, 0, None).await;
    let objectives = whole["objectives"].as_array().unwrap();
    assert_eq!(objectives.len(), 30);
    assert!(
        objectives
            .iter()
            .all(|o| o["keyResults"].as_array().unwrap().len() == 2
                && o["history"].as_array().unwrap().len() == 1)
    );
    assert_eq!(objectives[0]["children"].as_array().unwrap().len(), 9);

    // Filtered, a page of the organization reads by listed ids.
    let (filtered_cost, filtered) = page(100, 0, Some("2000-01-01")).await;
    assert_eq!(filtered, whole);
    assert!(
        whole_cost < filtered_cost,
        "the whole tree takes its children from the objectives it read ({whole_cost} against {filtered_cost} statements)"
    );

    // Pages that stop short of the whole, and a limit met exactly.
    let (_, first) = page(20, 0, None).await;
    let (_, rest) = page(20, 20, None).await;
    let mut paged = first["objectives"].as_array().unwrap().clone();
    paged.extend(rest["objectives"].as_array().unwrap().iter().cloned());
    assert_eq!(&paged, objectives);
    let (_, exact) = page(30, 0, None).await;
    assert_eq!(exact, whole);
}
