//! Where the server's Google credentials come from, and what it tells
//! people about them.
//!
//! One set of credentials serves every BigQuery request, built from the
//! first source that is configured: the key file named by
//! `--google-application-credentials` (or `GOOGLE_APPLICATION_CREDENTIALS`:
//! the same setting), else gcloud's application-default file, else the
//! metadata server (`--gce-metadata-host`). The configured values are the
//! ones used: nothing here reads the environment behind the settings' back.
//!
//! A credential problem is never cached for good: a file that cannot be
//! read, or credentials that Google refused, are built again on the next
//! use, so fixing the file or the grant heals the server without a restart.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use google_cloud_auth::credentials::{
    Credentials, anonymous, external_account, impersonated, mds, service_account, user_account,
};
use serde_json::Value;

/// How long the metadata server may take to answer; it answers at once
/// where it exists.
pub const METADATA_TIMEOUT: Duration = Duration::from_secs(5);

/// Which kind of credentials the server queries with (`bigQuerySetup.credentialSource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// A service-account key file.
    ServiceAccountKey,
    /// A person's credentials from `gcloud auth application-default login`.
    AuthorizedUser,
    /// Workload Identity Federation (`external_account`).
    ExternalAccount,
    /// A service account impersonated by other credentials.
    Impersonated,
    /// The metadata server of Google Cloud (GCE, GKE, Cloud Run …).
    MetadataServer,
    /// A local BigQuery emulator, with anonymous credentials.
    Emulator,
    /// Nothing was found.
    None,
}

impl CredentialSource {
    /// The name shown in the API and the logs.
    pub fn as_str(self) -> &'static str {
        match self {
            CredentialSource::ServiceAccountKey => "SERVICE_ACCOUNT_KEY",
            CredentialSource::AuthorizedUser => "AUTHORIZED_USER",
            CredentialSource::ExternalAccount => "EXTERNAL_ACCOUNT",
            CredentialSource::Impersonated => "IMPERSONATED",
            CredentialSource::MetadataServer => "METADATA_SERVER",
            CredentialSource::Emulator => "EMULATOR",
            CredentialSource::None => "NONE",
        }
    }
}

/// The configured sources of credentials.
#[derive(Debug, Clone, Default)]
pub struct CredentialSettings {
    /// A key file (`GOOGLE_APPLICATION_CREDENTIALS`): a service-account key,
    /// gcloud user credentials, an external account or an impersonated
    /// service account.
    pub key_file: Option<PathBuf>,
    /// gcloud's application-default credentials file, used when no key file
    /// is configured and it exists.
    pub gcloud_file: Option<PathBuf>,
    /// The metadata server's host (`GCE_METADATA_HOST`).
    pub metadata_host: String,
    /// Whether every request goes to an emulator with anonymous credentials.
    pub emulator: bool,
}

/// Built credentials with what is known about them.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub credentials: Credentials,
    pub source: CredentialSource,
    /// The account's email, when the source names one.
    pub email: Option<String>,
    /// The key file's change time and length when they were read.
    pub fingerprint: Option<(std::time::SystemTime, u64)>,
}

/// Why no credentials could be built: a sentence that names what to fix.
#[derive(Debug, Clone, PartialEq)]
pub struct CredentialProblem(pub String);

impl CredentialSettings {
    /// gcloud's application-default file in `folder` (default
    /// `~/.config/gcloud`), if it exists.
    pub fn find_gcloud_file(folder: Option<&Path>) -> Option<PathBuf> {
        let folder = match folder {
            Some(folder) => folder.to_path_buf(),
            None => PathBuf::from(std::env::var_os("HOME")?).join(".config/gcloud"),
        };
        let file = folder.join("application_default_credentials.json");
        file.is_file().then_some(file)
    }

    /// The metadata server's base URL.
    pub fn metadata_url(&self) -> String {
        let host = self.metadata_host.trim_end_matches('/');
        if host.starts_with("http://") || host.starts_with("https://") {
            host.to_owned()
        } else {
            format!("http://{host}")
        }
    }

