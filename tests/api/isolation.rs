use serde_json::{Value, json};

use crate::helpers::{Caller, objective_input, spawn_app, unique_org};

#[tokio::test]
async fn nothing_in_one_organization_is_visible_or_changeable_from_another() {
    let app = spawn_app().await;
    let alice = Caller::admin(&unique_org("alpha"));
    let eve = Caller::admin(&unique_org("beta"));
    let objective = app.objective(&alice, objective_input("Secret plan")).await;
    let kr = app
        .key_result(&alice, json!({ "objectiveId": objective, "title": "M", "kind": "METRIC", "startValue": 0, "targetValue": 10 }))
        .await;
    app.check_in(&alice, &kr, 5.0).await;

    let seen = app
        .data(
            &eve,
            "query($o: ID!, $k: ID!) { objectives { id } objective(id: $o) { id } keyResult(id: $k) { id } }",
            json!({ "o": objective, "k": kr }),
        )
        .await;
    assert_eq!(
        seen,
        json!({ "objectives": [], "objective": null, "keyResult": null })
    );

    let attempts = [
        (
            "mutation($o: ID!) { updateObjective(id: $o, input: { title: \"pwned\" }) { id } }",
            json!({ "o": objective }),
        ),
        (
            "mutation($o: ID!) { deleteObjective(id: $o) }",
            json!({ "o": objective }),
        ),
        (
            "mutation($k: ID!) { updateKeyResult(id: $k, input: { title: \"pwned\" }) { id } }",
            json!({ "k": kr }),
        ),
        (
            "mutation($k: ID!) { deleteKeyResult(id: $k) }",
            json!({ "k": kr }),
        ),
        (
            "mutation($k: ID!) { checkIn(input: { keyResultId: $k, value: 0 }) { value } }",
            json!({ "k": kr }),
        ),
        (
            "mutation($o: ID!) { createKeyResult(input: { objectiveId: $o, title: \"x\", kind: METRIC, startValue: 0, targetValue: 1 }) { id } }",
            json!({ "o": objective }),
        ),
    ];
    for (query, variables) in attempts {
        let err = app.error(&eve, query, variables).await;
        assert_eq!(err.code, "NOT_FOUND", "{query}: {}", err.message);
    }
    let mut input = objective_input("Mine");
    input["parentId"] = json!(objective);
    let err = app
        .error(
            &eve,
            "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");
    let own = app.objective(&eve, objective_input("Own")).await;
    let err = app
        .error(
            &eve,
            "mutation($id: ID!, $p: ID) { updateObjective(id: $id, input: { parentId: $p }) { id } }",
            json!({ "id": own, "p": objective }),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");
    // An owner from the other organization is unknown too.
    let alice_id = app.data(&alice, "{ me { id } }", json!({})).await["me"]["id"].clone();
    let mut input = objective_input("Owned elsewhere");
    input["ownerId"] = alice_id;
    let err = app
        .error(
            &eve,
            "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }",
            json!({ "input": input }),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");

    let after = app
        .data(
            &alice,
            "query($o: ID!) { objective(id: $o) { title progress keyResults { title currentValue } } }",
            json!({ "o": objective }),
        )
        .await;
    assert_eq!(
        after["objective"],
        json!({ "title": "Secret plan", "progress": 50.0, "keyResults": [{ "title": "M", "currentValue": 5.0 }] })
    );
    let _: Value = after;
}
