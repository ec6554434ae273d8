use serde_json::{Value, json};

use crate::helpers::{Caller, objective_input, spawn_app, unique_org};

const UPDATE: &str = "mutation($id: ID!, $input: UpdateObjectiveInput!) { updateObjective(id: $id, input: $input) { id title parent { id } } }";

#[tokio::test]
async fn an_objective_is_created_with_sensible_defaults() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let data = app
        .data(
            &admin,
            "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { title description progressMode weight progress status owner { name } parent { id } children { id } keyResults { id } } }",
            json!({ "input": objective_input("  Delight customers  ") }),
        )
        .await;
    assert_eq!(
        data["createObjective"],
        json!({
            "title": "Delight customers", "description": "", "progressMode": "ROLL_UP", "weight": 1.0,
            "progress": null, "status": "NOT_STARTED", "owner": { "name": admin.sub }, "parent": null,
            "children": [], "keyResults": []
        })
    );
}

async fn refused(
    app: &crate::helpers::TestApp,
    caller: &Caller,
    input: Value,
) -> (String, Option<String>) {
    let err = app
        .error(
            caller,
            "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await;
    (err.code, err.field)
}

#[tokio::test]
async fn bad_objective_input_is_refused_with_the_field_and_nothing_is_saved() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let with = |patch: Value| {
        let mut input = objective_input("Valid");
        for (k, v) in patch.as_object().unwrap() {
            input[k] = v.clone();
        }
        input
    };
    let bad = |field: &str| ("BAD_USER_INPUT".to_owned(), Some(field.to_owned()));
    assert_eq!(
        refused(&app, &admin, with(json!({ "title": "" }))).await,
        bad("title")
    );
    assert_eq!(
        refused(&app, &admin, with(json!({ "title": "   " }))).await,
        bad("title")
    );
    assert_eq!(
        refused(&app, &admin, with(json!({ "title": "x".repeat(501) }))).await,
        bad("title")
    );
    assert_eq!(
        refused(
            &app,
            &admin,
            with(json!({ "periodStart": "2026-03-01", "periodEnd": "2026-02-28" }))
        )
        .await,
        bad("periodEnd")
    );
    assert_eq!(
        refused(&app, &admin, with(json!({ "weight": 0 }))).await,
        bad("weight")
    );
    assert_eq!(
        refused(&app, &admin, with(json!({ "weight": -2 }))).await,
        bad("weight")
    );
    assert_eq!(
        refused(
            &app,
            &admin,
            with(json!({ "progressMode": "MANUAL", "startValue": 5, "targetValue": 5 }))
        )
        .await,
        bad("targetValue")
    );
    assert_eq!(
        refused(&app, &admin, with(json!({ "progressMode": "MANUAL" }))).await,
        bad("targetValue")
    );
    let (code, _) = refused(
        &app,
        &admin,
        with(json!({ "parentId": "no-such-objective" })),
    )
    .await;
    assert_eq!(code, "NOT_FOUND");
    let (code, _) = refused(&app, &admin, with(json!({ "ownerId": "no-such-user" }))).await;
    assert_eq!(code, "NOT_FOUND");
    assert_eq!(app.count_rows("objectives").await, 0);
}

#[tokio::test]
async fn the_tree_is_navigable_through_parent_and_children() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let root = app.objective(&admin, objective_input("Company")).await;
    let mut child_input = objective_input("Team");
    child_input["parentId"] = json!(root);
    let child = app.objective(&admin, child_input).await;
    let data = app
        .data(&admin, "{ objectives(rootsOnly: true) { id children { id parent { id } } } all: objectives { id } }", json!({}))
        .await;
    assert_eq!(data["objectives"].as_array().unwrap().len(), 1);
    assert_eq!(data["objectives"][0]["id"], root.as_str());
    assert_eq!(data["objectives"][0]["children"][0]["id"], child.as_str());
    assert_eq!(
        data["objectives"][0]["children"][0]["parent"]["id"],
        root.as_str()
    );
    assert_eq!(data["all"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_parent_that_would_make_a_cycle_is_refused() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let a = app.objective(&admin, objective_input("A")).await;
    let mut b_input = objective_input("B");
    b_input["parentId"] = json!(a);
    let b = app.objective(&admin, b_input).await;
    let mut c_input = objective_input("C");
    c_input["parentId"] = json!(b);
    let c = app.objective(&admin, c_input).await;

    for (id, parent) in [(&a, &c), (&a, &a), (&b, &c)] {
        let err = app
            .error(
                &admin,
                UPDATE,
                json!({ "id": id, "input": { "parentId": parent } }),
            )
            .await;
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            ("BAD_USER_INPUT", Some("parentId"))
        );
    }
    let data = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { parent { id } } }",
            json!({ "id": a }),
        )
        .await;
    assert_eq!(data["objective"]["parent"], Value::Null);
    // Moving C to the root and making A its child is fine.
    app.data(
        &admin,
        UPDATE,
        json!({ "id": c, "input": { "parentId": null } }),
    )
    .await;
    let moved = app
        .data(
            &admin,
            UPDATE,
            json!({ "id": a, "input": { "parentId": c } }),
        )
        .await;
    assert_eq!(moved["updateObjective"]["parent"]["id"], c.as_str());
}

