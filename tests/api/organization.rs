use serde_json::json;

use crate::helpers::{Caller, objective_input, spawn_app, unique_org};

const UPDATE: &str = "mutation($input: UpdateOrganizationInput!) { updateOrganization(input: $input) { timeZone behindThreshold atRiskThreshold membersCanCreateConnections } }";

#[tokio::test]
async fn an_organization_starts_with_the_default_settings() {
    let app = spawn_app().await;
    let data = app
        .data(
            &Caller::member(&unique_org("o"), "a"),
            "{ organization { timeZone behindThreshold atRiskThreshold membersCanCreateConnections } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["organization"],
        json!({ "timeZone": "UTC", "behindThreshold": 0.0, "atRiskThreshold": 25.0, "membersCanCreateConnections": false })
    );
}

#[tokio::test]
async fn only_an_admin_may_change_organization_settings() {
    let app = spawn_app().await;
    let org = unique_org("o");
    let err = app
        .error(
            &Caller::member(&org, "m"),
            UPDATE,
            json!({ "input": { "atRiskThreshold": 40.0 } }),
        )
        .await;
    assert_eq!(err.code, "FORBIDDEN");
    let data = app
        .data(
            &Caller::admin(&org),
            UPDATE,
            json!({ "input": { "atRiskThreshold": 40.0, "timeZone": "Europe/Berlin" } }),
        )
        .await;
    assert_eq!(data["updateOrganization"]["atRiskThreshold"], 40.0);
    assert_eq!(data["updateOrganization"]["timeZone"], "Europe/Berlin");
}

#[tokio::test]
async fn settings_that_break_the_rules_are_refused_and_nothing_changes() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let err = app
        .error(
            &admin,
            UPDATE,
            json!({ "input": { "behindThreshold": 30.0, "atRiskThreshold": 20.0 } }),
        )
        .await;
    assert_eq!(
        (err.code.as_str(), err.field.as_deref()),
        ("BAD_USER_INPUT", Some("atRiskThreshold"))
    );
    let err = app
        .error(
            &admin,
            UPDATE,
            json!({ "input": { "timeZone": "Mars/Olympus" } }),
        )
        .await;
    assert_eq!(err.field.as_deref(), Some("timeZone"));
    let data = app
        .data(
            &admin,
            "{ organization { timeZone atRiskThreshold } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data["organization"],
        json!({ "timeZone": "UTC", "atRiskThreshold": 25.0 })
    );
}

#[tokio::test]
async fn the_organizations_thresholds_decide_the_status() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("Grow")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "Leads", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    // About 50 % of the period has passed; 40 % done is ~10 points short.
    assert_eq!(app.check_in(&admin, &kr, 40.0).await["status"], "BEHIND");
    app.data(
        &admin,
        UPDATE,
        json!({ "input": { "behindThreshold": 15.0, "atRiskThreshold": 30.0 } }),
    )
    .await;
    let data = app
        .data(
            &admin,
            "query($id: ID!) { keyResult(id: $id) { status } }",
            json!({ "id": kr }),
        )
        .await;
    assert_eq!(data["keyResult"]["status"], "ON_TRACK");
}

#[tokio::test]
async fn users_lists_everyone_of_the_organization_by_name_and_nobody_else() {
    let app = spawn_app().await;
    let org = unique_org("o");
    let admin = Caller::admin(&org);
    let bea = Caller::member(&org, "bea");
    let outsider = Caller::member(&unique_org("other"), "zed");
    for caller in [&admin, &bea, &outsider] {
        app.data(caller, "{ me { id } }", json!({})).await;
    }
    let data = app
        .data(&bea, "{ users { name email role } }", json!({}))
        .await;
    let names: Vec<&str> = data["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec![format!("admin-{org}").as_str(), "bea"]);
}
