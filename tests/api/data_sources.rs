use serde_json::{Value, json};

use crate::{
    connections::create_connection,
    helpers::{
        Caller, Emulator, TestApp, objective_input, period_half_elapsed, spawn_app_with_emulator,
        unique_org,
    },
};

const LINK: &str = "mutation($input: LinkDataSourceInput!) { linkDataSource(input: $input) { id kind state sql lastValue lastSyncedAt nextSyncAt syncIntervalSeconds lastError { code } connection { name } keyResult { id currentValue progress } syncRuns { outcome trigger jobId bytesProcessed durationMs value } } }";
const REFRESH: &str = "mutation($id: ID!) { refreshDataSource(id: $id) { state lastValue consecutiveFailures lastError { code message reason transient } syncRuns { outcome trigger attempts error { code reason } } } }";
const KR: &str = "query($id: ID!) { keyResult(id: $id) { currentValue progress status history { value source } objective { id progress } dataSource { id state } } }";

/// An objective with one metric key result (0 → 100 leads) and the leads table.
async fn fixture(app: &TestApp, emulator: &Emulator, caller: &Caller) -> (String, String) {
    emulator
        .execute("CREATE TABLE sales.leads (n INT64, day DATE, label STRING)")
        .await;
    let objective = app.objective(caller, objective_input("Grow")).await;
    let kr = app
        .key_result(caller, json!({ "objectiveId": objective, "title": "Leads", "kind": "METRIC", "startValue": 0, "targetValue": 100 }))
        .await;
    (objective, kr)
}

async fn insert_leads(emulator: &Emulator, n: i64, day: chrono::NaiveDate) {
    emulator
        .execute(&format!(
            "INSERT INTO sales.leads VALUES ({n}, DATE '{day}', 'x')"
        ))
        .await;
}

fn today() -> chrono::NaiveDate {
    chrono::Utc::now().date_naive()
}

#[tokio::test]
async fn linking_with_the_only_usable_connection_runs_the_query_and_records_the_value() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (objective, kr) = fixture(&app, &emulator, &admin).await;
    insert_leads(&emulator, 30, today()).await;
    insert_leads(&emulator, 15, today()).await;
    create_connection(&app, &admin, "Warehouse").await;

    let data = app
        .data(&admin, LINK, json!({ "input": { "keyResultId": kr, "sql": "SELECT SUM(n) AS leads FROM sales.leads;" } }))
        .await;
    let ds = &data["linkDataSource"];
    assert_eq!(ds["kind"], "BIGQUERY");
    assert_eq!(ds["state"], "OK");
    assert_eq!(ds["sql"], "SELECT SUM(n) AS leads FROM sales.leads");
    assert_eq!(ds["lastValue"], 45.0);
    assert_eq!(ds["syncIntervalSeconds"], 3600);
    assert_eq!(ds["connection"]["name"], "Warehouse");
    assert_eq!(
        ds["keyResult"],
        json!({ "id": kr, "currentValue": 45.0, "progress": 45.0 })
    );
    assert_eq!(ds["syncRuns"].as_array().unwrap().len(), 1);
    assert_eq!(ds["syncRuns"][0]["outcome"], "OK");
    assert_eq!(ds["syncRuns"][0]["trigger"], "LINK");
    assert!(
        ds["syncRuns"][0]["jobId"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );

    let data = app.data(&admin, KR, json!({ "id": kr })).await;
    assert_eq!(
        data["keyResult"]["history"],
        json!([{ "value": 45.0, "source": "SYNC" }])
    );
    assert_eq!(data["keyResult"]["status"], "BEHIND");
    assert_eq!(data["keyResult"]["objective"]["progress"], 45.0);
    assert_eq!(data["keyResult"]["dataSource"]["state"], "OK");

    // One data source per key result.
    let err = app
        .error(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT 1" } }),
        )
        .await;
    assert_eq!(err.code, "CONFLICT");
    let o = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { keyResults { dataSource { sql } } } }",
            json!({ "id": objective }),
        )
        .await;
    assert_eq!(
        o["objective"]["keyResults"][0]["dataSource"]["sql"],
        "SELECT SUM(n) AS leads FROM sales.leads"
    );
}

