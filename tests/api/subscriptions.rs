//! Live events over WebSocket, with a real WebSocket client.

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    connections::create_connection,
    helpers::{
        Caller, ServerProcess, TestApp, WsClient, WsEnd, objective_input, spawn_app,
        spawn_app_with, unique_org,
    },
};

const PROGRESS: &str = "subscription($o: ID, $k: ID) { progressChanged(objectiveId: $o, keyResultId: $k) { objectiveId keyResultId value previousValue progress previousProgress status previousStatus source at } }";
const SYNCED: &str = "subscription($d: ID) { dataSourceSynced(dataSourceId: $d) { dataSourceId keyResultId state value changed error { code } jobId } }";
const WAIT: Duration = Duration::from_secs(15);
const QUIET: Duration = Duration::from_millis(700);

fn child_of(parent: &str, title: &str) -> Value {
    let mut input = objective_input(title);
    input["parentId"] = json!(parent);
    input
}

/// Root → team → key result, with the key result's id.
async fn tree(app: &TestApp, caller: &Caller) -> (String, String, String) {
    let root = app.objective(caller, objective_input("Company")).await;
    let team = app.objective(caller, child_of(&root, "Team")).await;
    let kr = app
        .key_result(caller, json!({ "objectiveId": team, "title": "Leads", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    (root, team, kr)
}

#[tokio::test]
async fn a_check_in_reaches_subscribers_for_the_key_result_and_every_ancestor() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let (root, team, kr) = tree(&app, &admin).await;
    let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
    ws.subscribe("root", PROGRESS, json!({ "o": root })).await;
    app.wait_for_subscribers(1).await;
    app.check_in(&admin, &kr, 60.0).await;

    let first = ws.next_event("root", WAIT).await;
    let e = &first["progressChanged"];
    assert_eq!(e["keyResultId"], kr.as_str());
    assert_eq!(e["objectiveId"], team.as_str());
    assert_eq!(
        (e["value"].as_f64(), e["previousValue"].as_f64()),
        (Some(60.0), None)
    );
    assert_eq!(
        (e["status"].as_str(), e["previousStatus"].as_str()),
        (Some("ON_TRACK"), Some("NOT_STARTED"))
    );
    assert_eq!(e["source"], "CHECK_IN");
    let second = ws.next_event("root", WAIT).await;
    assert_eq!(second["progressChanged"]["objectiveId"], team.as_str());
    assert_eq!(second["progressChanged"]["keyResultId"], Value::Null);
    assert_eq!(second["progressChanged"]["source"], "ROLL_UP");
    assert_eq!(second["progressChanged"]["progress"], 60.0);
    let third = ws.next_event("root", WAIT).await;
    assert_eq!(third["progressChanged"]["objectiveId"], root.as_str());
    assert_eq!(third["progressChanged"]["source"], "ROLL_UP");

    app.check_in(&admin, &kr, 20.0).await;
    let next = ws.next_event("root", WAIT).await;
    assert_eq!(next["progressChanged"]["previousValue"], 60.0);
    assert_eq!(next["progressChanged"]["previousStatus"], "ON_TRACK");
    assert_eq!(next["progressChanged"]["status"], "AT_RISK");
}

#[tokio::test]
async fn subscribers_see_only_their_own_organization_and_their_filter() {
    let app = spawn_app().await;
    let alice = Caller::admin(&unique_org("a"));
    let eve = Caller::admin(&unique_org("b"));
    let (_, _, kr) = tree(&app, &alice).await;
    let other_kr = app
        .key_result(&alice, json!({ "objectiveId": app.objective(&alice, objective_input("Other")).await, "title": "X", "kind": "METRIC", "startValue": 0, "targetValue": 10 }))
        .await;
    let (_, _, eve_kr) = tree(&app, &eve).await;
    let mut spy = WsClient::connected(&app.address, &app.token(&eve), false).await;
    spy.subscribe("all", PROGRESS, json!({})).await;
    let mut focused = WsClient::connected(&app.address, &app.token(&alice), false).await;
    focused.subscribe("kr", PROGRESS, json!({ "k": kr })).await;
    app.wait_for_subscribers(2).await;

    app.check_in(&alice, &other_kr, 5.0).await;
    app.check_in(&alice, &kr, 50.0).await;
    let seen = focused.next_event("kr", WAIT).await;
    assert_eq!(seen["progressChanged"]["keyResultId"], kr.as_str());
    assert_eq!(seen["progressChanged"]["value"], 50.0);
    assert!(
        focused.next_event("kr", QUIET).await.is_null(),
        "only the key result it asked for"
    );
    assert!(
        spy.next_event("all", QUIET).await.is_null(),
        "nothing from another organization"
    );

    app.check_in(&eve, &eve_kr, 1.0).await;
    let own = spy.next_event("all", WAIT).await;
    assert_eq!(own["progressChanged"]["keyResultId"], eve_kr.as_str());
}

#[tokio::test]
async fn a_bad_token_closes_with_4403() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app.address, false).await;
    ws.send(
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer not-a-token" } }),
    )
    .await;
    assert!(matches!(ws.end(WAIT).await, WsEnd::Closed(4403, _)));
    let mut ws = WsClient::connect(&app.address, false).await;
    ws.send(json!({ "type": "connection_init" })).await;
    assert!(matches!(ws.end(WAIT).await, WsEnd::Closed(4403, _)));
}

