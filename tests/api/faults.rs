//! BigQuery faults the emulator cannot produce, against an HTTP mock that
//! the same client code talks to: 5xx, 429, slow answers, connection resets.
//!
//! Two layers retry. Google's client library retries answers whose reason
//! is `backendError`, `rateLimitExceeded` or `internalError` itself (three
//! attempts, full-jitter backoff from 1 s); okr-pulse retries every other
//! transient failure (5xx or 429 without a reason, timeouts, resets) with
//! its own jittered exponential backoff, and never stacks its retries on
//! top of the library's.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;
use entity::data_source;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::method};

use crate::{
    connections::create_connection,
    helpers::{Caller, TestApp, objective_input, spawn_app_with, unique_org},
};

const REFRESH: &str = "mutation($id: ID!) { refreshDataSource(id: $id) { state lastValue consecutiveFailures lastError { code message reason transient } syncRuns { outcome attempts value jobId error { code reason } } } }";

/// First retry waits 100–200 ms, then 200–400 ms, 400–800 ms …
const INITIAL_DELAY: Duration = Duration::from_millis(200);

fn answer(value: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "kind": "bigquery#queryResponse",
        "jobReference": { "projectId": crate::helpers::PROJECT, "jobId": "job_from_mock", "location": "US" },
        "jobComplete": true,
        "totalBytesProcessed": "2048",
        "schema": { "fields": [{ "name": "n", "type": "INTEGER", "mode": "NULLABLE" }] },
        "rows": [{ "f": [{ "v": value }] }],
        "totalRows": "1",
        "cacheHit": false,
        "statementType": "SELECT"
    }))
}

/// A bare error, as a proxy or load balancer in front of BigQuery sends it.
fn bare(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_string("upstream connect error or disconnect/reset before headers")
}

fn failure(status: u16, reason: &str, message: &str) -> ResponseTemplate {
    let state = match status {
        429 => "RESOURCE_EXHAUSTED",
        400 => "INVALID_ARGUMENT",
        _ => "UNAVAILABLE",
    };
    ResponseTemplate::new(status).set_body_json(json!({
        "error": { "code": status, "message": message, "errors": [{ "reason": reason, "message": message, "domain": "global" }], "status": state }
    }))
}

/// Plays scripted answers in order, then repeats the last; records when each request came.
#[derive(Clone)]
struct Script {
    answers: Arc<Mutex<VecDeque<ResponseTemplate>>>,
    last: ResponseTemplate,
    arrivals: Arc<Mutex<Vec<Instant>>>,
}

impl Script {
    fn new(answers: Vec<ResponseTemplate>) -> Script {
        let last = answers.last().cloned().expect("at least one answer");
        Script {
            answers: Arc::new(Mutex::new(answers.into())),
            last,
            arrivals: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }
}

impl Respond for Script {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        self.arrivals.lock().unwrap().push(Instant::now());
        self.answers
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.last.clone())
    }
}

/// A server whose BigQuery endpoint is `endpoint`, with quick retries.
async fn app_against(endpoint: String) -> TestApp {
    app_with_timeout(endpoint, Duration::from_secs(10)).await
}

async fn app_with_timeout(endpoint: String, job_timeout: Duration) -> TestApp {
    app_configured(endpoint, move |config| {
        config.bigquery.job_timeout = job_timeout
    })
    .await
}

/// A server against `endpoint` with quick retries, adjusted further by `adjust`.
async fn app_configured(
    endpoint: String,
    adjust: impl FnOnce(&mut okr_pulse::config::Config) + Send + 'static,
) -> TestApp {
    spawn_app_with(move |config| {
        config.bigquery.emulator_host = Some(endpoint);
        config.bigquery.retry_initial_delay = INITIAL_DELAY;
        config.bigquery.retry_max_attempts = 5;
        config.bigquery.retry_budget = Duration::from_secs(8);
        adjust(config);
    })
    .await
}