#[tokio::test]
async fn the_connection_must_be_named_when_several_are_usable_and_exist_at_all() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let org = unique_org("o");
    let admin = Caller::admin(&org);
    let member = Caller::member(&org, "mo");
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    let err = app
        .error(
            &member,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT 1" } }),
        )
        .await;
    assert_eq!(err.code, "NO_CONNECTION");
    assert!(err.message.contains("admin"), "{}", err.message);
    create_connection(&app, &admin, "Alpha").await;
    let beta = create_connection(&app, &admin, "Beta").await;
    let err = app
        .error(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT 1" } }),
        )
        .await;
    assert_eq!(
        (err.code.as_str(), err.field.as_deref()),
        ("BAD_USER_INPUT", Some("connectionId"))
    );
    assert!(
        err.message.contains("'Alpha'") && err.message.contains("'Beta'"),
        "{}",
        err.message
    );
    // The member may use neither until one is shared.
    let err = app
        .error(
            &member,
            LINK,
            json!({ "input": { "keyResultId": kr, "connectionId": beta, "sql": "SELECT 1" } }),
        )
        .await;
    assert_eq!(err.code, "FORBIDDEN");
    app.data(
        &admin,
        "mutation($id: ID!) { shareConnection(id: $id, input: { everyone: true }) { id } }",
        json!({ "id": beta }),
    )
    .await;
    let data = app
        .data(
            &member,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT 7 AS n" } }),
        )
        .await;
    assert_eq!(data["linkDataSource"]["connection"]["name"], "Beta");
    assert_eq!(data["linkDataSource"]["lastValue"], 7.0);
}

#[tokio::test]
async fn queries_that_are_not_one_select_of_one_number_are_refused_and_nothing_is_saved() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    insert_leads(&emulator, 5, today()).await;
    insert_leads(&emulator, 6, today()).await;
    create_connection(&app, &admin, "C").await;
    let points_before = app.count_rows("progress_points").await;
    let cases: [(&str, &str, Option<&str>); 10] = [
        (
            "DELETE FROM sales.leads WHERE TRUE",
            "QUERY_NOT_SELECT",
            None,
        ),
        (
            "INSERT INTO sales.leads VALUES (1, DATE '2026-01-01', 'y')",
            "QUERY_NOT_SELECT",
            None,
        ),
        (
            "CREATE TABLE sales.evil (a INT64)",
            "QUERY_NOT_SELECT",
            None,
        ),
        ("SELECT 1 AS a; SELECT 2 AS b", "QUERY_NOT_SELECT", None),
        ("SELECT 1 AS a, 2 AS b", "QUERY_SHAPE", None),
        ("SELECT label FROM sales.leads LIMIT 1", "QUERY_SHAPE", None),
        ("SELECT n FROM sales.leads", "QUERY_SHAPE", None),
        (
            "SELECT n FROM sales.leads WHERE n > 100",
            "QUERY_SHAPE",
            None,
        ),
        (
            "SELECT SUM(n) AS s FROM sales.leads WHERE n > 100",
            "QUERY_SHAPE",
            None,
        ),
        (
            "SELECT nope FROM sales.leads",
            "BIGQUERY_ERROR",
            Some("invalidQuery"),
        ),
    ];
    for (sql, code, reason) in cases {
        let response = app
            .gql(
                &admin,
                LINK,
                json!({ "input": { "keyResultId": kr, "sql": sql } }),
            )
            .await;
        let err = &response["errors"][0];
        assert_eq!(err["extensions"]["code"], code, "{sql}: {response:#}");
        if let Some(reason) = reason {
            assert_eq!(err["extensions"]["reason"], reason, "{sql}");
        }
        assert!(
            err["message"].as_str().unwrap().len() > 30,
            "{sql}: a message that says what to change"
        );
    }
    let err = app
        .error(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT COUNT(*) FROM sales.missing" } }),
        )
        .await;
    assert_eq!(err.code, "BIGQUERY_ERROR");
    assert!(
        err.message.contains("Check the project, dataset and table"),
        "{}",
        err.message
    );

    // DML and DDL never ran.
    emulator.execute("SELECT COUNT(*) FROM sales.leads").await;
    let data = app
        .data(&admin, LINK, json!({ "input": { "keyResultId": kr, "sql": "SELECT COUNT(*) AS c FROM sales.leads" } }))
        .await;
    assert_eq!(
        data["linkDataSource"]["lastValue"], 2.0,
        "the DELETE and INSERT must not have run"
    );
    let err = app
        .error(&admin, LINK, json!({ "input": { "keyResultId": kr, "sql": "SELECT COUNT(*) AS c FROM sales.evil" } }))
        .await;
    assert_eq!(err.code, "CONFLICT");
    assert_eq!(app.count_rows("data_sources").await, 1);
    assert_eq!(app.count_rows("sync_runs").await, 1);
    assert_eq!(app.count_rows("progress_points").await, points_before + 2);
}

