use crate::helpers::spawn_app;

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
async fn get_graphql_serves_graphiql() {
    let app = spawn_app().await;
    let response = reqwest::get(format!("{}/graphql", app.address))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("graphiql"));
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
