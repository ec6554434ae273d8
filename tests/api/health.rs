use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test]
async fn healthz_answers_while_the_process_is_up() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/healthz", app.address))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_reports_a_reachable_and_migrated_database() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/readyz", app.address))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ready");
}

#[tokio::test]
async fn get_graphql_serves_graphiql_to_browsers_only() {
    let app = spawn_app().await;
    let browser = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status(), 200);
    assert!(
        browser
            .text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
    let client = reqwest::get(format!("{}/graphql", app.address))
        .await
        .unwrap();
    assert_eq!(client.status(), 400);
    let body: serde_json::Value = client.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_REQUEST");
}

#[tokio::test]
async fn every_table_of_the_design_exists_after_start_up() {
    let app = spawn_app().await;
    for table in [
        "organizations",
        "users",
        "connections",
        "connection_shares",
        "objectives",
        "key_results",
        "data_sources",
        "sync_runs",
        "progress_points",
    ] {
        assert_eq!(app.count_rows(table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn with_a_metrics_token_the_metrics_need_it() {
    let app =
        spawn_app_with(|config| config.server.metrics_token = Some("scrape-0123456789".into()))
            .await;
    let url = format!("{}/metrics", app.address);
    for auth in [
        None,
        Some("Bearer wrong"),
        Some("Bearer scrape-012345678"),
        Some("scrape-0123456789"),
    ] {
        let mut request = app.client.get(&url);
        if let Some(auth) = auth {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{auth:?}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    }
    let response = app
        .client
        .get(&url)
        .header("Authorization", "Bearer scrape-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.contains("okr_pulse_sync_runs_total"), "{text}");
    // Counts only: no label names an organization, a user or an object.
    assert!(!text.contains('{'), "{text}");
}
