//! Which service account the server queries as.
//!
//! Application Default Credentials name it in a key file
//! (`GOOGLE_APPLICATION_CREDENTIALS` with `"type": "service_account"`), or,
//! on Google Cloud, the metadata server knows it. User credentials from
//! `gcloud auth application-default login` have none.

use std::{path::Path, time::Duration};

use super::IdentitySource;

/// How long to wait for the metadata server, which answers at once where it exists.
const METADATA_TIMEOUT: Duration = Duration::from_secs(2);

/// The service account's email, or none.
pub async fn service_account_email(source: &IdentitySource) -> Option<String> {
    if let Some(path) = &source.key_file {
        return from_key_file(path);
    }
    from_metadata_server(&source.metadata_host).await
}

fn from_key_file(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    match json["type"].as_str() {
        Some("service_account") => json["client_email"].as_str().map(str::to_owned),
        Some("impersonated_service_account") => json["service_account_impersonation_url"]
            .as_str()
            .and_then(|url| url.rsplit('/').next())
            .and_then(|tail| tail.split(':').next())
            .map(str::to_owned),
        _ => None,
    }
}

async fn from_metadata_server(host: &str) -> Option<String> {
    let url = format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/email");
    let client = reqwest::Client::builder()
        .timeout(METADATA_TIMEOUT)
        .build()
        .ok()?;
    let response = client
        .get(url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let email = response.text().await.ok()?.trim().to_owned();
    (!email.is_empty()).then_some(email)
}