    /// The file credentials come from, with how the settings name it.
    fn file(&self) -> Option<(&Path, &'static str)> {
        if let Some(path) = &self.key_file {
            return Some((path, "GOOGLE_APPLICATION_CREDENTIALS"));
        }
        self.gcloud_file
            .as_deref()
            .map(|path| (path, "gcloud's application-default credentials"))
    }

    /// The current fingerprint of the credentials file, if one is used.
    pub fn file_fingerprint(&self) -> Option<(std::time::SystemTime, u64)> {
        if self.emulator {
            return None;
        }
        self.file().and_then(|(path, _)| fingerprint(path))
    }

    /// Where credentials come from and the account named, read from the
    /// settings and the file alone: nothing is built and nothing asked.
    pub fn source(&self) -> Result<(CredentialSource, Option<String>), CredentialProblem> {
        if self.emulator {
            return Ok((CredentialSource::Emulator, None));
        }
        match self.file() {
            Some((path, setting)) => kind_of(&read_json(path, setting)?, path, setting),
            None => Ok((CredentialSource::MetadataServer, None)),
        }
    }

    /// Builds the credentials from the first configured source. The
    /// metadata server is only asked when a request needs a token.
    pub fn load(&self) -> Result<Loaded, CredentialProblem> {
        if self.emulator {
            return Ok(Loaded {
                credentials: anonymous::Builder::new().build(),
                source: CredentialSource::Emulator,
                email: None,
                fingerprint: None,
            });
        }
        if let Some((path, setting)) = self.file() {
            return from_file(path, setting);
        }
        let credentials = mds::Builder::default()
            .with_endpoint(self.metadata_url())
            // Known, so that building a client asks the metadata server nothing.
            .with_universe_domain("googleapis.com")
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .build()
            .map_err(|err| {
                CredentialProblem(format!("The metadata server cannot be used: {err}."))
            })?;
        Ok(Loaded {
            credentials,
            source: CredentialSource::MetadataServer,
            email: None,
            fingerprint: None,
        })
    }

    /// The metadata server's account email, or none when it does not answer
    /// within [`METADATA_TIMEOUT`].
    pub async fn metadata_email(&self, http: &reqwest::Client) -> Option<String> {
        let url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/email",
            self.metadata_url()
        );
        let response = http
            .get(url)
            .header("Metadata-Flavor", "Google")
            .timeout(METADATA_TIMEOUT)
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            return None;
        }
        let email = response.text().await.ok()?.trim().to_owned();
        (!email.is_empty() && email.len() <= 320).then_some(email)
    }
}

/// A key file's text as JSON, or the problem naming the file and the setting.
fn read_json(path: &Path, setting: &str) -> Result<Value, CredentialProblem> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|err| {
        CredentialProblem(format!(
            "The credentials file {shown} ({setting}) cannot be read: {err}. Fix the path or the file's permissions."
        ))
    })?;
    // The parser's message could quote the file, which holds a private key.
    serde_json::from_str(&text).map_err(|_| {
        CredentialProblem(format!(
            "The credentials file {shown} ({setting}) is not valid JSON. Download the key again."
        ))
    })
}

/// The kind of a credentials file and the account it names.
fn kind_of(
    json: &Value,
    path: &Path,
    setting: &str,
) -> Result<(CredentialSource, Option<String>), CredentialProblem> {
    match json["type"].as_str().unwrap_or_default() {
        "service_account" => Ok((
            CredentialSource::ServiceAccountKey,
            json["client_email"].as_str().map(str::to_owned),
        )),
        "authorized_user" => Ok((CredentialSource::AuthorizedUser, None)),
        "external_account" => Ok((CredentialSource::ExternalAccount, impersonated_email(json))),
        "impersonated_service_account" => {
            Ok((CredentialSource::Impersonated, impersonated_email(json)))
        }
        other => Err(CredentialProblem(format!(
            "The credentials file {} ({setting}) has type '{}'; okr-pulse reads service_account, authorized_user, external_account and impersonated_service_account files.",
            path.display(),
            other.chars().take(40).collect::<String>()
        ))),
    }
}