#[tokio::test]
async fn an_update_changes_only_the_fields_given_and_validates_them() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let id = app.objective(&admin, objective_input("Before")).await;
    let data = app
        .data(
            &admin,
            UPDATE,
            json!({ "id": id, "input": { "title": "After" } }),
        )
        .await;
    assert_eq!(data["updateObjective"]["title"], "After");
    let err = app
        .error(
            &admin,
            UPDATE,
            json!({ "id": id, "input": { "periodEnd": "2000-01-01" } }),
        )
        .await;
    assert_eq!(err.field.as_deref(), Some("periodEnd"));
    let err = app
        .error(
            &admin,
            UPDATE,
            json!({ "id": "missing", "input": { "title": "x" } }),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");
}

#[tokio::test]
async fn deleting_an_objective_removes_its_key_results_and_history_and_lifts_its_children() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let top = app.objective(&admin, objective_input("Top")).await;
    let mut mid_input = objective_input("Middle");
    mid_input["parentId"] = json!(top);
    let mid = app.objective(&admin, mid_input).await;
    let mut leaf_input = objective_input("Leaf");
    leaf_input["parentId"] = json!(mid);
    let leaf = app.objective(&admin, leaf_input).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": mid, "title": "KR", "kind": "METRIC", "startValue": 0, "targetValue": 10 }))
        .await;
    app.check_in(&admin, &kr, 5.0).await;

    let data = app
        .data(
            &admin,
            "mutation($id: ID!) { deleteObjective(id: $id) }",
            json!({ "id": mid }),
        )
        .await;
    assert_eq!(data["deleteObjective"], mid.as_str());
    let data = app
        .data(
            &admin,
            "query($leaf: ID!, $kr: ID!, $mid: ID!) { objective(id: $leaf) { parent { id } } keyResult(id: $kr) { id } gone: objective(id: $mid) { id } }",
            json!({ "leaf": leaf, "kr": kr, "mid": mid }),
        )
        .await;
    assert_eq!(data["objective"]["parent"]["id"], top.as_str());
    assert_eq!(data["keyResult"], Value::Null);
    assert_eq!(data["gone"], Value::Null);
    assert_eq!(app.count_rows("key_results").await, 0);
    let points_left = app.count_rows("progress_points").await;
    // Only the top objective's roll-up points remain.
    let top_points = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { history { source } } }",
            json!({ "id": top }),
        )
        .await["objective"]["history"]
        .as_array()
        .unwrap()
        .len() as i64;
    assert_eq!(points_left, top_points);
}

#[tokio::test]
async fn objectives_can_be_filtered_to_those_whose_period_overlaps_a_range() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    for (title, start, end) in [
        ("Q1", "2026-01-01", "2026-03-31"),
        ("Q2", "2026-04-01", "2026-06-30"),
        ("H1", "2026-01-01", "2026-06-30"),
    ] {
        app.objective(
            &admin,
            json!({ "title": title, "periodStart": start, "periodEnd": end }),
        )
        .await;
    }
    let titles = |data: serde_json::Value| -> Vec<String> {
        data["objectives"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let query = "query($from: NaiveDate, $to: NaiveDate) { objectives(periodFrom: $from, periodTo: $to) { title } }";
    let on_day = app
        .data(
            &admin,
            query,
            json!({ "from": "2026-02-15", "to": "2026-02-15" }),
        )
        .await;
    assert_eq!(titles(on_day), vec!["Q1", "H1"]);
    let quarter = app
        .data(
            &admin,
            query,
            json!({ "from": "2026-04-01", "to": "2026-06-30" }),
        )
        .await;
    assert_eq!(titles(quarter), vec!["Q2", "H1"]);
    let last_day = app
        .data(
            &admin,
            query,
            json!({ "from": "2026-03-31", "to": "2026-03-31" }),
        )
        .await;
    assert_eq!(
        titles(last_day),
        vec!["Q1", "H1"],
        "both ends are inclusive"
    );
    let all = app.data(&admin, query, json!({})).await;
    assert_eq!(titles(all).len(), 3);
}