/// A key result with a data source whose last good value is 10, saved
/// directly: linking would need a dry-run answer the faults are not about.
pub async fn linked(app: &TestApp, caller: &Caller) -> (String, String) {
    let objective = app.objective(caller, objective_input("O")).await;
    let kr = app
        .key_result(caller, json!({ "objectiveId": objective, "title": "Leads", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    app.check_in(caller, &kr, 10.0).await;
    let connection_id = create_connection(app, caller, "Mocked").await;
    let me = app
        .data(caller, "{ me { id } organization { id } }", json!({}))
        .await;
    let id = format!("ds-{kr}");
    let now = Utc::now();
    data_source::ActiveModel {
        id: Set(id.clone()),
        org_id: Set(me["organization"]["id"].as_str().unwrap().to_owned()),
        connection_id: Set(connection_id),
        objective_id: Set(None),
        key_result_id: Set(Some(kr.clone())),
        sql: Set("SELECT COUNT(*) AS n FROM sales.leads".to_owned()),
        sync_interval_seconds: Set(3600),
        state: Set(entity::enums::DataSourceState::Ok),
        last_value: Set(Some(10.0)),
        last_synced_at: Set(Some(now)),
        next_sync_at: Set(now + chrono::Duration::hours(1)),
        last_error_code: Set(None),
        last_error_message: Set(None),
        last_error_at: Set(None),
        last_error_reason: Set(None),
        last_error_transient: Set(None),
        consecutive_failures: Set(0),
        lease_owner: Set(None),
        lease_expires_at: Set(None),
        created_by: Set(me["me"]["id"].as_str().unwrap().to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&app.db)
    .await
    .unwrap();
    (id, kr)
}

async fn mock(script: &Script) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(script.clone())
        .mount(&server)
        .await;
    server
}

/// Every gap between requests is at least the lower end of its jittered step.
fn assert_backoff(arrivals: &[Instant]) {
    for (i, pair) in arrivals.windows(2).enumerate() {
        let gap = pair[1] - pair[0];
        let least = INITIAL_DELAY * (1 << i) / 2;
        assert!(
            gap >= least,
            "retry {} came after {gap:?}, before {least:?}",
            i + 1
        );
    }
}

async fn current_value(app: &TestApp, caller: &Caller, kr: &str) -> Value {
    app.data(
        caller,
        "query($id: ID!) { keyResult(id: $id) { currentValue } }",
        json!({ "id": kr }),
    )
    .await["keyResult"]["currentValue"]
        .clone()
}

#[tokio::test]
async fn bare_server_errors_are_retried_with_growing_waits_until_bigquery_answers() {
    let script = Script::new(vec![bare(503), bare(502), bare(500), answer("42")]);
    let server = mock(&script).await;
    let app = app_against(server.uri()).await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, kr) = linked(&app, &admin).await;
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    let ds = &data["refreshDataSource"];
    assert_eq!(ds["state"], "OK", "{ds:#}");
    assert_eq!(ds["lastValue"], 42.0);
    assert_eq!(ds["syncRuns"][0]["attempts"], 4);
    assert_eq!(ds["syncRuns"][0]["jobId"], "job_from_mock");
    assert_eq!(script.arrivals().len(), 4);
    assert_backoff(&script.arrivals());
    assert_eq!(current_value(&app, &admin, &kr).await, 42.0);
}

#[tokio::test]
async fn persistent_bare_server_errors_give_up_after_the_configured_attempts_and_keep_the_last_value()
 {
    let script = Script::new(vec![bare(503)]);
    let server = mock(&script).await;
    let app = app_against(server.uri()).await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, kr) = linked(&app, &admin).await;
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    let ds = &data["refreshDataSource"];
    assert_eq!(ds["state"], "ERROR");
    assert_eq!(ds["lastValue"], 10.0);
    assert_eq!(ds["consecutiveFailures"], 1);
    assert_eq!(ds["lastError"]["code"], "BIGQUERY_ERROR");
    assert_eq!(ds["lastError"]["reason"], "backendError");
    assert_eq!(ds["lastError"]["transient"], true);
    assert_eq!(ds["syncRuns"][0]["outcome"], "ERROR");
    assert_eq!(ds["syncRuns"][0]["attempts"], 5);
    assert_eq!(ds["syncRuns"][0]["error"]["code"], "BIGQUERY_ERROR");
    assert_eq!(
        script.arrivals().len(),
        5,
        "at most the configured attempts"
    );
    assert_backoff(&script.arrivals());
    assert_eq!(current_value(&app, &admin, &kr).await, 10.0);
}

#[tokio::test]
async fn backend_errors_are_retried_by_okr_pulse_alone_within_its_attempt_limit() {
    let script = Script::new(vec![failure(
        500,
        "backendError",
        "Internal error encountered.",
    )]);
    let server = mock(&script).await;
    let app = app_against(server.uri()).await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, _) = linked(&app, &admin).await;
    let started = Instant::now();
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "retries are bounded in time"
    );
    let ds = &data["refreshDataSource"];
    assert_eq!(ds["state"], "ERROR");
    assert_eq!(ds["lastError"]["reason"], "backendError");
    assert_eq!(ds["lastError"]["transient"], true);
    assert!(
        ds["lastError"]["message"]
            .as_str()
            .unwrap()
            .contains("Internal error encountered.")
    );
    assert_eq!(ds["lastValue"], 10.0);
    assert_eq!(
        script.arrivals().len(),
        5,
        "BIGQUERY_RETRY_MAX_ATTEMPTS attempts; the client library adds none"
    );
}