#[tokio::test]
async fn a_client_that_never_initialises_is_closed_with_4408() {
    let app = spawn_app().await;
    let mut ws = WsClient::connect(&app.address, false).await;
    assert!(matches!(ws.end(WAIT).await, WsEnd::Closed(4408, _)));
}

#[tokio::test]
async fn a_duplicate_subscription_id_closes_with_4409_and_a_malformed_message_with_4400() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
    ws.subscribe("same", PROGRESS, json!({})).await;
    ws.subscribe("same", PROGRESS, json!({})).await;
    assert_eq!(
        ws.end(WAIT).await,
        WsEnd::Closed(4409, "Subscriber for same already exists".into())
    );

    let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
    ws.send_text("{ not json".into()).await;
    assert!(matches!(ws.end(WAIT).await, WsEnd::Closed(4400, _)));
}

#[tokio::test]
async fn subscriptions_beyond_the_per_connection_limit_are_refused_with_an_error() {
    let app = spawn_app_with(|c| c.ws.max_subscriptions = 2).await;
    let admin = Caller::admin(&unique_org("o"));
    let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
    ws.subscribe("a", PROGRESS, json!({})).await;
    ws.subscribe("b", PROGRESS, json!({})).await;
    ws.subscribe("c", PROGRESS, json!({})).await;
    let refused = ws.next_json(WAIT).await;
    assert_eq!(
        (refused["id"].as_str(), refused["type"].as_str()),
        (Some("c"), Some("error"))
    );
    // The connection stays usable: completing one frees a slot.
    ws.send(json!({ "id": "a", "type": "complete" })).await;
    while app.events.subscriber_count() > 1 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    ws.subscribe("d", PROGRESS, json!({})).await;
    let (_, _, kr) = tree(&app, &admin).await;
    app.wait_for_subscribers(2).await;
    app.check_in(&admin, &kr, 3.0).await;
    assert!(!ws.next_event("d", WAIT).await.is_null());
}

#[tokio::test]
async fn the_server_pings_idle_connections() {
    use futures::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let app = spawn_app_with(|c| c.ws.keep_alive = Duration::from_millis(300)).await;
    let admin = Caller::admin(&unique_org("o"));
    let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
    let ping = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(Ok(Message::Text(text))) = ws.raw().next().await {
                return text.to_string();
            }
        }
    })
    .await
    .expect("a ping within the keep-alive interval");
    assert_eq!(
        serde_json::from_str::<Value>(&ping).unwrap()["type"],
        "ping"
    );
}

#[tokio::test]
async fn the_legacy_graphql_ws_protocol_works_too() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, _, kr) = tree(&app, &admin).await;
    let mut ws = WsClient::connected(&app.address, &app.token(&admin), true).await;
    ws.subscribe("1", PROGRESS, json!({ "k": kr })).await;
    app.wait_for_subscribers(1).await;
    app.check_in(&admin, &kr, 42.0).await;
    let event = ws.next_event("1", WAIT).await;
    assert_eq!(event["progressChanged"]["value"], 42.0);
}

