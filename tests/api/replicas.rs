//! Several server processes on one PostgreSQL database: events cross
//! replicas through LISTEN/NOTIFY, syncs are claimed once, and a replica
//! killed mid-sync leaves nothing unsynced once its lease lapses.
//! These run in the PostgreSQL suite only.

use std::time::Duration;

use chrono::Utc;
use entity::{data_source, sync_run};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::json;

use crate::{
    connections::create_connection,
    helpers::{
        Caller, Emulator, ServerProcess, TestApp, WsClient, objective_input, on_postgres,
        spawn_app_with, unique_org,
    },
};

/// Starts `okr-pulse` in a process of its own on the same database as `app`.
async fn replica(app: &TestApp, env: &[(&str, String)]) -> ServerProcess {
    let mut all = vec![("DATABASE_URL", app.config.database.url.clone().unwrap())];
    all.extend(env.iter().cloned());
    ServerProcess::start(&all).await
}

/// A server in this process on a fresh PostgreSQL database, or `None` on SQLite.
async fn primary(adjust: impl FnOnce(&mut okr_pulse::config::Config)) -> Option<TestApp> {
    if !on_postgres() {
        eprintln!("skipped: replicas need PostgreSQL (OKR_PULSE_TEST_DATABASE=postgres)");
        return None;
    }
    Some(spawn_app_with(adjust).await)
}