#[tokio::test]
async fn named_parameters_bind_the_period_and_the_moment_of_the_value() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    let (start, end) = period_half_elapsed();
    insert_leads(&emulator, 10, start).await;
    insert_leads(&emulator, 20, today()).await;
    insert_leads(&emulator, 40, end).await;
    insert_leads(&emulator, 1000, start.pred_opt().unwrap()).await;
    insert_leads(&emulator, 2000, end.succ_opt().unwrap()).await;
    create_connection(&app, &admin, "C").await;
    let sql = "SELECT SUM(n) AS leads FROM sales.leads WHERE day BETWEEN @period_start AND @period_end AND TIMESTAMP(day) <= @as_of";
    let data = app
        .data(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": sql } }),
        )
        .await;
    // In the period and not after now: 10 + 20.
    assert_eq!(data["linkDataSource"]["lastValue"], 30.0);
}

#[tokio::test]
async fn a_refresh_after_the_data_changed_moves_value_progress_and_status() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (objective, kr) = fixture(&app, &emulator, &admin).await;
    insert_leads(&emulator, 20, today()).await;
    create_connection(&app, &admin, "C").await;
    let ds = app
        .data(&admin, LINK, json!({ "input": { "keyResultId": kr, "sql": "SELECT SUM(n) AS leads FROM sales.leads" } }))
        .await["linkDataSource"]["id"]
        .clone();
    let before = app.data(&admin, KR, json!({ "id": kr })).await;
    assert_eq!(before["keyResult"]["status"], "AT_RISK");

    insert_leads(&emulator, 50, today()).await;
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    assert_eq!(data["refreshDataSource"]["state"], "OK");
    assert_eq!(data["refreshDataSource"]["lastValue"], 70.0);
    assert_eq!(data["refreshDataSource"]["syncRuns"][0]["outcome"], "OK");
    assert_eq!(
        data["refreshDataSource"]["syncRuns"][0]["trigger"],
        "REFRESH"
    );
    let after = app.data(&admin, KR, json!({ "id": kr })).await;
    assert_eq!(after["keyResult"]["currentValue"], 70.0);
    assert_eq!(after["keyResult"]["status"], "ON_TRACK");
    assert_eq!(
        after["keyResult"]["history"],
        json!([{ "value": 20.0, "source": "SYNC" }, { "value": 70.0, "source": "REFRESH" }])
    );
    let o = app
        .data(
            &admin,
            "query($id: ID!) { objective(id: $id) { progress status history { source } } }",
            json!({ "id": objective }),
        )
        .await;
    assert_eq!(o["objective"]["progress"], 70.0);
    assert_eq!(o["objective"]["status"], "ON_TRACK");
    assert_eq!(o["objective"]["history"].as_array().unwrap().len(), 2);

    // Nothing moved: the run is logged, no point is written.
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    assert_eq!(
        data["refreshDataSource"]["syncRuns"][0]["outcome"],
        "UNCHANGED"
    );
    let again = app.data(&admin, KR, json!({ "id": kr })).await;
    assert_eq!(again["keyResult"]["history"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn an_emulator_that_is_down_records_a_transient_error_and_keeps_the_last_value() {
    let (app, mut emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    insert_leads(&emulator, 33, today()).await;
    create_connection(&app, &admin, "C").await;
    let ds = app
        .data(&admin, LINK, json!({ "input": { "keyResultId": kr, "sql": "SELECT SUM(n) AS leads FROM sales.leads" } }))
        .await["linkDataSource"]["id"]
        .clone();
    emulator.stop().await;
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    let ds_after = &data["refreshDataSource"];
    assert_eq!(ds_after["state"], "ERROR");
    assert_eq!(ds_after["lastValue"], 33.0);
    assert_eq!(ds_after["consecutiveFailures"], 1);
    assert_eq!(ds_after["lastError"]["code"], "BIGQUERY_ERROR");
    assert_eq!(ds_after["lastError"]["transient"], true);
    assert_eq!(ds_after["syncRuns"][0]["outcome"], "ERROR");
    assert!(
        ds_after["syncRuns"][0]["attempts"].as_i64().unwrap() > 1,
        "{ds_after:#}"
    );
    let data = app.data(&admin, KR, json!({ "id": kr })).await;
    assert_eq!(data["keyResult"]["currentValue"], 33.0);
    assert_eq!(data["keyResult"]["dataSource"]["state"], "ERROR");
    // Linking while BigQuery is unreachable is refused and saves nothing.
    let other = app
        .key_result(&admin, json!({ "objectiveId": data["keyResult"]["objective"]["id"].clone(), "title": "Other", "kind": "METRIC", "startValue": 0, "targetValue": 1 }))
        .await;
    let err = app
        .error(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": other, "sql": "SELECT 1 AS n" } }),
        )
        .await;
    assert_eq!(err.code, "BIGQUERY_ERROR");
    assert_eq!(app.count_rows("data_sources").await, 1);
}

#[tokio::test]
async fn a_connection_in_use_cannot_be_deleted_until_its_data_sources_are_unlinked() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    let conn = create_connection(&app, &admin, "C").await;
    let ds = app
        .data(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT 3 AS n" } }),
        )
        .await["linkDataSource"]["id"]
        .clone();
    let err = app
        .error(
            &admin,
            "mutation($id: ID!) { deleteConnection(id: $id) }",
            json!({ "id": conn }),
        )
        .await;
    assert_eq!(err.code, "CONFLICT");
    assert!(
        err.message.contains("key result 'Leads'"),
        "{}",
        err.message
    );
    app.data(
        &admin,
        "mutation($id: ID!) { unlinkDataSource(id: $id) }",
        json!({ "id": ds }),
    )
    .await;
    let data = app.data(&admin, KR, json!({ "id": kr })).await;
    assert_eq!(data["keyResult"]["dataSource"], Value::Null);
    assert_eq!(data["keyResult"]["currentValue"], 3.0, "the value stays");
    app.data(
        &admin,
        "mutation($id: ID!) { deleteConnection(id: $id) }",
        json!({ "id": conn }),
    )
    .await;
    assert_eq!(app.count_rows("connections").await, 0);
}

#[tokio::test]
async fn changing_the_sql_is_validated_first_and_pausing_keeps_a_manual_check_in() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    create_connection(&app, &admin, "C").await;
    let ds = app
        .data(&admin, LINK, json!({ "input": { "keyResultId": kr, "sql": "SELECT 10 AS n", "syncIntervalSeconds": 600 } }))
        .await["linkDataSource"]["id"]
        .clone();
    let update = "mutation($id: ID!, $input: UpdateDataSourceInput!) { updateDataSource(id: $id, input: $input) { sql state lastValue syncIntervalSeconds } }";
    let err = app
        .error(
            &admin,
            update,
            json!({ "id": ds, "input": { "sql": "DELETE FROM sales.leads WHERE TRUE" } }),
        )
        .await;
    assert_eq!(err.code, "QUERY_NOT_SELECT");
    let err = app
        .error(
            &admin,
            update,
            json!({ "id": ds, "input": { "syncIntervalSeconds": 1 } }),
        )
        .await;
    assert_eq!(err.field.as_deref(), Some("syncIntervalSeconds"));
    let data = app
        .data(
            &admin,
            update,
            json!({ "id": ds, "input": { "sql": "SELECT 25 AS n", "syncIntervalSeconds": 900 } }),
        )
        .await;
    assert_eq!(
        data["updateDataSource"],
        json!({ "sql": "SELECT 25 AS n", "state": "OK", "lastValue": 25.0, "syncIntervalSeconds": 900 })
    );
    assert_eq!(
        app.data(&admin, KR, json!({ "id": kr })).await["keyResult"]["currentValue"],
        25.0
    );

    app.data(
        &admin,
        "mutation($kr: ID!) { checkIn(input: { keyResultId: $kr, value: 60, pauseAutomaticUpdates: true }) { value } }",
        json!({ "kr": kr }),
    )
    .await;
    let data = app.data(&admin, KR, json!({ "id": kr })).await;
    assert_eq!(data["keyResult"]["dataSource"]["state"], "PAUSED");
    assert_eq!(data["keyResult"]["currentValue"], 60.0);
    let err = app.error(&admin, REFRESH, json!({ "id": ds })).await;
    assert_eq!(err.code, "BAD_USER_INPUT");
    let data = app
        .data(
            &admin,
            update,
            json!({ "id": ds, "input": { "paused": false } }),
        )
        .await;
    assert_eq!(data["updateDataSource"]["state"], "OK");
    let data = app.data(&admin, REFRESH, json!({ "id": ds })).await;
    assert_eq!(data["refreshDataSource"]["lastValue"], 25.0);
    assert_eq!(
        app.data(&admin, KR, json!({ "id": kr })).await["keyResult"]["currentValue"],
        25.0
    );
}

#[tokio::test]
async fn a_data_source_objective_takes_its_value_from_the_query() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    create_connection(&app, &admin, "C").await;
    let parent = app.objective(&admin, objective_input("Parent")).await;
    let mut input = objective_input("Revenue");
    input["parentId"] = json!(parent);
    input["progressMode"] = json!("DATA_SOURCE");
    input["startValue"] = json!(0);
    input["targetValue"] = json!(200);
    let objective = app.objective(&admin, input).await;
    let roll_up = app.objective(&admin, objective_input("Roll-up")).await;
    let err = app
        .error(
            &admin,
            LINK,
            json!({ "input": { "objectiveId": roll_up, "sql": "SELECT 1" } }),
        )
        .await;
    assert_eq!(
        (err.code.as_str(), err.field.as_deref()),
        ("BAD_USER_INPUT", Some("objectiveId"))
    );
    app.data(
        &admin,
        LINK,
        json!({ "input": { "objectiveId": objective, "sql": "SELECT 150 AS revenue" } }),
    )
    .await;
    let data = app
        .data(
            &admin,
            "query($o: ID!, $p: ID!) { o: objective(id: $o) { currentValue progress dataSource { lastValue } } p: objective(id: $p) { progress } }",
            json!({ "o": objective, "p": parent }),
        )
        .await;
    assert_eq!(
        data["o"],
        json!({ "currentValue": 150.0, "progress": 75.0, "dataSource": { "lastValue": 150.0 } })
    );
    assert_eq!(data["p"]["progress"], 75.0);
    let _keep_running = emulator;
}

