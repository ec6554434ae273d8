use serde_json::json;

use crate::helpers::{Caller, GqlError, spawn_app, unique_org};

const ME: &str = "{ me { id email name role } organization { slug } }";

#[tokio::test]
async fn a_request_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let response = app.raw(None, ME, json!({})).await;
    assert_eq!(GqlError::first(&response).code, "UNAUTHENTICATED");
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_unauthenticated() {
    let app = spawn_app().await;
    let forged = okr_pulse::auth::TokenKeys::from_secret("some-other-secret-value")
        .mint(&okr_pulse::auth::Claims {
            sub: "mallory".into(),
            email: "m@evil.example".into(),
            name: "M".into(),
            org: "acme".into(),
            role: "admin".into(),
            exp: jsonwebtoken::get_current_timestamp() + 60,
        })
        .unwrap();
    let response = app
        .raw(Some(&format!("Bearer {forged}")), ME, json!({}))
        .await;
    let err = GqlError::first(&response);
    assert_eq!(err.code, "UNAUTHENTICATED");
    assert!(err.message.contains("signature"), "{}", err.message);
    assert_eq!(app.count_rows("organizations").await, 0);
}

#[tokio::test]
async fn a_malformed_header_is_unauthenticated() {
    let app = spawn_app().await;
    let response = app.raw(Some("Token abc"), ME, json!({})).await;
    assert_eq!(GqlError::first(&response).code, "UNAUTHENTICATED");
    let response = app.raw(Some("Bearer not.a.jwt"), ME, json!({})).await;
    assert_eq!(GqlError::first(&response).code, "UNAUTHENTICATED");
}

#[tokio::test]
async fn the_first_request_provisions_the_organization_and_user_from_the_claims() {
    let app = spawn_app().await;
    let org = unique_org("acme");
    let data = app.data(&Caller::member(&org, "ana"), ME, json!({})).await;
    assert_eq!(data["me"]["role"], "MEMBER");
    assert_eq!(data["me"]["name"], "ana");
    assert_eq!(data["organization"]["slug"], org.as_str());
    let again = app.data(&Caller::member(&org, "ana"), ME, json!({})).await;
    assert_eq!(again["me"]["id"], data["me"]["id"]);
    assert_eq!(app.count_rows("organizations").await, 1);
    assert_eq!(app.count_rows("users").await, 1);
}

#[tokio::test]
async fn the_role_comes_from_the_token_on_every_request() {
    let app = spawn_app().await;
    let org = unique_org("acme");
    let member = Caller::member(&org, "bo");
    let promoted = Caller {
        role: "admin",
        ..member.clone()
    };
    assert_eq!(
        app.data(&member, ME, json!({})).await["me"]["role"],
        "MEMBER"
    );
    assert_eq!(
        app.data(&promoted, ME, json!({})).await["me"]["role"],
        "ADMIN"
    );
    assert_eq!(
        app.data(&member, ME, json!({})).await["me"]["role"],
        "MEMBER"
    );
}

#[tokio::test]
async fn the_token_subcommand_mints_a_token_the_server_accepts() {
    let app = spawn_app().await;
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_okr-pulse"))
        .args([
            "token",
            "--org",
            "cli-org",
            "--email",
            "cli@example.com",
            "--role",
            "admin",
        ])
        .env("AUTH_JWT_SECRET", crate::helpers::SECRET)
        .env("DATA_DIR", app.config.server.data_dir.as_os_str())
        .output()
        .expect("run okr-pulse token");
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap();
    let response = app
        .raw(Some(&format!("Bearer {}", token.trim())), ME, json!({}))
        .await;
    assert_eq!(response["data"]["me"]["role"], "ADMIN", "{response:#}");
    assert_eq!(response["data"]["organization"]["slug"], "cli-org");
}
