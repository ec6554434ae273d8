//! One service account per organization: the server's own credentials ask
//! the IAM Credentials API for a short-lived token of the org's account
//! (`generateAccessToken`), so BigQuery's IAM, not okr-pulse, keeps each
//! org's jobs inside the projects that granted that org's account.
//!
//! google-cloud-auth's impersonation builder cannot be pointed at another
//! IAM endpoint (a Private Service Connect address, a test double), so this
//! is the same call made with our HTTP client.

use std::time::Duration;

use chrono::{DateTime, Utc};
use google_cloud_auth::credentials::{
    CacheableResource, Credentials, CredentialsProvider, EntityTag,
};
use google_cloud_gax::error::CredentialsError;
use http::{Extensions, HeaderMap, HeaderValue, header::AUTHORIZATION};
use tokio::sync::Mutex;

/// The scope every BigQuery token carries.
const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// A token is fetched again this long before it expires.
const REFRESH_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

/// How long one `generateAccessToken` call may take: within the 5 s in
/// which a request must have its token.
const CALL_TIMEOUT: Duration = Duration::from_secs(4);

/// Credentials of `target`, minted with `source`'s.
pub struct OrgAccount {
    source: Credentials,
    target: String,
    url: String,
    http: reqwest::Client,
    /// The last token's headers, with their tag and expiry.
    cached: Mutex<Option<(HeaderMap, EntityTag, DateTime<Utc>)>>,
}

/// Names the account only: the cached token never reaches a log line.
impl std::fmt::Debug for OrgAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgAccount")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl OrgAccount {
    /// Credentials that act as `target` through `iam_endpoint`.
    pub fn new(
        source: Credentials,
        target: &str,
        iam_endpoint: &str,
        http: reqwest::Client,
    ) -> OrgAccount {
        OrgAccount {
            source,
            target: target.to_owned(),
            url: format!(
                "{}/v1/projects/-/serviceAccounts/{target}:generateAccessToken",
                iam_endpoint.trim_end_matches('/')
            ),
            http,
            cached: Mutex::new(None),
        }
    }

    async fn fetch(&self) -> Result<(HeaderMap, DateTime<Utc>), CredentialsError> {
        let source = match self.source.headers(Extensions::new()).await? {
            CacheableResource::New { data, .. } => data,
            CacheableResource::NotModified => {
                return Err(CredentialsError::from_msg(
                    false,
                    "the server's own credentials gave no headers",
                ));
            }
        };
        let mut request = self
            .http
            .post(&self.url)
            .timeout(CALL_TIMEOUT)
            .json(&serde_json::json!({ "scope": [SCOPE], "lifetime": "3600s" }));
        for (name, value) in &source {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|err| {
            CredentialsError::from_msg(
                true,
                format!("the IAM Credentials API could not be reached: {err}"),
            )
        })?;
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        if !status.is_success() {
            let message = body["error"]["message"]
                .as_str()
                .unwrap_or("no message")
                .chars()
                .take(300)
                .collect::<String>();
            return Err(CredentialsError::from_msg(
                status.is_server_error() || status.as_u16() == 429,
                format!(
                    "the server's account may not act as {} (HTTP {}: {message}); grant it roles/iam.serviceAccountTokenCreator on that service account",
                    self.target,
                    status.as_u16()
                ),
            ));
        }
        let token = body["accessToken"].as_str().unwrap_or_default();
        let expires = body["expireTime"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|| Utc::now() + chrono::TimeDelta::minutes(10));
        let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
            .ok()
            .filter(|_| !token.is_empty())
            .ok_or_else(|| {
                CredentialsError::from_msg(false, "the IAM Credentials API returned no token")
            })?;
        value.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value);
        Ok((headers, expires))
    }
}

impl CredentialsProvider for OrgAccount {
    async fn headers(
        &self,
        _extensions: Extensions,
    ) -> Result<CacheableResource<HeaderMap>, CredentialsError> {
        let mut cached = self.cached.lock().await;
        if let Some((headers, tag, expires)) = cached.as_ref()
            && Utc::now() + REFRESH_MARGIN < *expires
        {
            return Ok(CacheableResource::New {
                entity_tag: tag.clone(),
                data: headers.clone(),
            });
        }
        let (headers, expires) = self.fetch().await?;
        let tag = EntityTag::new();
        *cached = Some((headers.clone(), tag.clone(), expires));
        Ok(CacheableResource::New {
            entity_tag: tag,
            data: headers,
        })
    }

    async fn universe_domain(&self) -> Option<String> {
        Some("googleapis.com".to_owned())
    }
}
