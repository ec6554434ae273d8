//! The dashboard and GraphiQL come from the binary itself.

use crate::helpers::spawn_app;

/// Every `/assets/…` path a page names.
fn assets_of(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|part| part.starts_with("/assets/"))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn the_dashboard_and_its_assets_are_served_from_the_binary() {
    let app = spawn_app().await;
    let response = app.client.get(&app.address).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = response.text().await.unwrap();
    let assets = assets_of(&html);
    assert!(!assets.is_empty(), "{html}");
    for asset in assets {
        let response = app
            .client
            .get(format!("{}{asset}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{asset}");
        assert!(
            response.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("immutable")
        );
    }
    let favicon = app
        .client
        .get(format!("{}/favicon.svg", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(favicon.headers()["content-type"], "image/svg+xml");
    let missing = app
        .client
        .get(format!("{}/assets/nothing-here.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn a_browser_asking_for_graphql_gets_the_embedded_graphiql() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.to_lowercase().contains("graphiql"), "{html}");
    assert!(
        !html.contains("unpkg.com") && !html.contains("https://"),
        "{html}"
    );
}
