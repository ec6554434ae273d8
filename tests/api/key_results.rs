use serde_json::{Value, json};

use crate::helpers::{Caller, objective_input, spawn_app, unique_org};

const CREATE: &str = "mutation($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id kind kpiCondition startValue targetValue unit weight currentValue progress status } }";

#[tokio::test]
async fn bad_key_result_input_is_refused_with_the_field_and_nothing_is_saved() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let metric = |patch: Value| {
        let mut input = json!({ "objectiveId": objective, "title": "KR", "kind": "METRIC", "startValue": 0, "targetValue": 10 });
        for (k, v) in patch.as_object().unwrap() {
            input[k] = v.clone();
        }
        input
    };
    let cases = [
        (metric(json!({ "title": "" })), "title"),
        (metric(json!({ "title": "y".repeat(501) })), "title"),
        (metric(json!({ "startValue": 10 })), "targetValue"),
        (metric(json!({ "startValue": null })), "startValue"),
        (metric(json!({ "weight": 0 })), "weight"),
        (
            metric(json!({ "kpiCondition": "AT_LEAST" })),
            "kpiCondition",
        ),
        (
            metric(json!({ "kind": "KPI", "startValue": null })),
            "kpiCondition",
        ),
        (
            metric(json!({ "kind": "KPI", "kpiCondition": "AT_MOST" })),
            "startValue",
        ),
    ];
    for (input, field) in cases {
        let err = app.error(&admin, CREATE, json!({ "input": input })).await;
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            ("BAD_USER_INPUT", Some(field)),
            "{}",
            err.message
        );
    }
    let err = app
        .error(
            &admin,
            CREATE,
            json!({ "input": metric(json!({ "objectiveId": "nope" })) }),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");
    assert_eq!(app.count_rows("key_results").await, 0);
}

#[tokio::test]
async fn an_increasing_metric_and_a_decreasing_metric_both_progress_toward_their_target() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let up = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "Up", "kind": "METRIC", "startValue": 100, "targetValue": 200 }))
        .await;
    let down = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "Down", "kind": "METRIC", "startValue": 10, "targetValue": 2 }))
        .await;
    assert_eq!(app.check_in(&admin, &up, 175.0).await["progress"], 75.0);
    assert_eq!(app.check_in(&admin, &down, 4.0).await["progress"], 75.0);
    // Overshoot stays visible but counts as 100 % in the roll-up.
    assert_eq!(app.check_in(&admin, &up, 300.0).await["progress"], 200.0);
    let data = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { progress status } }",
            json!({ "id": objective }),
        )
        .await;
    assert_eq!(data["objective"]["progress"], 87.5);
    assert_eq!(data["objective"]["status"], "ON_TRACK");
}

#[tokio::test]
async fn a_kpi_is_on_track_when_met_and_never_counts_in_the_roll_up() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let metric = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "M", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    let kpi = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "Uptime", "kind": "KPI", "kpiCondition": "AT_LEAST", "targetValue": 99.9, "unit": "%", "weight": 10 }))
        .await;
    let met = app.check_in(&admin, &kpi, 99.95).await;
    assert_eq!(
        (met["progress"].as_f64(), met["status"].as_str()),
        (Some(100.0), Some("ON_TRACK"))
    );
    let missed = app.check_in(&admin, &kpi, 98.0).await;
    assert_eq!(
        (missed["progress"].as_f64(), missed["status"].as_str()),
        (Some(0.0), Some("AT_RISK"))
    );
    // The KPI has a value but no weight in the roll-up: the objective has not started.
    let data = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { progress status } }",
            json!({ "id": objective }),
        )
        .await;
    assert_eq!(data["objective"]["progress"], Value::Null);
    app.check_in(&admin, &metric, 60.0).await;
    let data = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { progress } }",
            json!({ "id": objective }),
        )
        .await;
    assert_eq!(data["objective"]["progress"], 60.0);
}

#[tokio::test]
async fn changing_a_target_recomputes_progress_from_the_current_value() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "M", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    app.check_in(&admin, &kr, 50.0).await;
    let data = app
        .data(
            &admin,
            "mutation($id: ID!) { updateKeyResult(id: $id, input: { targetValue: 200, title: \"Renamed\" }) { title progress objective { progress } } }",
            json!({ "id": kr }),
        )
        .await;
    assert_eq!(data["updateKeyResult"]["title"], "Renamed");
    assert_eq!(data["updateKeyResult"]["progress"], 25.0);
    assert_eq!(data["updateKeyResult"]["objective"]["progress"], 25.0);
    let err = app
        .error(
            &admin,
            "mutation($id: ID!) { updateKeyResult(id: $id, input: { targetValue: 0 }) { id } }",
            json!({ "id": kr }),
        )
        .await;
    assert_eq!(err.field.as_deref(), Some("targetValue"));
}

#[tokio::test]
async fn deleting_a_key_result_re_rolls_its_objective() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let a = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "A", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    let b = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "B", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    app.check_in(&admin, &a, 80.0).await;
    app.check_in(&admin, &b, 20.0).await;
    app.data(
        &admin,
        "mutation($id: ID!) { deleteKeyResult(id: $id) }",
        json!({ "id": b }),
    )
    .await;
    let data = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { progress keyResults { id } } }",
            json!({ "id": objective }),
        )
        .await;
    assert_eq!(data["objective"]["progress"], 80.0);
    assert_eq!(data["objective"]["keyResults"].as_array().unwrap().len(), 1);
}
