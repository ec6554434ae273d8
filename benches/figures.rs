//! Figures of single paths, printed, never asserted:
//! `cargo bench --bench figures -- bigquery` (or `replicas`; with no name,
//! both). The performance goals are measured by `okr-bench` (bench/).
//! Each starts the server in this process like the integration tests do; add
//! `OKR_PULSE_TEST_DATABASE=postgres` for PostgreSQL (`replicas` needs it).

#[allow(dead_code, unused_imports)]
#[path = "../tests/api/helpers/mod.rs"]
mod helpers;

use std::time::{Duration, Instant};

use helpers::{
    Caller, Emulator, ServerProcess, WsClient, objective_input, on_postgres, spawn_app,
    spawn_app_with, unique_org,
};
use serde_json::json;

/// Median and worst of some timings.
fn summary(mut timings: Vec<Duration>) -> (Duration, Duration) {
    timings.sort();
    (timings[timings.len() / 2], timings[timings.len() - 1])
}

/// One link (dry run + run + save) and one refresh against the emulator, 20 of each.
async fn bigquery() {
    let emulator = Emulator::start().await;
    let url = emulator.url.clone();
    let app = spawn_app_with(move |c| c.bigquery.emulator_host = Some(url)).await;
    let admin = Caller::admin(&unique_org("bench"));
    emulator
        .execute("CREATE TABLE sales.leads (n INT64, day DATE)")
        .await;
    emulator
        .execute("INSERT INTO sales.leads VALUES (12, CURRENT_DATE())")
        .await;
    app.data(
        &admin,
        "mutation($p: String!) { createConnection(input: { name: \"C\", projectId: $p }) { id } }",
        json!({ "p": helpers::PROJECT }),
    )
    .await;
    let objective = app.objective(&admin, objective_input("Grow")).await;
    let sql =
        "SELECT SUM(n) AS leads FROM sales.leads WHERE day BETWEEN @period_start AND @period_end";
    let (mut links, mut ids) = (Vec::new(), Vec::new());
    for i in 0..20 {
        let kr = app
            .key_result(&admin, json!({ "objectiveId": objective, "title": format!("KR {i}"), "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
            .await;
        let started = Instant::now();
        let data = app
            .data(
                &admin,
                "mutation($input: LinkDataSourceInput!) { linkDataSource(input: $input) { id } }",
                json!({ "input": { "keyResultId": kr, "sql": sql } }),
            )
            .await;
        links.push(started.elapsed());
        ids.push(data["linkDataSource"]["id"].clone());
    }
    let mut refreshes = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        emulator
            .execute(&format!(
                "INSERT INTO sales.leads VALUES ({i}, CURRENT_DATE())"
            ))
            .await;
        let started = Instant::now();
        app.data(
            &admin,
            "mutation($id: ID!) { refreshDataSource(id: $id) { state } }",
            json!({ "id": id }),
        )
        .await;
        refreshes.push(started.elapsed());
    }
    let (link_median, link_worst) = summary(links);
    let (refresh_median, refresh_worst) = summary(refreshes);
    println!(
        "linkDataSource against bqemulator: median {link_median:?}, worst {link_worst:?}; refreshDataSource: median {refresh_median:?}, worst {refresh_worst:?} (20 each)"
    );
}

/// The delay from a committed check-in to its event on another replica, 50 times.
async fn replicas() {
    if !on_postgres() {
        println!("replicas: skipped, set OKR_PULSE_TEST_DATABASE=postgres");
        return;
    }
    let app = spawn_app().await;
    let other = ServerProcess::start(&[(
        "DATABASE_URL",
        app.config.database.url.clone().unwrap_or_default(),
    )])
    .await;
    let admin = Caller::admin(&unique_org("bench"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "K", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    let mut remote = WsClient::connected(&other.address, &app.token(&admin), false).await;
    remote
        .subscribe(
            "s",
            "subscription($k: ID) { progressChanged(keyResultId: $k) { value } }",
            json!({ "k": kr }),
        )
        .await;
    // Live once an event arrives.
    let mut value = 0.0;
    loop {
        value += 1.0;
        app.check_in(&admin, &kr, value).await;
        if !remote
            .next_event("s", Duration::from_millis(500))
            .await
            .is_null()
        {
            break;
        }
    }
    let mut delays = Vec::new();
    for _ in 0..50 {
        value += 1.0;
        app.check_in(&admin, &kr, value).await;
        let committed = Instant::now();
        let event = remote.next_event("s", Duration::from_secs(10)).await;
        delays.push(committed.elapsed());
        assert_eq!(event["progressChanged"]["value"], value);
    }
    let (median, worst) = summary(delays);
    println!(
        "commit to event on another replica (PostgreSQL LISTEN/NOTIFY), 50 check-ins: median {median:?}, worst {worst:?}"
    );
}

#[tokio::main]
async fn main() {
    let wanted: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let runs = |name: &str| wanted.is_empty() || wanted.iter().any(|w| w == name);
    if runs("bigquery") {
        bigquery().await;
    }
    if runs("replicas") {
        replicas().await;
    }
}
