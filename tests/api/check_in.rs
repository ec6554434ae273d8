use serde_json::{Value, json};

use crate::helpers::{Caller, objective_input, spawn_app, unique_org};

const HISTORY: &str = "query($id: ID!) { objective(id: $id) { progress status history { value progress status source } } }";

fn child_of(parent: &str, title: &str) -> Value {
    let mut input = objective_input(title);
    input["parentId"] = json!(parent);
    input
}

#[tokio::test]
async fn a_check_in_moves_status_as_the_shortfall_crosses_each_threshold() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "M", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    // About half of the period has passed.
    let on_track = app.check_in(&admin, &kr, 60.0).await;
    let expected = on_track["expectedProgress"].as_f64().unwrap();
    assert!((50.0..52.0).contains(&expected), "{expected}");
    assert_eq!(on_track["status"], "ON_TRACK");
    assert_eq!(on_track["source"], "CHECK_IN");
    assert_eq!(app.check_in(&admin, &kr, 40.0).await["status"], "BEHIND");
    assert_eq!(app.check_in(&admin, &kr, 20.0).await["status"], "AT_RISK");
    let data = app.data(&admin, HISTORY, json!({ "id": objective })).await;
    let statuses: Vec<&str> = data["objective"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["ON_TRACK", "BEHIND", "AT_RISK"]);
}

#[tokio::test]
async fn a_check_in_rolls_up_through_every_ancestor_with_a_point_each() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let company = app.objective(&admin, objective_input("Company")).await;
    let team = app.objective(&admin, child_of(&company, "Team")).await;
    let squad = app.objective(&admin, child_of(&team, "Squad")).await;
    let light = app
        .key_result(&admin, json!({ "objectiveId": squad, "title": "Light", "kind": "METRIC", "startValue": 0, "targetValue": 100, "weight": 1 }))
        .await;
    let heavy = app
        .key_result(&admin, json!({ "objectiveId": squad, "title": "Heavy", "kind": "METRIC", "startValue": 0, "targetValue": 100, "weight": 3 }))
        .await;
    app.check_in(&admin, &light, 100.0).await;
    app.check_in(&admin, &heavy, 20.0).await;

    let squad_data = app.data(&admin, HISTORY, json!({ "id": squad })).await;
    // (1 × 100 + 3 × 20) / 4
    assert_eq!(squad_data["objective"]["progress"], 40.0);
    let progress: Vec<f64> = squad_data["objective"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["progress"].as_f64().unwrap())
        .collect();
    assert_eq!(progress, [25.0, 40.0]);
    for ancestor in [&team, &company] {
        let data = app.data(&admin, HISTORY, json!({ "id": ancestor })).await;
        assert_eq!(data["objective"]["progress"], 40.0);
        let history = data["objective"]["history"].as_array().unwrap();
        assert_eq!(history.len(), 2);
        assert!(history.iter().all(|p| p["source"] == "ROLL_UP"));
    }
}

#[tokio::test]
async fn a_sibling_objective_without_a_value_holds_its_parent_back() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let parent = app.objective(&admin, objective_input("Parent")).await;
    let a = app.objective(&admin, child_of(&parent, "A")).await;
    app.objective(&admin, child_of(&parent, "B")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": a, "title": "M", "kind": "METRIC", "startValue": 0, "targetValue": 10 }))
        .await;
    app.check_in(&admin, &kr, 10.0).await;
    let data = app.data(&admin, HISTORY, json!({ "id": parent })).await;
    assert_eq!(data["objective"]["progress"], 50.0);
}

#[tokio::test]
async fn a_manual_objective_takes_check_ins_and_a_roll_up_objective_refuses_them() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let parent = app.objective(&admin, objective_input("Parent")).await;
    let mut manual = child_of(&parent, "Manual");
    manual["progressMode"] = json!("MANUAL");
    manual["startValue"] = json!(1000);
    manual["targetValue"] = json!(0);
    let manual = app.objective(&admin, manual).await;
    let data = app
        .data(
            &admin,
            "mutation($id: ID!) { checkIn(input: { objectiveId: $id, value: 250, note: \"burn-down\" }) { value progress status note objectiveId keyResultId } }",
            json!({ "id": manual }),
        )
        .await;
    assert_eq!(
        data["checkIn"],
        json!({ "value": 250.0, "progress": 75.0, "status": "ON_TRACK", "note": "burn-down", "objectiveId": manual, "keyResultId": null })
    );
    let data = app.data(&admin, HISTORY, json!({ "id": parent })).await;
    assert_eq!(data["objective"]["progress"], 75.0);

    let err = app
        .error(
            &admin,
            "mutation($id: ID!) { checkIn(input: { objectiveId: $id, value: 1 }) { value } }",
            json!({ "id": parent }),
        )
        .await;
    assert_eq!(
        (err.code.as_str(), err.field.as_deref()),
        ("BAD_USER_INPUT", Some("objectiveId"))
    );
}