#[tokio::test]
async fn an_event_made_on_one_replica_reaches_a_subscriber_on_another() {
    let Some(app) = primary(|_| {}).await else {
        return;
    };
    let other = replica(&app, &[]).await;
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "K", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    let query =
        "subscription($k: ID) { progressChanged(keyResultId: $k) { keyResultId value source } }";
    let mut remote = WsClient::connected(&other.address, &app.token(&admin), false).await;
    remote.subscribe("s", query, json!({ "k": kr })).await;
    let mut local = WsClient::connected(&app.address, &app.token(&admin), false).await;
    local.subscribe("s", query, json!({ "k": kr })).await;
    app.wait_for_subscribers(1).await;
    // The remote subscription is live once an event reaches it: check in
    // until one does. The local subscriber sees every one of them, in order.
    let mut probes = 0.0;
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            probes += 1.0;
            app.check_in(&admin, &kr, probes).await;
            if !remote
                .next_event("s", Duration::from_millis(500))
                .await
                .is_null()
            {
                return;
            }
        }
    })
    .await
    .expect("the remote subscription goes live");
    for value in 1..=probes as u32 {
        let event = local.next_event("s", Duration::from_secs(10)).await;
        assert_eq!(event["progressChanged"]["value"], f64::from(value));
    }

    app.check_in(&admin, &kr, 30.0).await;
    for ws in [&mut remote, &mut local] {
        let event = ws.next_event("s", Duration::from_secs(10)).await;
        assert_eq!(event["progressChanged"]["keyResultId"], kr.as_str());
        assert_eq!(event["progressChanged"]["value"], 30.0);
    }
    // And the other way round: a change made on the other replica.
    let response: serde_json::Value = app
        .client
        .post(format!("{}/graphql", other.address))
        .bearer_auth(app.token(&admin))
        .json(&json!({ "query": "mutation($k: ID!) { checkIn(input: { keyResultId: $k, value: 45 }) { value } }", "variables": { "k": kr } }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(response["data"]["checkIn"]["value"], 45.0, "{response:#}");
    let seen = local.next_event("s", Duration::from_secs(10)).await;
    assert_eq!(seen["progressChanged"]["value"], 45.0);
}

/// The sync runs of one data source, oldest first.
async fn runs_of(app: &TestApp, ds: &str) -> Vec<sync_run::Model> {
    sync_run::Entity::find()
        .filter(sync_run::Column::DataSourceId.eq(ds))
        .filter(sync_run::Column::Trigger.eq("SYNC"))
        .order_by_asc(sync_run::Column::Id)
        .all(&app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_replicas_sync_each_due_data_source_once_per_interval() {
    let emulator = Emulator::start().await;
    let url = emulator.url.clone();
    let Some(app) = primary(move |c| {
        c.bigquery.emulator_host = Some(url);
        c.sync.scheduler_enabled = true;
        c.sync.tick = Duration::from_millis(200);
    })
    .await
    else {
        return;
    };
    let other = replica(
        &app,
        &[
            ("BIGQUERY_EMULATOR_HOST", emulator.url.clone()),
            ("SCHEDULER_ENABLED", "true".into()),
            ("SYNC_TICK", "200ms".into()),
        ],
    )
    .await;
    let admin = Caller::admin(&unique_org("o"));
    emulator.execute("CREATE TABLE sales.leads (n INT64)").await;
    emulator.execute("INSERT INTO sales.leads VALUES (1)").await;
    create_connection(&app, &admin, "C").await;
    let objective = app.objective(&admin, objective_input("O")).await;
    let mut sources = Vec::new();
    for i in 0..4 {
        let kr = app
            .key_result(&admin, json!({ "objectiveId": objective, "title": format!("K{i}"), "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
            .await;
        let data = app
            .data(
                &admin,
                "mutation($input: LinkDataSourceInput!) { linkDataSource(input: $input) { id } }",
                json!({ "input": { "keyResultId": kr, "sql": "SELECT SUM(n) AS n FROM sales.leads", "syncIntervalSeconds": 10 } }),
            )
            .await;
        sources.push(data["linkDataSource"]["id"].as_str().unwrap().to_owned());
    }
    let watched = Duration::from_secs(32);
    tokio::time::sleep(watched).await;
    let mut per_source = Vec::new();
    for ds in &sources {
        let runs = runs_of(&app, ds).await;
        assert!(!runs.is_empty(), "{ds} was never synced");
        for pair in runs.windows(2) {
            let gap = pair[1].started_at - pair[0].started_at;
            assert!(
                gap >= chrono::Duration::seconds(8),
                "{ds} ran twice within {gap} (two replicas ran the same sync)"
            );
        }
        per_source.push(runs.len());
    }
    let intervals = watched.as_secs_f64() / 10.0;
    println!(
        "two replicas, {} data sources every 10 s for {:?}: SYNC jobs per data source {:?} ({:.2} per interval on average)",
        sources.len(),
        watched,
        per_source,
        per_source.iter().sum::<usize>() as f64 / sources.len() as f64 / intervals
    );
    drop(other);
}

#[tokio::test]
async fn a_replica_killed_mid_sync_leaves_work_another_picks_up_after_the_lease() {
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
    let server = MockServer::start().await;
    let answer = ResponseTemplate::new(200)
        .set_body_json(json!({
            "kind": "bigquery#queryResponse",
            "jobReference": { "projectId": crate::helpers::PROJECT, "jobId": "job_slow", "location": "US" },
            "jobComplete": true,
            "schema": { "fields": [{ "name": "n", "type": "INTEGER", "mode": "NULLABLE" }] },
            "rows": [{ "f": [{ "v": "64" }] }],
            "totalRows": "1"
        }))
        .set_delay(Duration::from_secs(3));
    Mock::given(method("POST"))
        .respond_with(answer)
        .mount(&server)
        .await;
    let Some(app) = primary(|_| {}).await else {
        return;
    };
    let admin = Caller::admin(&unique_org("o"));
    let (ds, kr) = crate::faults::linked(&app, &admin).await;
    // Due now.
    data_source::Entity::update_many()
        .col_expr(data_source::Column::NextSyncAt, Utc::now().into())
        .filter(data_source::Column::Id.eq(ds.clone()))
        .exec(&app.db)
        .await
        .unwrap();
    let env = [
        ("BIGQUERY_EMULATOR_HOST", server.uri()),
        ("SCHEDULER_ENABLED", "true".into()),
        ("SYNC_TICK", "200ms".into()),
        ("SYNC_LEASE", "4s".into()),
        ("BIGQUERY_JOB_TIMEOUT", "20s".into()),
    ];
    let mut doomed = replica(&app, &env).await;
    // Wait until it has claimed the data source, then kill it mid-sync.
    let claimed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let row = data_source::Entity::find_by_id(ds.clone())
                .one(&app.db)
                .await
                .unwrap()
                .unwrap();
            if row.lease_owner.is_some() {
                return row.lease_expires_at.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("the first replica claims the due data source");
    doomed.kill().await;
    assert!(
        runs_of(&app, &ds).await.is_empty(),
        "killed before it recorded anything"
    );

    let _survivor = replica(&app, &env).await;
    let run = tokio::time::timeout(Duration::from_secs(40), async {
        loop {
            if let Some(run) = runs_of(&app, &ds).await.into_iter().next() {
                return run;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("another replica syncs it once the lease lapses");
    assert!(
        run.started_at >= claimed - chrono::Duration::milliseconds(200),
        "not before the lease lapsed"
    );
    assert_eq!(run.value, Some(64.0));
    let value = app
        .data(
            &admin,
            "query($id: ID!) { keyResult(id: $id) { currentValue } }",
            json!({ "id": kr }),
        )
        .await;
    assert_eq!(value["keyResult"]["currentValue"], 64.0);
}

/// Terminates the server's LISTEN connections, as a database restart
/// would; returns how many it found.
async fn cut_listeners(app: &TestApp) -> u64 {
    use sea_orm::ConnectionTrait;
    let database = app.config.database.url.clone().unwrap();
    let name = database.rsplit('/').next().unwrap().to_owned();
    app.db
        .execute_unprepared(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND query ILIKE 'LISTEN%'"
        ))
        .await
        .unwrap()
        .rows_affected()
}

/// A key result with a subscriber to its progress on `app`.
async fn subscribed_key_result(app: &TestApp, target: f64) -> (Caller, String, WsClient) {
    let admin = Caller::admin(&unique_org("o"));
    let objective = app.objective(&admin, objective_input("O")).await;
    let kr = app
        .key_result(&admin, json!({ "objectiveId": objective, "title": "K", "kind": "METRIC", "startValue": 0, "targetValue": target }))
        .await;
    let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
    ws.subscribe(
        "s",
        "subscription($k: ID) { progressChanged(keyResultId: $k) { value } }",
        json!({ "k": kr }),
    )
    .await;
    app.wait_for_subscribers(1).await;
    (admin, kr, ws)
}

#[tokio::test]
async fn the_event_listener_listens_again_after_its_connection_is_cut() {
    let Some(app) = primary(|_| {}).await else {
        return;
    };
    let (admin, kr, mut ws) = subscribed_key_result(&app, 100.0).await;
    // The listener connects in the background: cut it as soon as it listens.
    tokio::time::timeout(Duration::from_secs(20), async {
        while cut_listeners(&app).await == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("the listener's connection was found and cut");
    // Changes keep flowing once it is back.
    let received = tokio::time::timeout(Duration::from_secs(20), async {
        let mut value = 0.0;
        loop {
            value += 1.0;
            app.check_in(&admin, &kr, value).await;
            let event = ws.next_event("s", Duration::from_millis(500)).await;
            if !event.is_null() {
                return event;
            }
        }
    })
    .await
    .expect("events arrive again after the listener reconnects");
    assert!(received["progressChanged"]["value"].as_f64().is_some());
}

#[tokio::test]
async fn a_subscriber_misses_nothing_and_sees_nothing_twice_while_the_listener_is_cut() {
    let Some(app) = primary(|_| {}).await else {
        return;
    };
    let other = replica(&app, &[]).await;
    let (admin, kr, mut ws) = subscribed_key_result(&app, 1000.0).await;
    let check_in = "mutation($k: ID!, $v: Float!) { checkIn(input: { keyResultId: $k, value: $v }) { value } }";
    let token = app.token(&admin);
    const CHECK_INS: u32 = 30;
    let mut cuts = 0;
    for value in 1..=CHECK_INS {
        // Check in on the other replica; cut this replica's listener twice on the way.
        if value == 10 || value == 20 {
            cuts += cut_listeners(&app).await;
        }
        let response: serde_json::Value = app
            .client
            .post(format!("{}/graphql", other.address))
            .bearer_auth(&token)
            .json(&json!({ "query": check_in, "variables": { "k": kr, "v": value } }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            response["data"]["checkIn"]["value"],
            f64::from(value),
            "{response:#}"
        );
    }
    assert!(cuts >= 1, "the listener was cut");
    let mut seen = Vec::new();
    loop {
        let event = ws.next_event("s", Duration::from_secs(20)).await;
        if event.is_null() {
            break;
        }
        seen.push(event["progressChanged"]["value"].as_f64().unwrap() as u32);
        if seen.len() as u32 == CHECK_INS {
            // Nothing more may follow: no event twice.
            assert!(ws.next_event("s", Duration::from_secs(2)).await.is_null());
            break;
        }
    }
    seen.sort_unstable();
    assert_eq!(
        seen,
        (1..=CHECK_INS).collect::<Vec<_>>(),
        "every check-in exactly once"
    );
}

#[tokio::test]
async fn an_organization_change_on_one_replica_is_seen_on_another_within_the_cache_time() {
    let Some(app) = primary(|_| {}).await else {
        return;
    };
    let other = replica(&app, &[("AUTH_CACHE_TTL", "1s".to_owned())]).await;
    let admin = Caller::admin(&unique_org("o"));
    let token = app.token(&admin);
    let name_on = |address: String| {
        let client = app.client.clone();
        let token = token.clone();
        async move {
            let body: serde_json::Value = client
                .post(format!("{address}/graphql"))
                .bearer_auth(&token)
                .json(&json!({ "query": "{ organization { name } }" }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            body["data"]["organization"]["name"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let before = name_on(other.address.clone()).await;
    app.data(
        &admin,
        "mutation { updateOrganization(input: { name: \"Renamed\" }) { name } }",
        json!({}),
    )
    .await;
    assert_eq!(
        name_on(app.address.clone()).await,
        "Renamed",
        "at once here"
    );
    let changed = std::time::Instant::now();
    loop {
        let seen = name_on(other.address.clone()).await;
        if seen == "Renamed" {
            break;
        }
        assert_eq!(seen, before);
        assert!(
            changed.elapsed() < Duration::from_secs(10),
            "the other replica kept the old organization for 10 s with a 1 s cache"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
