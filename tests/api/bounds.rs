//! The bounds the query cost estimate relies on hold in the data: key
//! results and children per objective, and the depth of alignment, on
//! create, on move and on delete; `keyResults` and `children` take limits.

use serde_json::{Value, json};

use crate::helpers::{Caller, TestApp, objective_input, spawn_app_with, unique_org};

const KR: &str =
    "mutation($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id } }";
const OBJECTIVE: &str =
    "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }";
const MOVE: &str = "mutation($id: ID!, $parent: ID) { updateObjective(id: $id, input: { parentId: $parent }) { id } }";

/// A server whose tree may hold 3 key results and 3 children per objective,
/// 3 levels deep.
async fn small_app() -> TestApp {
    spawn_app_with(|config| {
        config.tree.max_key_results_per_objective = 3;
        config.tree.max_children_per_objective = 3;
        config.tree.max_tree_depth = 3;
    })
    .await
}

fn kr_input(objective: &str, n: usize) -> Value {
    json!({ "input": { "objectiveId": objective, "title": format!("KR {n}"), "kind": "METRIC", "startValue": 0, "targetValue": 10 } })
}

async fn child(app: &TestApp, caller: &Caller, parent: &str) -> Value {
    let mut input = objective_input("Child");
    input["parentId"] = json!(parent);
    app.gql(caller, OBJECTIVE, json!({ "input": input })).await
}

fn id(response: &Value, field: &str) -> String {
    response["data"][field]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id: {response}"))
        .to_owned()
}

#[tokio::test]
async fn an_objective_takes_no_more_key_results_than_the_bound() {
    let app = small_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("Grow")).await;
    for n in 0..3 {
        app.data(&admin, KR, kr_input(&objective, n)).await;
    }
    let err = app.error(&admin, KR, kr_input(&objective, 3)).await;
    assert_eq!(err.code, "BAD_USER_INPUT");
    assert_eq!(err.field.as_deref(), Some("objectiveId"));
    assert!(
        err.message.contains("MAX_KEY_RESULTS_PER_OBJECTIVE"),
        "{}",
        err.message
    );
    assert_eq!(app.count_rows("key_results").await, 3);

    // Many in one batched request: still no more than the bound.
    let mut batch = String::from("mutation {");
    for n in 0..5 {
        batch.push_str(&format!(
            " k{n}: createKeyResult(input: {{ objectiveId: \"{objective}\", title: \"B{n}\", kind: METRIC, startValue: 0, targetValue: 1 }}) {{ id }}"
        ));
    }
    batch.push('}');
    let other = app.objective(&admin, objective_input("Other")).await;
    let batch = batch.replace(&objective, &other);
    let response = app.gql(&admin, &batch, json!({})).await;
    assert_eq!(
        response["errors"].as_array().map(Vec::len),
        Some(2),
        "{response}"
    );
    assert_eq!(app.count_rows("key_results").await, 6);
}

#[tokio::test]
async fn a_parent_takes_no_more_children_and_a_delete_may_not_overfill_it() {
    let app = small_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let root = app.objective(&admin, objective_input("Root")).await;
    let first = id(&child(&app, &admin, &root).await, "createObjective");
    id(&child(&app, &admin, &root).await, "createObjective");
    id(&child(&app, &admin, &root).await, "createObjective");
    let refused = child(&app, &admin, &root).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
    assert_eq!(refused["errors"][0]["extensions"]["field"], "parentId");

    // A root moved under the full parent is refused too.
    let loose = app.objective(&admin, objective_input("Loose")).await;
    let err = app
        .error(&admin, MOVE, json!({ "id": loose, "parent": root }))
        .await;
    assert_eq!(err.code, "BAD_USER_INPUT");

    // `first` gets two children; deleting it would move them up to a
    // parent with room for one only.
    id(&child(&app, &admin, &first).await, "createObjective");
    id(&child(&app, &admin, &first).await, "createObjective");
    let err = app
        .error(
            &admin,
            "mutation($id: ID!) { deleteObjective(id: $id) }",
            json!({ "id": first }),
        )
        .await;
    assert_eq!(err.code, "CONFLICT", "{}", err.message);
    assert_eq!(app.count_rows("objectives").await, 7);
}

#[tokio::test]
async fn alignment_may_not_grow_deeper_than_the_bound_on_create_or_move() {
    let app = small_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let level1 = app.objective(&admin, objective_input("L1")).await;
    let level2 = id(&child(&app, &admin, &level1).await, "createObjective");
    let level3 = id(&child(&app, &admin, &level2).await, "createObjective");
    let refused = child(&app, &admin, &level3).await;
    assert_eq!(
        refused["errors"][0]["extensions"]["code"], "BAD_USER_INPUT",
        "{refused}"
    );
    assert!(
        refused["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("MAX_TREE_DEPTH"),
        "{refused}"
    );

    // A two-level subtree under level 2 would reach level 4.
    let top = app.objective(&admin, objective_input("Top")).await;
    id(&child(&app, &admin, &top).await, "createObjective");
    let err = app
        .error(&admin, MOVE, json!({ "id": top, "parent": level2 }))
        .await;
    assert_eq!(err.code, "BAD_USER_INPUT");
    assert!(err.message.contains("level 4"), "{}", err.message);
    // Under level 1 it fits.
    app.data(&admin, MOVE, json!({ "id": top, "parent": level1 }))
        .await;
}

#[tokio::test]
async fn key_results_and_children_take_a_limit_up_to_their_bound() {
    let app = small_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let root = app.objective(&admin, objective_input("Root")).await;
    for n in 0..3 {
        app.data(&admin, KR, kr_input(&root, n)).await;
    }
    id(&child(&app, &admin, &root).await, "createObjective");
    id(&child(&app, &admin, &root).await, "createObjective");
    let data = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { keyResults(limit: 2) { title } children(limit: 1) { id } all: keyResults { id } } }",
            json!({ "id": root }),
        )
        .await;
    assert_eq!(
        data["objective"]["keyResults"],
        json!([{ "title": "KR 0" }, { "title": "KR 1" }])
    );
    assert_eq!(data["objective"]["children"].as_array().unwrap().len(), 1);
    assert_eq!(data["objective"]["all"].as_array().unwrap().len(), 3);
    for limit in [0, 4] {
        let err = app
            .error(
                &admin,
                "query($id: ID!, $limit: Int) { objective(id: $id) { keyResults(limit: $limit) { id } } }",
                json!({ "id": root, "limit": limit }),
            )
            .await;
        assert_eq!(err.code, "BAD_USER_INPUT", "{limit}");
    }
}