#[tokio::test]
async fn a_rate_limit_is_transient_and_retried_until_it_clears() {
    let script = Script::new(vec![
        failure(
            429,
            "rateLimitExceeded",
            "Exceeded rate limits: too many concurrent queries.",
        ),
        failure(
            403,
            "rateLimitExceeded",
            "Exceeded rate limits: too many table update operations.",
        ),
        answer("7"),
    ]);
    let server = mock(&script).await;
    let app = app_against(server.uri()).await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, _) = linked(&app, &admin).await;
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    assert_eq!(data["refreshDataSource"]["state"], "OK");
    assert_eq!(data["refreshDataSource"]["lastValue"], 7.0);
    assert_eq!(script.arrivals().len(), 3);
}

#[tokio::test]
async fn a_permanent_error_is_not_retried() {
    let script = Script::new(vec![failure(
        400,
        "invalidQuery",
        "Unrecognized name: n at [1:8]",
    )]);
    let server = mock(&script).await;
    let app = app_against(server.uri()).await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, _) = linked(&app, &admin).await;
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    let ds = &data["refreshDataSource"];
    assert_eq!(ds["lastError"]["reason"], "invalidQuery");
    assert_eq!(ds["lastError"]["transient"], false);
    assert!(
        ds["lastError"]["message"]
            .as_str()
            .unwrap()
            .contains("Fix the SQL")
    );
    assert_eq!(script.arrivals().len(), 1);
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_counts_as_a_transient_timeout() {
    let script = Script::new(vec![answer("5").set_delay(Duration::from_secs(3))]);
    let server = mock(&script).await;
    let app = app_with_timeout(server.uri(), Duration::from_millis(600)).await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, kr) = linked(&app, &admin).await;
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    let ds = &data["refreshDataSource"];
    assert_eq!(ds["state"], "ERROR", "{ds:#}");
    assert_eq!(ds["lastError"]["reason"], "timeout");
    assert_eq!(ds["lastError"]["transient"], true);
    assert!(script.arrivals().len() >= 2, "a timeout is retried");
    assert_eq!(current_value(&app, &admin, &kr).await, 10.0);
}
#[tokio::test]
async fn a_connection_reset_is_transient_and_retried() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(0usize));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            *counter.lock().unwrap() += 1;
            // Close at once with RST instead of FIN; a zero linger does not block.
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            drop(stream);
        }
    });
    let app = app_against(endpoint).await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, _) = linked(&app, &admin).await;
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    let ds = &data["refreshDataSource"];
    assert_eq!(ds["state"], "ERROR");
    assert_eq!(ds["lastError"]["code"], "BIGQUERY_ERROR");
    assert_eq!(ds["lastError"]["transient"], true, "{ds:#}");
    assert_eq!(ds["lastValue"], 10.0);
    assert!(*accepted.lock().unwrap() >= 2, "a reset is retried");
}

#[tokio::test]
async fn a_refresh_during_a_run_joins_it_instead_of_running_twice() {
    let script = Script::new(vec![answer("77").set_delay(Duration::from_secs(3))]);
    let server = mock(&script).await;
    let app = app_against(server.uri()).await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, kr) = linked(&app, &admin).await;
    let (a, b) = tokio::join!(app.data(&admin, REFRESH, json!({ "id": ds })), async {
        // Wait until BigQuery has the first job, then refresh again.
        while script.arrivals().is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        app.data(&admin, REFRESH, json!({ "id": ds })).await
    });
    assert_eq!(a["refreshDataSource"]["lastValue"], 77.0);
    assert_eq!(b["refreshDataSource"]["lastValue"], 77.0);
    assert_eq!(script.arrivals().len(), 1, "one BigQuery job, not two");
    assert_eq!(app.count_rows("sync_runs").await, 1);
    assert_eq!(current_value(&app, &admin, &kr).await, 77.0);
}

#[tokio::test]
async fn repeated_refreshes_are_rate_limited() {
    let script = Script::new(vec![answer("5")]);
    let server = mock(&script).await;
    let app = app_configured(server.uri(), |c| {
        c.sync.refresh_min_interval = Duration::from_secs(60);
    })
    .await;
    let admin = Caller::admin(&unique_org("o"));
    let (ds, _) = linked(&app, &admin).await;
    app.data(&admin, REFRESH, json!({ "id": ds })).await;
    let err = app.error(&admin, REFRESH, json!({ "id": ds })).await;
    assert_eq!(err.code, "RATE_LIMITED");
    assert!(err.message.contains("try again in"), "{}", err.message);
    assert_eq!(script.arrivals().len(), 1);
}