#[tokio::test]
async fn a_check_in_needs_exactly_one_target_and_saves_nothing_when_refused() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "M", "kind": "METRIC", "startValue": 0, "targetValue": 10 }))
        .await;
    let before = app.count_rows("progress_points").await;
    for input in [
        json!({ "value": 1 }),
        json!({ "value": 1, "keyResultId": kr, "objectiveId": objective }),
        json!({ "value": 1, "keyResultId": kr, "note": "n".repeat(2001) }),
    ] {
        let err = app
            .error(
                &admin,
                "mutation($input: CheckInInput!) { checkIn(input: $input) { value } }",
                json!({ "input": input }),
            )
            .await;
        assert_eq!(err.code, "BAD_USER_INPUT", "{}", err.message);
    }
    let err = app
        .error(
            &admin,
            "mutation { checkIn(input: { keyResultId: \"missing\", value: 1 }) { value } }",
            json!({}),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");
    assert_eq!(app.count_rows("progress_points").await, before);
    let data = app
        .data(
            &admin,
            "query($id: ID!) { keyResult(id: $id) { currentValue } }",
            json!({ "id": kr }),
        )
        .await;
    assert_eq!(data["keyResult"]["currentValue"], Value::Null);
}

#[tokio::test]
async fn history_is_oldest_first_and_can_be_limited_to_a_time_range() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "M", "kind": "METRIC", "startValue": 0, "targetValue": 10 }))
        .await;
    app.check_in(&admin, &kr, 1.0).await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let middle = chrono::Utc::now();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    app.check_in(&admin, &kr, 2.0).await;
    app.check_in(&admin, &kr, 3.0).await;
    let query = "query($id: ID!, $from: DateTime, $to: DateTime) { keyResult(id: $id) { history(from: $from, to: $to) { value at } latestPoint { value } } }";
    let all = app.data(&admin, query, json!({ "id": kr })).await;
    let values: Vec<f64> = all["keyResult"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [1.0, 2.0, 3.0]);
    assert_eq!(all["keyResult"]["latestPoint"]["value"], 3.0);
    let later = app
        .data(
            &admin,
            query,
            json!({ "id": kr, "from": middle.to_rfc3339() }),
        )
        .await;
    assert_eq!(later["keyResult"]["history"].as_array().unwrap().len(), 2);
    let earlier = app
        .data(
            &admin,
            query,
            json!({ "id": kr, "to": middle.to_rfc3339() }),
        )
        .await;
    assert_eq!(earlier["keyResult"]["history"][0]["value"], 1.0);
    assert_eq!(earlier["keyResult"]["history"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn moving_an_objective_re_rolls_both_the_old_and_the_new_parent() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let old_parent = app.objective(&admin, objective_input("Old")).await;
    let new_parent = app.objective(&admin, objective_input("New")).await;
    let child = app.objective(&admin, child_of(&old_parent, "Child")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": child, "title": "M", "kind": "METRIC", "startValue": 0, "targetValue": 10 }))
        .await;
    app.check_in(&admin, &kr, 7.0).await;
    app.data(
        &admin,
        "mutation($id: ID!, $p: ID) { updateObjective(id: $id, input: { parentId: $p }) { id } }",
        json!({ "id": child, "p": new_parent }),
    )
    .await;
    let data = app
        .data(
            &admin,
            "query($a: ID!, $b: ID!) { a: objective(id: $a) { progress } b: objective(id: $b) { progress } }",
            json!({ "a": old_parent, "b": new_parent }),
        )
        .await;
    assert_eq!(data["a"]["progress"], Value::Null);
    assert_eq!(data["b"]["progress"], 70.0);
}
