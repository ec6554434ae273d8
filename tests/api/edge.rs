//! Limits at the HTTP and GraphQL edge: no request can take the server down,
//! and every refusal carries a code a client can act on.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{
    Caller, TestApp, objective_input, rss_bytes, spawn_app, spawn_app_with, unique_org,
};

/// Posts a raw JSON body and returns the status and the JSON answer.
async fn post_json(app: &TestApp, body: Value, token: Option<String>) -> (u16, Value) {
    let mut request = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn first_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_default()
}

/// A 1.6 KB document of 24 fragments, each spreading the one before twice:
/// 2^25 fields once expanded.
fn fragment_bomb() -> String {
    let mut doc = String::from("query { ...F24 }\nfragment F0 on Query { __typename }\n");
    for i in 1..=24 {
        doc.push_str(&format!(
            "fragment F{i} on Query {{ ...F{p} ...F{p} }}\n",
            p = i - 1
        ));
    }
    doc
}

#[tokio::test]
async fn a_fragment_bomb_is_refused_at_once_without_a_token_and_costs_no_memory() {
    let app = spawn_app().await;
    let before = rss_bytes();
    let started = Instant::now();
    let (status, body) = post_json(&app, json!({ "query": fragment_bomb() }), None).await;
    let took = started.elapsed();
    assert_eq!(status, 200);
    assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body:#}");
    assert!(
        body["errors"][0]["extensions"]["measured"]
            .as_u64()
            .unwrap()
            > 1_000_000
    );
    assert!(took < Duration::from_secs(2), "refused in {took:?}");
    let grown = rss_bytes().saturating_sub(before);
    assert!(grown < 50 << 20, "memory grew by {grown} bytes");
}

#[tokio::test]
async fn aliases_depth_and_list_cycles_are_measured_before_anything_runs() {
    let app = spawn_app().await;
    let token = app.token(&Caller::member(&unique_org("o"), "m"));
    let aliases: String = (0..2000).map(|i| format!("a{i}: me {{ id }} ")).collect();
    let (_, body) = post_json(
        &app,
        json!({ "query": format!("{{ {aliases} }}") }),
        Some(token.clone()),
    )
    .await;
    assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body:#}");
    assert_eq!(body["errors"][0]["extensions"]["limitName"], "aliases");
    // Nothing runs for a refused query; the fewest statements seen over a
    // few tries leaves out the server's own background work.
    let mut fewest = u64::MAX;
    // objectives → keyResults → objective → keyResults …, six deep.
    let mut cycle = String::from("id");
    for _ in 0..6 {
        cycle = format!("keyResults {{ objective {{ {cycle} }} }}");
    }
    let cycle = format!("{{ objectives {{ {cycle} }} }}");
    for _ in 0..3 {
        let before = app.statements.get();
        let (_, body) = post_json(&app, json!({ "query": &cycle }), Some(token.clone())).await;
        assert_eq!(first_code(&body), "QUERY_TOO_COMPLEX", "{body:#}");
        fewest = fewest.min(app.statements.get() - before);
    }
    assert_eq!(fewest, 0, "nothing ran");
    // The dashboard's tree query stays within the defaults.
    let tree = "{ objectives { id title progress expectedProgress status periodStart periodEnd owner { id name } parent { id } children { id title } latestPoint { at value progress status } keyResults { id title progress status currentValue targetValue unit latestPoint { at value } dataSource { id state lastSyncedAt lastError { code message } } } } }";
    let (_, body) = post_json(&app, json!({ "query": tree }), Some(token)).await;
    assert!(body.get("errors").is_none(), "{body:#}");
}