#[tokio::test]
async fn another_organization_cannot_see_refresh_change_or_unlink_a_data_source() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("a"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    let conn = create_connection(&app, &admin, "C").await;
    let ds = app
        .data(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT 4 AS n" } }),
        )
        .await["linkDataSource"]["id"]
        .clone();
    let eve = Caller::admin(&unique_org("b"));
    let data = app
        .data(
            &eve,
            "query($id: ID!) { dataSource(id: $id) { id } }",
            json!({ "id": ds }),
        )
        .await;
    assert_eq!(data["dataSource"], Value::Null);
    for query in [
        "mutation($id: ID!) { refreshDataSource(id: $id) { id } }",
        "mutation($id: ID!) { unlinkDataSource(id: $id) }",
        "mutation($id: ID!) { updateDataSource(id: $id, input: { paused: true }) { id } }",
    ] {
        assert_eq!(
            app.error(&eve, query, json!({ "id": ds })).await.code,
            "NOT_FOUND",
            "{query}"
        );
    }
    let own_objective = app.objective(&eve, objective_input("E")).await;
    let own_kr = app
        .key_result(&eve, json!({ "objectiveId": own_objective, "title": "K", "kind": "METRIC", "startValue": 0, "targetValue": 1 }))
        .await;
    let err = app
        .error(
            &eve,
            LINK,
            json!({ "input": { "keyResultId": own_kr, "connectionId": conn, "sql": "SELECT 1" } }),
        )
        .await;
    assert_eq!(err.code, "NOT_FOUND");
}