#[tokio::test]
async fn shutdown_closes_websockets_with_a_close_frame() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
    app.stop();
    assert_eq!(
        ws.end(WAIT).await,
        WsEnd::Closed(1001, "server shutting down".into())
    );
}

mod with_bigquery {
    use super::*;
    use crate::helpers::spawn_app_with_emulator;

    const LINK: &str =
        "mutation($input: LinkDataSourceInput!) { linkDataSource(input: $input) { id } }";

    #[tokio::test]
    async fn a_refresh_publishes_the_sync_and_the_progress_and_an_unchanged_value_only_the_sync() {
        let (app, emulator) = spawn_app_with_emulator().await;
        let admin = Caller::admin(&unique_org("o"));
        let (_, _, kr) = tree(&app, &admin).await;
        emulator.execute("CREATE TABLE sales.leads (n INT64)").await;
        emulator
            .execute("INSERT INTO sales.leads VALUES (10)")
            .await;
        create_connection(&app, &admin, "C").await;
        let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
        ws.subscribe("p", PROGRESS, json!({ "k": kr })).await;
        ws.subscribe("s", SYNCED, json!({})).await;
        app.wait_for_subscribers(2).await;
        let ds = app
            .data(&admin, LINK, json!({ "input": { "keyResultId": kr, "sql": "SELECT SUM(n) AS n FROM sales.leads" } }))
            .await["linkDataSource"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // The link's own events come first, after its commit.
        let linked = ws.next_event("p", WAIT).await;
        assert_eq!(linked["progressChanged"]["value"], 10.0);
        assert_eq!(linked["progressChanged"]["source"], "SYNC");
        let first_sync = ws.next_event("s", WAIT).await;
        assert_eq!(
            first_sync["dataSourceSynced"]["dataSourceId"],
            ds.as_str(),
            "{first_sync:#}"
        );

        emulator
            .execute("INSERT INTO sales.leads VALUES (25)")
            .await;
        app.data(
            &admin,
            "mutation($id: ID!) { refreshDataSource(id: $id) { id } }",
            json!({ "id": ds }),
        )
        .await;
        let progress = ws.next_event("p", WAIT).await;
        let synced = ws.next_event("s", WAIT).await;
        assert_eq!(progress["progressChanged"]["value"], 35.0);
        assert_eq!(progress["progressChanged"]["previousValue"], 10.0);
        assert_eq!(progress["progressChanged"]["source"], "REFRESH");
        assert_eq!(synced["dataSourceSynced"]["changed"], true);
        assert_eq!(synced["dataSourceSynced"]["state"], "OK");
        assert_eq!(synced["dataSourceSynced"]["value"], 35.0);
        assert_eq!(synced["dataSourceSynced"]["keyResultId"], kr.as_str());

        app.data(
            &admin,
            "mutation($id: ID!) { refreshDataSource(id: $id) { id } }",
            json!({ "id": ds }),
        )
        .await;
        let again = ws.next_event("s", WAIT).await;
        assert_eq!(again["dataSourceSynced"]["changed"], false);
        assert!(
            ws.next_event("p", QUIET).await.is_null(),
            "no progress event for an unchanged value"
        );
    }

    #[tokio::test]
    async fn the_scheduler_syncs_changed_data_without_a_refresh() {
        let emulator = crate::helpers::Emulator::start().await;
        let url = emulator.url.clone();
        let app = spawn_app_with(move |c| {
            c.bigquery.emulator_host = Some(url);
            c.sync.scheduler_enabled = true;
            c.sync.tick = Duration::from_millis(200);
        })
        .await;
        let admin = Caller::admin(&unique_org("o"));
        let (_, _, kr) = tree(&app, &admin).await;
        emulator.execute("CREATE TABLE sales.leads (n INT64)").await;
        emulator
            .execute("INSERT INTO sales.leads VALUES (10)")
            .await;
        create_connection(&app, &admin, "C").await;
        let mut ws = WsClient::connected(&app.address, &app.token(&admin), false).await;
        ws.subscribe("p", PROGRESS, json!({ "k": kr })).await;
        app.wait_for_subscribers(1).await;
        app.data(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT SUM(n) AS n FROM sales.leads", "syncIntervalSeconds": 10 } }),
        )
        .await;
        let linked = ws.next_event("p", WAIT).await;
        assert_eq!(linked["progressChanged"]["value"], 10.0);
        emulator.execute("INSERT INTO sales.leads VALUES (5)").await;
        let event = ws.next_event("p", Duration::from_secs(40)).await;
        assert_eq!(event["progressChanged"]["value"], 15.0, "{event:#}");
        assert_eq!(event["progressChanged"]["source"], "SYNC");
    }
}

#[tokio::test]
async fn sigterm_closes_websockets_with_a_close_frame_and_exits_zero() {
    let mut server = ServerProcess::start(&[]).await;
    let address = server.address.clone();
    let keys = okr_pulse::auth::TokenKeys::from_secret(crate::helpers::SECRET);
    let token = keys
        .mint(&okr_pulse::auth::Claims {
            sub: "a".into(),
            email: "a@x.example".into(),
            name: "A".into(),
            org: "sig".into(),
            role: "admin".into(),
            exp: jsonwebtoken::get_current_timestamp() + 60,
            nbf: None,
        })
        .unwrap();
    let mut ws = WsClient::connected(&address, &token, false).await;
    ws.subscribe("s", PROGRESS, json!({})).await;
    server.terminate();
    assert_eq!(
        ws.end(WAIT).await,
        WsEnd::Closed(1001, "server shutting down".into())
    );
    let exit = tokio::time::timeout(WAIT, server.child.wait())
        .await
        .expect("exits")
        .unwrap();
    assert!(exit.success(), "{exit:?}");
}

/// A counter from `/metrics`.
async fn metric(app: &TestApp, name: &str) -> u64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics:\n{text}"))
}