#[tokio::test]
async fn parse_and_validation_errors_carry_their_codes() {
    let app = spawn_app().await;
    let token = app.token(&Caller::member(&unique_org("o"), "m"));
    let (_, body) = post_json(&app, json!({ "query": "{ me { id " }), Some(token.clone())).await;
    assert_eq!(first_code(&body), "GRAPHQL_PARSE_FAILED", "{body:#}");
    let (_, body) = post_json(
        &app,
        json!({ "query": "{ me { nope } }" }),
        Some(token.clone()),
    )
    .await;
    assert_eq!(first_code(&body), "GRAPHQL_VALIDATION_FAILED", "{body:#}");
    let (status, body) = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .map(|r| (r.status().as_u16(), r))
        .unwrap();
    assert_eq!(status, 400);
    assert_eq!(
        first_code(&body.json::<Value>().await.unwrap()),
        "BAD_REQUEST"
    );
}

#[tokio::test]
async fn a_body_above_the_limit_is_refused_with_413_declared_or_chunked() {
    let app = spawn_app().await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    // A declared length above the limit: refused before the body is read.
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 209715200\r\n\r\n")
        .await
        .unwrap();
    let mut answer = vec![0u8; 512];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered without the body")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 413"));
    // A chunked body that passes the limit: cut off as soon as it does.
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..17 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await
            .unwrap();
        stream.write_all(&chunk).await.unwrap();
        stream.write_all(b"\r\n").await.unwrap();
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("PAYLOAD_TOO_LARGE"), "{text}");
}