const PREVIEW: &str = "mutation($input: LinkDataSourceInput!) { previewDataSource(input: $input) { value bytesProcessed jobId connection { name } } }";

#[tokio::test]
async fn a_preview_runs_the_query_and_saves_nothing() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    insert_leads(&emulator, 7, today()).await;
    create_connection(&app, &admin, "C").await;
    let data = app
        .data(
            &admin,
            PREVIEW,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT SUM(n) FROM sales.leads" } }),
        )
        .await;
    assert_eq!(data["previewDataSource"]["value"], 7.0);
    assert_eq!(data["previewDataSource"]["connection"]["name"], "C");
    assert!(
        data["previewDataSource"]["bytesProcessed"].is_number()
            || data["previewDataSource"]["bytesProcessed"].is_null()
    );
    assert_eq!(app.count_rows("data_sources").await, 0);
    assert_eq!(app.count_rows("sync_runs").await, 0);
    assert_eq!(app.count_rows("progress_points").await, 0);
    // The same refusals as linking.
    let err = app
        .error(
            &admin,
            PREVIEW,
            json!({ "input": { "keyResultId": kr, "sql": "DELETE FROM sales.leads WHERE TRUE" } }),
        )
        .await;
    assert_eq!(err.code, "QUERY_NOT_SELECT", "{err:?}");
    let err = app
        .error(
            &admin,
            PREVIEW,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT 1 AS a, 2 AS b" } }),
        )
        .await;
    assert_eq!(err.code, "QUERY_SHAPE", "{err:?}");
}

