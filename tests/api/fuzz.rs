//! Random documents and variables on the request path: the server answers
//! every one of them, never panics and never reports `INTERNAL`.

use proptest::{
    prelude::*,
    strategy::ValueTree,
    test_runner::{Config, TestRunner},
};
use serde_json::{Value, json};

use crate::helpers::{Caller, spawn_app, unique_org};

/// Pieces GraphQL documents are made of, including the schema's own names,
/// so that random documents get past the parser often enough to reach
/// validation, the cost check and the resolvers.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ":",
    "...",
    "@",
    "$",
    "!",
    "=",
    ",",
    "\"x\"",
    "1",
    "-1.5e3",
    "9999999999999",
    "true",
    "null",
    "query",
    "mutation",
    "subscription",
    "fragment",
    "on",
    "Query",
    "me",
    "id",
    "email",
    "organization",
    "objectives",
    "objective",
    "keyResults",
    "keyResult",
    "history",
    "latestPoint",
    "children",
    "parent",
    "owner",
    "dataSource",
    "syncRuns",
    "connections",
    "users",
    "limit",
    "offset",
    "rootsOnly",
    "periodFrom",
    "__typename",
    "__schema",
    "types",
    "fields",
    "name",
    "ofType",
    "checkIn",
    "input",
    "value",
    "createObjective",
    "title",
    "deleteObjective",
    "$v",
    "@include",
    "@skip",
    "if",
    "F",
    "alias",
    "\n",
    "#c\n",
    "\u{0}",
    "\u{200B}",
];

fn document() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..60).prop_map(|tokens| tokens.join(" "))
}

fn variables() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
    ];
    let value = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-z]{1,3}", value, 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

#[tokio::test]
async fn random_documents_and_variables_never_panic_or_fail_internally() {
    let app = spawn_app().await;
    let token = app.token(&Caller::admin(&unique_org("fuzz")));
    let mut runner = TestRunner::new(Config {
        cases: 400,
        ..Config::default()
    });
    let strategy = (document(), variables(), any::<bool>());
    for _ in 0..400 {
        let (query, variables, signed) = strategy
            .new_tree(&mut runner)
            .expect("a random case")
            .current();
        let mut request = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&json!({ "query": query, "variables": variables }));
        if signed {
            request = request.bearer_auth(&token);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("a JSON answer");
        assert!(matches!(status, 200 | 400), "{status} for {query:?}");
        for error in body["errors"].as_array().into_iter().flatten() {
            let code = error["extensions"]["code"].as_str();
            assert!(
                code.is_some(),
                "an error without a code for {query:?}: {body:#}"
            );
            assert_ne!(code, Some("INTERNAL"), "{query:?} {variables}: {body:#}");
        }
    }
    // Still healthy afterwards.
    let health = app
        .client
        .get(format!("{}/healthz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