#[tokio::test]
async fn uploads_are_refused_with_415() {
    let app = spawn_app().await;
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x--")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn a_request_slower_than_the_timeout_gets_408_and_slow_headers_are_cut_off() {
    let app = spawn_app_with(|c| {
        c.http.request_timeout = Duration::from_secs(1);
        c.http.header_timeout = Duration::from_secs(1);
    })
    .await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stream
        .write_all(b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{")
        .await
        .unwrap();
    let mut answer = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("answered")
        .unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 408"));
    // Headers that never finish: the connection is closed.
    let mut stream = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost")
        .await
        .unwrap();
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "the server closed the connection");
}

#[tokio::test]
async fn queries_run_over_get_and_mutations_get_405() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let token = app.token(&admin);
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[
            (
                "query",
                "query($x: Boolean!) { me @include(if: $x) { role } }",
            ),
            ("variables", r#"{"x": true}"#),
        ])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["me"]["role"], "ADMIN", "{body:#}");
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .query(&[("query", r#"mutation { createObjective(input: {title: "x", periodStart: "2026-01-01", periodEnd: "2026-02-01"}) { id } }"#)])
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(app.count_rows("objectives").await, 0);
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400, "no GraphiQL for a non-browser");
}

#[tokio::test]
async fn only_configured_origins_get_a_cors_grant() {
    let app =
        spawn_app_with(|c| c.http.cors_allowed_origins = vec!["https://okr.example.com".into()])
            .await;
    for (origin, granted) in [
        ("https://okr.example.com", true),
        ("https://evil.example", false),
    ] {
        let response = app
            .client
            .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap();
        let allowed = response.headers().get("access-control-allow-origin");
        assert_eq!(allowed.is_some(), granted, "{origin}");
        if granted {
            assert_eq!(allowed.unwrap(), origin);
            let headers = response.headers()["access-control-allow-headers"]
                .to_str()
                .unwrap()
                .to_ascii_lowercase();
            assert!(headers.contains("authorization") && headers.contains("content-type"));
        }
    }
}

#[tokio::test]
async fn a_database_outage_is_internal_with_a_request_id_never_unauthenticated() {
    let app = spawn_app().await;
    let token = app.token(&Caller::member(&unique_org("o"), "m"));
    app.db.close_by_ref().await.unwrap();
    let (_, body) = post_json(&app, json!({ "query": "{ me { id } }" }), Some(token)).await;
    assert_eq!(first_code(&body), "INTERNAL", "{body:#}");
    assert!(
        body["errors"][0]["extensions"]["requestId"].is_string(),
        "{body:#}"
    );
    let started = Instant::now();
    let ready = app
        .client
        .get(format!("{}/readyz", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn byte_counts_are_64_bit_integers() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let data = app
        .data(
            &admin,
            "mutation($b: Int64) { createConnection(input: { name: \"C\", projectId: \"okr-test-project\", maximumBytesBilled: $b }) { maximumBytesBilled } }",
            json!({ "b": 10_737_418_240_i64 }),
        )
        .await;
    assert_eq!(
        data["createConnection"]["maximumBytesBilled"],
        10_737_418_240_i64
    );
}

#[tokio::test]
async fn control_characters_invisible_titles_and_huge_numbers_are_refused() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let create =
        "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }";
    for (input, field) in [
        (
            json!({ "title": "a\u{0}b", "periodStart": "2026-01-01", "periodEnd": "2026-03-31" }),
            "title",
        ),
        (
            json!({ "title": "\u{200B}\u{FEFF}", "periodStart": "2026-01-01", "periodEnd": "2026-03-31" }),
            "title",
        ),
        (
            json!({ "title": "T", "periodStart": "1800-01-01", "periodEnd": "2026-03-31" }),
            "periodStart",
        ),
        (
            json!({ "title": "T", "periodStart": "2026-01-01", "periodEnd": "2026-03-31", "weight": 2e6 }),
            "weight",
        ),
        (
            json!({ "title": "T", "description": "bell\u{7}", "periodStart": "2026-01-01", "periodEnd": "2026-03-31" }),
            "description",
        ),
    ] {
        let err = app.error(&admin, create, json!({ "input": input })).await;
        assert_eq!(
            (err.code.as_str(), err.field.as_deref()),
            ("BAD_USER_INPUT", Some(field)),
            "{err:?}"
        );
    }
    let objective = app.objective(&admin, objective_input("O")).await;
    let err = app
        .error(
            &admin,
            "mutation($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id } }",
            json!({ "input": { "objectiveId": objective, "title": "K", "kind": "METRIC", "startValue": 0, "targetValue": 1e16 } }),
        )
        .await;
    assert_eq!(err.field.as_deref(), Some("targetValue"), "{err:?}");
    let long_id = "x".repeat(100_000);
    let err = app
        .error(
            &admin,
            "mutation($id: ID!) { deleteObjective(id: $id) }",
            json!({ "id": long_id }),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");
    assert!(err.message.len() < 300, "the id is cut in the message");
    assert_eq!(app.count_rows("objectives").await, 1);
}

#[tokio::test]
async fn lists_are_bounded_and_refuse_limits_beyond_their_maximum() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    for i in 0..3 {
        app.objective(&admin, objective_input(&format!("O{i}")))
            .await;
    }
    let page = app
        .data(
            &admin,
            "{ objectives(limit: 2, offset: 1) { title } }",
            json!({}),
        )
        .await;
    assert_eq!(
        page["objectives"],
        json!([{ "title": "O1" }, { "title": "O2" }])
    );
    let err = app
        .error(&admin, "{ objectives(limit: 5001) { id } }", json!({}))
        .await;
    assert_eq!(
        (err.code.as_str(), err.field.as_deref()),
        ("BAD_USER_INPUT", Some("limit"))
    );
    let err = app
        .error(
            &admin,
            "{ objectives { history(limit: 0) { at } } }",
            json!({}),
        )
        .await;
    assert_eq!(err.code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn an_answer_carries_at_most_a_hundred_errors() {
    let app = spawn_app().await;
    let token = app.token(&Caller::admin(&unique_org("o")));
    let fields: String = (0..300).map(|i| format!("nope{i} ")).collect();
    let (_, body) = post_json(
        &app,
        json!({ "query": format!("{{ {fields} }}") }),
        Some(token),
    )
    .await;
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 100, "{body:#}");
    assert_eq!(errors[0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED");
    assert_eq!(errors[99]["extensions"]["code"], "TOO_MANY_ERRORS");
    assert!(
        errors[99]["message"]
            .as_str()
            .unwrap()
            .contains("201 more errors"),
        "{}",
        errors[99]
    );
}
