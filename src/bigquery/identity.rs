//! Who the server is at Google: its own identity, built from the
//! configured credentials, and each organization's impersonated one; a
//! call made with a valid token of the right identity, and identities
//! built again after a credential failure so that none sticks.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};

use google_cloud_bigquery_v2::client::JobService;

use crate::domain::warehouse::org_service_account;

use super::{
    Target, WarehouseError,
    classify::classify_rpc,
    credentials::{CredentialSettings, CredentialSource, Loaded, METADATA_TIMEOUT},
    impersonate::OrgAccount,
};

/// Credentials and the client that carries them.
struct Identity {
    loaded: Loaded,
    jobs: JobService,
}

/// An organization's identity and the base identity it was minted with:
/// when the base is built again, so is the org's.
type OrgIdentity = (Arc<Identity>, Arc<Identity>);
/// What the server tells people about its credentials.
#[derive(Debug, Clone)]
pub struct Description {
    pub source: CredentialSource,
    /// The account's email (the org's own with per-org accounts).
    pub email: Option<String>,
    /// Why there are no usable credentials, naming what to fix.
    pub problem: Option<String>,
}

/// Where identities come from, and the ones built so far.
pub struct Identities {
    credentials: CredentialSettings,
    /// The REST endpoint the clients talk to.
    endpoint: String,
    /// The IAM Credentials API.
    iam_endpoint: String,
    /// Template of each org's service account; none: one identity for all.
    org_service_account: Option<String>,
    /// For the metadata server's email and the IAM Credentials API.
    http: reqwest::Client,
    /// The server's own identity, built on first use and again after a
    /// credential failure.
    base: tokio::sync::Mutex<Option<Arc<Identity>>>,
    /// Each organization's impersonated identity, by org slug.
    orgs: Mutex<HashMap<String, OrgIdentity>>,
}

impl Identities {
    /// Identities from these sources; nothing is built before first use.
    pub fn new(
        credentials: CredentialSettings,
        endpoint: String,
        iam_endpoint: String,
        org_service_account: Option<String>,
        http: reqwest::Client,
    ) -> Identities {
        Identities {
            credentials,
            endpoint,
            iam_endpoint,
            org_service_account,
            http,
            base: tokio::sync::Mutex::new(None),
            orgs: Mutex::new(HashMap::new()),
        }
    }

    /// Where the server's credentials come from, the account's email, and
    /// the problem when there are none, for the start-up log line and
    /// `bigQuerySetup`. Read from the settings and the key file alone
    /// (the metadata server is asked its email): nothing is built. With
    /// per-org accounts and `org` given, the email is that org's account.
    pub async fn describe(&self, org: Option<&str>) -> Description {
        let (source, email, problem) = match self.credentials.source() {
            Err(problem) => (CredentialSource::None, None, Some(problem.0)),
            Ok((CredentialSource::MetadataServer, _)) => {
                match self.credentials.metadata_email(&self.http).await {
                    Some(email) => (CredentialSource::MetadataServer, Some(email), None),
                    None => (
                        CredentialSource::None,
                        None,
                        Some(format!(
                            "no key file is configured and the metadata server at {} did not answer within {} s; set GOOGLE_APPLICATION_CREDENTIALS (or --google-application-credentials) to a key file, or run on Google Cloud with a service account",
                            self.credentials.metadata_host,
                            METADATA_TIMEOUT.as_secs()
                        )),
                    ),
                }
            }
            Ok((source, email)) => (source, email, None),
        };
        let email = match (&self.org_service_account, org) {
            _ if source == CredentialSource::Emulator => None,
            (Some(template), Some(slug)) => org_service_account(template, slug).ok(),
            _ => email,
        };
        Description {
            source,
            email,
            problem,
        }
    }

    /// The server's own identity: the one built before, unless its key file
    /// changed since, else built now.
    async fn base(&self) -> Result<Arc<Identity>, WarehouseError> {
        let mut base = self.base.lock().await;
        if let Some(identity) = base.as_ref()
            && identity.loaded.fingerprint == self.credentials.file_fingerprint()
        {
            return Ok(identity.clone());
        }
        *base = None;
        let loaded = self
            .credentials
            .load()
            .map_err(|problem| WarehouseError::credentials(problem.0))?;
        let identity = Arc::new(self.identity_of(loaded).await?);
        *base = Some(identity.clone());
        Ok(identity)
    }