#[tokio::test]
async fn subscribers_asking_the_same_in_one_organization_share_one_execution() {
    let app = spawn_app().await;
    let admin = Caller::admin(&unique_org("o"));
    let other = Caller::admin(&unique_org("p"));
    let (_, _, kr) = tree(&app, &admin).await;
    let (_, _, other_kr) = tree(&app, &other).await;
    let everything = "subscription { progressChanged { keyResultId value } }";
    let mut same = Vec::new();
    for caller in [
        admin.clone(),
        Caller::member(&admin.org, "ann"),
        Caller::member(&admin.org, "bob"),
    ] {
        let mut ws = WsClient::connected(&app.address, &app.token(&caller), false).await;
        ws.subscribe("s", everything, json!({})).await;
        same.push(ws);
    }
    let mut legacy = WsClient::connected(&app.address, &app.token(&admin), true).await;
    legacy.subscribe("s", everything, json!({})).await;
    let mut elsewhere = WsClient::connected(&app.address, &app.token(&other), false).await;
    elsewhere.subscribe("s", everything, json!({})).await;
    let mut filtered = WsClient::connected(&app.address, &app.token(&admin), false).await;
    filtered
        .subscribe(
            "s",
            "subscription($k: ID) { progressChanged(keyResultId: $k) { keyResultId value } }",
            json!({ "k": kr }),
        )
        .await;
    app.wait_for_subscribers(6).await;
    assert_eq!(metric(&app, "okr_pulse_subscriptions").await, 6);
    assert_eq!(
        metric(&app, "okr_pulse_subscription_executions").await,
        3,
        "one for the organization's four alike, one for the other organization, one for the filter"
    );

    app.check_in(&admin, &kr, 70.0).await;
    for ws in same.iter_mut().chain([&mut legacy, &mut filtered]) {
        let event = ws.next_event("s", WAIT).await;
        assert_eq!(event["progressChanged"]["keyResultId"], kr.as_str());
        assert_eq!(event["progressChanged"]["value"], 70.0);
    }
    // The other organization's subscriber sees its own change first, never ours.
    app.check_in(&other, &other_kr, 10.0).await;
    let event = elsewhere.next_event("s", WAIT).await;
    assert_eq!(event["progressChanged"]["keyResultId"], other_kr.as_str());

    drop((same, legacy, elsewhere, filtered));
    let deadline = tokio::time::Instant::now() + WAIT;
    while metric(&app, "okr_pulse_subscription_executions").await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "executions outlived their subscribers"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.events.subscriber_count(), 0);
}