#[tokio::test]
async fn members_may_change_pause_refresh_or_unlink_only_data_sources_on_connections_they_may_use()
{
    let (app, emulator) = spawn_app_with_emulator().await;
    let org = unique_org("o");
    let admin = Caller::admin(&org);
    let outsider = Caller::member(&org, "mo");
    let insider = Caller::member(&org, "ina");
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    let conn = create_connection(&app, &admin, "Private").await;
    let ds = app
        .data(
            &admin,
            LINK,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT 4 AS n" } }),
        )
        .await["linkDataSource"]["id"]
        .clone();
    app.data(&insider, "{ me { id } }", json!({})).await;
    let insider_id = app.data(&insider, "{ me { id } }", json!({})).await["me"]["id"].clone();
    app.data(
        &admin,
        "mutation($id: ID!, $u: [ID!]) { shareConnection(id: $id, input: { userIds: $u }) { id } }",
        json!({ "id": conn, "u": [insider_id] }),
    )
    .await;
    let changes = [
        "mutation($id: ID!) { updateDataSource(id: $id, input: { paused: true }) { id } }",
        "mutation($id: ID!) { updateDataSource(id: $id, input: { syncIntervalSeconds: 600 }) { id } }",
        "mutation($id: ID!) { refreshDataSource(id: $id) { id } }",
        "mutation($id: ID!) { unlinkDataSource(id: $id) }",
    ];
    for query in changes {
        assert_eq!(
            app.error(&outsider, query, json!({ "id": ds })).await.code,
            "FORBIDDEN",
            "{query}"
        );
    }
    // Reading needs no right to the connection.
    let read = app
        .data(
            &outsider,
            "query($id: ID!) { dataSource(id: $id) { state syncIntervalSeconds } }",
            json!({ "id": ds }),
        )
        .await;
    assert_eq!(read["dataSource"]["state"], "OK");
    assert_ne!(read["dataSource"]["syncIntervalSeconds"], 600);
    // Someone it is shared with may.
    for query in changes {
        let response = app.gql(&insider, query, json!({ "id": ds })).await;
        assert!(response.get("errors").is_none(), "{query}: {response:#}");
        if query.contains("paused") {
            app.data(
                &insider,
                "mutation($id: ID!) { updateDataSource(id: $id, input: { paused: false }) { id } }",
                json!({ "id": ds }),
            )
            .await;
        }
    }
}