/// Credentials from a key file of any of the types Google writes. A quota
/// project named in the file is not used: requests carry no
/// `x-goog-user-project`, so the permissions `bigQuerySetup` lists are all
/// a project needs.
fn from_file(path: &Path, setting: &str) -> Result<Loaded, CredentialProblem> {
    let mut json = read_json(path, setting)?;
    let (source, email) = kind_of(&json, path, setting)?;
    if let Some(fields) = json.as_object_mut() {
        fields.remove("quota_project_id");
    }
    let malformed = |err: google_cloud_auth::build_errors::Error| {
        // Only a missing field is named: other parse messages may quote
        // the file's values, and the file holds a secret.
        let why = err
            .to_string()
            .split("missing field")
            .nth(1)
            .map(|rest| {
                format!(
                    "missing field{}",
                    rest.split(',').next().unwrap_or_default()
                )
            })
            .unwrap_or_else(|| "its fields are not what Google writes".to_owned());
        CredentialProblem(format!(
            "The credentials file {} ({setting}) of type {} is malformed ({why}). Download the key again.",
            path.display(),
            source.as_str()
        ))
    };
    let credentials = match source {
        CredentialSource::ServiceAccountKey => service_account::Builder::new(json).build(),
        CredentialSource::AuthorizedUser => user_account::Builder::new(json).build(),
        CredentialSource::ExternalAccount => external_account::Builder::new(json).build(),
        _ => impersonated::Builder::new(json).build(),
    }
    .map_err(malformed)?;
    Ok(Loaded {
        credentials,
        source,
        email,
        fingerprint: fingerprint(path),
    })
}

/// When a file last changed and how long it is: a new key file is picked
/// up without a restart.
fn fingerprint(path: &Path) -> Option<(std::time::SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// The service account named by a `service_account_impersonation_url`.
fn impersonated_email(json: &Value) -> Option<String> {
    json["service_account_impersonation_url"]
        .as_str()
        .and_then(|url| url.rsplit('/').next())
        .and_then(|tail| tail.split(':').next())
        .filter(|email| email.contains('@'))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings_with_file(path: PathBuf) -> CredentialSettings {
        CredentialSettings {
            key_file: Some(path),
            metadata_host: "127.0.0.1:9".to_owned(),
            ..CredentialSettings::default()
        }
    }

    #[test]
    fn a_missing_key_file_is_a_problem_that_names_the_file_and_the_setting() {
        let problem = settings_with_file("/nonexistent/key.json".into())
            .load()
            .unwrap_err();
        assert!(problem.0.contains("/nonexistent/key.json"), "{problem:?}");
        assert!(problem.0.contains("GOOGLE_APPLICATION_CREDENTIALS"));
    }

    #[test]
    fn a_key_file_that_is_not_json_or_of_an_unknown_type_is_refused_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, "not json").unwrap();
        let problem = settings_with_file(path.clone()).load().unwrap_err();
        assert!(problem.0.contains("not valid JSON"), "{problem:?}");
        std::fs::write(&path, r#"{"type":"weird"}"#).unwrap();
        let problem = settings_with_file(path).load().unwrap_err();
        assert!(problem.0.contains("'weird'"), "{problem:?}");
    }

    #[test]
    fn the_impersonated_account_is_read_from_its_url() {
        let json = serde_json::json!({
            "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/okr@p.iam.gserviceaccount.com:generateAccessToken"
        });
        assert_eq!(
            impersonated_email(&json).as_deref(),
            Some("okr@p.iam.gserviceaccount.com")
        );
    }

    #[test]
    fn the_emulator_needs_no_credentials() {
        let settings = CredentialSettings {
            emulator: true,
            key_file: Some("/nonexistent".into()),
            ..CredentialSettings::default()
        };
        assert_eq!(settings.load().unwrap().source, CredentialSource::Emulator);
    }
}
