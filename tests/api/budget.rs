//! The runtime budget behind the cost estimate: a request (a whole batch)
//! that resolves more objects or produces more bytes than allowed stops
//! with `QUERY_TOO_COMPLEX` (`limitName: response`).

use serde_json::{Value, json};

use crate::helpers::{Caller, TestApp, objective_input, spawn_app_with, unique_org};

const TREE: &str = "{ objectives { id title keyResults { id title unit } } }";

/// An objective with `n` key results whose titles are `title_len` long.
async fn seeded(app: &TestApp, caller: &Caller, n: usize, title_len: usize) {
    let objective = app.objective(caller, objective_input("Grow")).await;
    for i in 0..n {
        let title = format!("{i:0>width$}", width = title_len.max(3));
        app.key_result(caller, json!({ "objectiveId": objective, "title": title, "kind": "METRIC", "startValue": 0, "targetValue": 10 }))
            .await;
    }
}

fn refused_for_size(response: &Value) {
    assert_eq!(response["data"], Value::Null, "{response}");
    let errors = response["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{response}");
    assert_eq!(errors[0]["extensions"]["code"], "QUERY_TOO_COMPLEX");
    assert_eq!(errors[0]["extensions"]["limitName"], "response");
}

#[tokio::test]
async fn a_request_that_resolves_more_objects_than_allowed_stops_with_one_error() {
    let app = spawn_app_with(|config| config.http.max_resolved_objects = 60).await;
    let admin = Caller::admin(&unique_org("o"));
    seeded(&app, &admin, 20, 3).await;
    // 1 + 2 + 1 + 20 × 4 fields: past 60.
    refused_for_size(&app.gql(&admin, TREE, json!({})).await);
    // The same tree with fewer key results fits.
    let small = "{ objectives { id title keyResults(limit: 5) { id title unit } } }";
    let data = app.data(&admin, small, json!({})).await;
    assert_eq!(
        data["objectives"][0]["keyResults"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn a_batch_shares_one_budget() {
    let app = spawn_app_with(|config| config.http.max_resolved_objects = 40).await;
    let admin = Caller::admin(&unique_org("o"));
    seeded(&app, &admin, 6, 3).await;
    let one = "{ objectives { id title keyResults { id title unit } } }";
    // Alone, 1 + 2 + 1 + 6 × 4 = 28 fields: it fits.
    app.data(&admin, one, json!({})).await;
    let token = app.token(&admin);
    let batch: Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(token)
        .json(&json!([{ "query": one }, { "query": one }]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(batch[0]["errors"].is_null(), "{batch}");
    refused_for_size(&batch[1]);
}

#[tokio::test]
async fn long_text_counts_by_its_length_against_the_byte_budget() {
    let app = spawn_app_with(|config| config.http.max_response_bytes = 2_048).await;
    let admin = Caller::admin(&unique_org("o"));
    // Three key results with 400-character titles: over 1,200 bytes of
    // titles alone, and more with their names and ids.
    seeded(&app, &admin, 3, 400).await;
    let short = "{ objectives { id keyResults { id } } }";
    app.data(&admin, short, json!({})).await;
    seeded(&app, &admin, 3, 400).await;
    refused_for_size(&app.gql(&admin, TREE, json!({})).await);
}

#[tokio::test]
async fn a_nested_cycle_within_the_estimate_stops_at_the_budget_with_memory_bounded() {
    let app = spawn_app_with(|_| {}).await;
    let admin = Caller::admin(&unique_org("o"));
    // 40 objectives × 25 key results, the most each may hold.
    for _ in 0..40 {
        seeded(&app, &admin, 25, 3).await;
    }
    // Estimated within GRAPHQL_MAX_COMPLEXITY (the lists count at their
    // bounds), but 40 × 25 × 25 × 25 × 2 fields: past the million.
    let cycle = "{ objectives(limit: 40) { keyResults { objective { keyResults { objective { keyResults { id title } } } } } } }";
    let before = crate::helpers::rss_bytes();
    let response = app.gql(&admin, cycle, json!({})).await;
    refused_for_size(&response);
    let grown = crate::helpers::rss_bytes().saturating_sub(before);
    assert!(grown < 400 << 20, "memory grew by {grown} bytes");
}

#[tokio::test]
async fn a_batch_whose_costs_sum_past_the_limit_is_refused_whole() {
    let app = spawn_app_with(|config| config.http.max_complexity = 40_000).await;
    let admin = Caller::admin(&unique_org("o"));
    // 5,000 × 3 = 15,000 each: one fits, and so do two, but not three.
    let heavy = "{ objectives(limit: 5000) { id title } }";
    let create =
        "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }";
    let batch = json!([
        { "query": heavy },
        { "query": heavy },
        { "query": create, "variables": { "input": objective_input("Never") } },
        { "query": heavy },
    ]);
    let response: Value = app
        .client
        .post(format!("{}/graphql", app.address))
        .bearer_auth(app.token(&admin))
        .json(&batch)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for answer in response.as_array().expect("a batch answer") {
        assert_eq!(
            answer["errors"][0]["extensions"]["code"], "QUERY_TOO_COMPLEX",
            "{response}"
        );
        // Three queries and the mutation (its field and its id).
        assert_eq!(
            answer["errors"][0]["extensions"]["measured"], 45_002,
            "{response}"
        );
    }
    assert_eq!(app.count_rows("objectives").await, 0, "no operation ran");
}