#[tokio::test]
async fn a_script_never_reaches_bigquery_and_the_table_survives() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    insert_leads(&emulator, 3, today()).await;
    create_connection(&app, &admin, "C").await;
    for sql in [
        "SELECT 1; DROP TABLE sales.leads",
        "SELECT COUNT(*) FROM sales.leads; DELETE FROM sales.leads WHERE TRUE",
        "BEGIN DELETE FROM sales.leads WHERE TRUE; END",
        "DECLARE x INT64 DEFAULT 1; SELECT x",
    ] {
        for mutation in [LINK, PREVIEW] {
            let err = app
                .error(
                    &admin,
                    mutation,
                    json!({ "input": { "keyResultId": kr, "sql": sql } }),
                )
                .await;
            assert_eq!(err.code, "QUERY_NOT_SELECT", "{sql}: {err:?}");
        }
    }
    // The table and its rows are all still there.
    let data = app
        .data(
            &admin,
            PREVIEW,
            json!({ "input": { "keyResultId": kr, "sql": "SELECT SUM(n) FROM sales.leads" } }),
        )
        .await;
    assert_eq!(data["previewDataSource"]["value"], 3.0);
}

#[tokio::test]
async fn duckdb_file_functions_are_refused_and_the_emulator_cannot_read_files_anyway() {
    let (app, emulator) = spawn_app_with_emulator().await;
    let admin = Caller::admin(&unique_org("o"));
    let (_, kr) = fixture(&app, &emulator, &admin).await;
    create_connection(&app, &admin, "Warehouse").await;
    let secret = app.config.server.data_dir.join("probe.txt");
    std::fs::write(&secret, "s3cret").unwrap();
    for sql in [
        format!(
            "SELECT LENGTH(content) FROM read_text('{}')",
            secret.display()
        ),
        format!(
            "SELECT LENGTH(content) FROM `READ_BLOB` /* x */ ('{}')",
            secret.display()
        ),
        "SELECT COUNT(*) FROM glob('/etc/*')".to_owned(),
    ] {
        let err = app
            .error(
                &admin,
                LINK,
                json!({ "input": { "keyResultId": kr, "sql": sql } }),
            )
            .await;
        assert_eq!(err.code, "QUERY_NOT_ALLOWED", "{sql}: {}", err.message);
    }
    assert_eq!(app.count_rows("data_sources").await, 0);
    // Behind the guard, the emulator itself is started without file access.
    let answer = emulator
        .query(&format!(
            "SELECT LENGTH(content) AS n FROM read_text('{}')",
            secret.display()
        ))
        .await;
    assert!(
        answer["rows"].as_array().is_none_or(|rows| rows.is_empty())
            && answer["errors"][0]["message"]
                .as_str()
                .is_some_and(|m| m.contains("file system operations are disabled")),
        "{answer}"
    );
}
