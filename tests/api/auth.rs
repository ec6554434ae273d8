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
            nbf: None,
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

#[tokio::test]
async fn a_token_not_yet_valid_or_expired_beyond_a_few_seconds_is_refused() {
    let app = spawn_app().await;
    let now = jsonwebtoken::get_current_timestamp();
    for (exp, nbf) in [(now + 3600, Some(now + 600)), (now - 30, None)] {
        let token = app
            .keys
            .mint(&okr_pulse::auth::Claims {
                sub: "s".into(),
                email: "s@x.example".into(),
                name: "S".into(),
                org: unique_org("o"),
                role: "member".into(),
                exp,
                nbf,
            })
            .unwrap();
        let response = app
            .raw(Some(&format!("Bearer {token}")), ME, json!({}))
            .await;
        assert_eq!(
            response["errors"][0]["extensions"]["code"], "UNAUTHENTICATED",
            "{response:#}"
        );
    }
}

/// Runs the binary until it exits or prints its banner, and returns its
/// exit status (none if it was still serving) and everything it printed.
async fn start_and_read(env: &[(&str, &str)], data_dir: &std::path::Path) -> (Option<i32>, String) {
    use tokio::io::AsyncReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_okr-pulse"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("LISTEN_ADDR", "127.0.0.1:0")
        .env("DATA_DIR", data_dir)
        .env("BIGQUERY_EMULATOR_HOST", "127.0.0.1:9")
        .env("GCE_METADATA_HOST", "127.0.0.1:9")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let mut printed = String::new();
    let status = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        let mut out = [0u8; 4096];
        let mut err = [0u8; 4096];
        loop {
            tokio::select! {
                n = stdout.read(&mut out) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        printed.push_str(&String::from_utf8_lossy(&out[..n]));
                        if printed.contains("GraphiQL:") {
                            return None;
                        }
                    }
                },
                n = stderr.read(&mut err) => {
                    if let Ok(n) = n { printed.push_str(&String::from_utf8_lossy(&err[..n])); }
                }
            }
        }
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest).await;
        printed.push_str(&rest);
        child.wait().await.ok().and_then(|s| s.code())
    })
    .await
    .expect("the server starts or stops within 30 s");
    (status, printed)
}

#[tokio::test]
async fn a_blank_short_or_readable_secret_file_stops_the_server_with_what_to_do() {
    use std::os::unix::fs::PermissionsExt;
    for (contents, mode) in [("", 0o600), ("short", 0o600), (&*"k".repeat(64), 0o644)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("jwt-secret");
        std::fs::write(&path, contents).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let (status, printed) = start_and_read(&[], dir.path()).await;
        assert!(status.is_some_and(|code| code != 0), "{printed}");
        assert!(printed.contains("jwt-secret"), "{printed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let (status, printed) = start_and_read(&[("AUTH_JWT_SECRET", "too-short")], dir.path()).await;
    assert!(status.is_some_and(|code| code != 0), "{printed}");
    assert!(printed.contains("AUTH_JWT_SECRET"), "{printed}");
}

#[tokio::test]
async fn a_ready_token_is_printed_only_when_the_server_made_its_own_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (status, printed) = start_and_read(&[], dir.path()).await;
    assert_eq!(status, None, "{printed}");
    assert!(printed.contains("/#token=ey"), "{printed}");
    let dir = tempfile::tempdir().unwrap();
    let (status, printed) =
        start_and_read(&[("AUTH_JWT_SECRET", crate::helpers::SECRET)], dir.path()).await;
    assert_eq!(status, None, "{printed}");
    assert!(
        !printed.contains("Bearer ey") && !printed.contains("#token="),
        "{printed}"
    );
}
