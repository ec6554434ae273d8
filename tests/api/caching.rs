//! What the server keeps between requests never hides a write: callers
//! resolved from tokens are reused only while nothing about them changed,
//! and reads beside the writer see every committed write.

use serde_json::json;

use crate::helpers::{Caller, TestApp, objective_input, spawn_app, unique_org};

/// Statements `n` requests of `query` cost: the fewest of three tries, so
/// that the server's own background work is not counted.
async fn statements_for(app: &TestApp, caller: &Caller, query: &str, n: usize) -> u64 {
    let mut fewest = u64::MAX;
    for _ in 0..3 {
        let before = app.statements.get();
        for _ in 0..n {
            app.data(caller, query, json!({})).await;
        }
        fewest = fewest.min(app.statements.get() - before);
    }
    fewest
}

#[tokio::test]
async fn a_warm_caller_costs_no_database_round_trip() {
    let app = spawn_app().await;
    let caller = Caller::member(&unique_org("o"), "ann");
    app.data(&caller, "{ me { id } }", json!({})).await;
    let warm = statements_for(&app, &caller, "{ me { id } }", 20).await;
    assert_eq!(warm, 0, "20 warm requests cost {warm} statements");
    // The first request of a caller the cache has never seen provisions it.
    let stranger = Caller::member(&caller.org, "bob");
    let before = app.statements.get();
    app.data(&stranger, "{ me { id } }", json!({})).await;
    assert!(app.statements.get() > before, "a new caller is provisioned");
}

#[tokio::test]
async fn an_organization_change_is_seen_by_the_very_next_request() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let member = Caller::member(&admin.org, "ann");
    let query = "{ organization { name behindThreshold } }";
    let before = app.data(&member, query, json!({})).await;
    assert_eq!(before["organization"]["behindThreshold"], 0.0);
    app.data(
        &admin,
        "mutation { updateOrganization(input: { name: \"Renamed\", behindThreshold: 40, atRiskThreshold: 60 }) { name } }",
        json!({}),
    )
    .await;
    let after = app.data(&member, query, json!({})).await;
    assert_eq!(after["organization"]["name"], "Renamed");
    assert_eq!(after["organization"]["behindThreshold"], 40.0);
}

#[tokio::test]
async fn a_new_role_in_a_token_takes_effect_at_once() {
    let app = spawn_app().await;
    let org = unique_org("o");
    let as_member = Caller::member(&org, "ann");
    let as_admin = Caller {
        role: "admin",
        ..Caller::member(&org, "ann")
    };
    let change = "mutation { updateOrganization(input: { name: \"X\" }) { name } }";
    let refused = app.error(&as_member, change, json!({})).await;
    assert_eq!(refused.code, "FORBIDDEN");
    app.data(&as_admin, change, json!({})).await;
    let me = app.data(&as_admin, "{ me { role } }", json!({})).await;
    assert_eq!(me["me"]["role"], "ADMIN");
    let refused = app.error(&as_member, change, json!({})).await;
    assert_eq!(
        refused.code, "FORBIDDEN",
        "the member token is a member again"
    );
}

#[tokio::test]
async fn every_write_is_seen_by_the_next_read() {
    let app = spawn_app().await;
    let caller = Caller::admin(&unique_org("o"));
    let objective = app.objective(&caller, objective_input("Grow")).await;
    let kr = app
        .key_result(
            &caller,
            json!({ "objectiveId": objective, "title": "Leads", "kind": "METRIC", "startValue": 0, "targetValue": 100 }),
        )
        .await;
    for i in 1..=30 {
        app.check_in(&caller, &kr, f64::from(i)).await;
        let data = app
            .data(
                &caller,
                "query($id: ID!) { keyResult(id: $id) { currentValue latestPoint { value } } }",
                json!({ "id": kr }),
            )
            .await;
        assert_eq!(data["keyResult"]["currentValue"], f64::from(i));
        assert_eq!(data["keyResult"]["latestPoint"]["value"], f64::from(i));
    }
}