    /// The identity a connection's jobs run as.
    async fn identity(&self, target: &Target) -> Result<Arc<Identity>, WarehouseError> {
        let base = self.base().await?;
        let template = match &self.org_service_account {
            Some(template) if base.loaded.source != CredentialSource::Emulator => template,
            _ => return Ok(base),
        };
        if let Some((identity, from)) = self.orgs.lock().ok().and_then(|orgs| {
            orgs.get(&target.org)
                .map(|(identity, from)| (identity.clone(), from.clone()))
        }) && Arc::ptr_eq(&from, &base)
        {
            return Ok(identity);
        }
        let email =
            org_service_account(template, &target.org).map_err(WarehouseError::credentials)?;
        let account = OrgAccount::new(
            base.loaded.credentials.clone(),
            &email,
            &self.iam_endpoint,
            self.http.clone(),
        );
        let identity = Arc::new(
            self.identity_of(Loaded {
                credentials: account.into(),
                source: CredentialSource::Impersonated,
                email: Some(email),
                fingerprint: None,
            })
            .await?,
        );
        if let Ok(mut orgs) = self.orgs.lock() {
            orgs.insert(target.org.clone(), (identity.clone(), base));
        }
        Ok(identity)
    }

    /// A client that carries `loaded`, built within the metadata timeout.
    async fn identity_of(&self, loaded: Loaded) -> Result<Identity, WarehouseError> {
        let build = JobService::builder()
            .with_endpoint(self.endpoint.clone())
            .with_universe_domain("googleapis.com")
            .with_credentials(loaded.credentials.clone())
            // Retries are ours (bounded and classified), not the client's.
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .build();
        let jobs = tokio::time::timeout(METADATA_TIMEOUT, build)
            .await
            .map_err(|_| {
                WarehouseError::credentials(format!(
                    "The BigQuery client could not be built within {} s.",
                    METADATA_TIMEOUT.as_secs()
                ))
            })?
            .map_err(|err| {
                WarehouseError::credentials(format!("The BigQuery client cannot be built: {err}."))
            })?;
        Ok(Identity { loaded, jobs })
    }

    /// Drops every identity so the next call builds them again from their
    /// sources: a refused or broken credential never sticks, and an org's
    /// identity fails when the server's own does.
    async fn forget(&self) {
        *self.base.lock().await = None;
        if let Ok(mut orgs) = self.orgs.lock() {
            orgs.clear();
        }
    }

    /// Makes one call with a valid token: credentials that give none are a
    /// `credentials` error (and are built again next time); a 401 gets one
    /// fresh token and one retry.
    pub async fn call<T, F, Fut>(&self, target: &Target, call: F) -> Result<T, WarehouseError>
    where
        F: Fn(JobService) -> Fut,
        Fut: Future<Output = Result<T, google_cloud_gax::error::Error>>,
    {
        let mut refreshed = false;
        loop {
            let identity = self.identity(target).await?;
            if identity.loaded.source != CredentialSource::Emulator {
                let token = tokio::time::timeout(
                    METADATA_TIMEOUT,
                    identity.loaded.credentials.headers(http::Extensions::new()),
                )
                .await;
                let problem = match token {
                    Ok(Ok(_)) => None,
                    Ok(Err(err)) => Some(err.to_string()),
                    Err(_) => Some(format!("no token within {} s", METADATA_TIMEOUT.as_secs())),
                };
                if let Some(problem) = problem {
                    self.forget().await;
                    return Err(self.no_token(&identity.loaded, &problem));
                }
            }
            // The generated client's futures are large: keep them off the stack.
            match Box::pin(call(identity.jobs.clone())).await {
                Err(err) if err.http_status_code() == Some(401) && !refreshed => {
                    tracing::info!("BigQuery refused the token, fetching a fresh one");
                    self.forget().await;
                    refreshed = true;
                }
                Err(err) => {
                    if err.is_authentication() || err.http_status_code() == Some(401) {
                        self.forget().await;
                    }
                    return Err(classify_rpc(&err));
                }
                Ok(value) => return Ok(value),
            }
        }
    }

    /// The error for credentials that gave no token, naming what to fix.
    fn no_token(&self, loaded: &Loaded, problem: &str) -> WarehouseError {
        let message = match loaded.source {
            CredentialSource::MetadataServer => format!(
                "No Google credentials were found: no key file is configured and the metadata server at {} gave no token ({problem}). Set GOOGLE_APPLICATION_CREDENTIALS (or --google-application-credentials) to a service-account key file, or run on Google Cloud with a service account attached.",
                self.credentials.metadata_host
            ),
            source => format!(
                "The server's Google credentials ({}{}) gave no token: {problem}. Check the key file and the account; the next sync tries again.",
                source.as_str(),
                loaded
                    .email
                    .as_deref()
                    .map(|e| format!(", {e}"))
                    .unwrap_or_default()
            ),
        };
        WarehouseError::credentials(message)
    }
}
