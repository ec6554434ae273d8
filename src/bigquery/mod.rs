//! The only code that knows BigQuery.
//!
//! [`Warehouse`] validates a query (a dry run, then one real run) and
//! measures it (one real run), retrying transient failures with jittered
//! exponential backoff. Everything it returns is one of our own types, so
//! the rest of the server never sees the Google crates.

mod classify;
mod client;
pub mod credentials;
pub mod endpoint;
pub mod identity;
mod impersonate;
mod rows;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

pub use classify::{BackoffPolicy, backoff_delay};
pub use client::{USER_AGENT, Warehouse};
pub use credentials::{CredentialSettings, CredentialSource};

/// The BigQuery permissions the server's service account needs on a
/// project: exactly what its requests use. No request names a quota
/// project (`x-goog-user-project`), so `serviceusage.services.use` is not
/// needed; jobs are billed to the project in the URL.
pub const REQUIRED_PERMISSIONS: [&str; 4] = [
    "bigquery.datasets.get",
    "bigquery.jobs.create",
    "bigquery.tables.get",
    "bigquery.tables.getData",
];

/// How the server reaches BigQuery.
#[derive(Debug, Clone)]
pub struct WarehouseConfig {
    /// The REST endpoint every request goes to: Google's, another one
    /// (`BIGQUERY_ENDPOINT`), or an emulator's.
    pub endpoint: String,
    /// Whether `endpoint` is an emulator (anonymous credentials).
    pub emulator_host: Option<String>,
    /// Where credentials come from.
    pub credentials: CredentialSettings,
    /// The IAM Credentials API, for per-org service accounts.
    pub iam_endpoint: String,
    /// Template of each org's service account (`okr-{org}@p.iam.gserviceaccount.com`);
    /// none means every org queries as the server's own account.
    pub org_service_account: Option<String>,
    /// Default cap on bytes billed per job, for connections without their own.
    pub maximum_bytes_billed: i64,
    /// How long one job may run before BigQuery cancels it and we stop waiting.
    pub job_timeout: Duration,
    /// Retries of transient failures.
    pub backoff: BackoffPolicy,
}

/// Google's BigQuery REST endpoint.
pub const GOOGLE_ENDPOINT: &str = "https://bigquery.googleapis.com";

/// Google's IAM Credentials API.
pub const GOOGLE_IAM_ENDPOINT: &str = "https://iamcredentials.googleapis.com";

/// Where a query runs.
#[derive(Debug, Clone)]
pub struct Target {
    /// The slug of the organization whose connection this is.
    pub org: String,
    pub project_id: String,
    /// Other projects the connection's queries may read (set by admins).
    pub readable_projects: Vec<String>,
    pub location: Option<String>,
    /// Per-connection cap; none means the server's default.
    pub maximum_bytes_billed: Option<i64>,
}

impl Target {
    /// Whether a query on this connection may read tables of `project`.
    pub fn may_read(&self, project: &str) -> bool {
        project.eq_ignore_ascii_case(&self.project_id)
            || self
                .readable_projects
                .iter()
                .any(|p| p.eq_ignore_ascii_case(project))
    }
}

/// The named parameters a query may use.
#[derive(Debug, Clone, Copy)]
pub struct QueryParams {
    /// `@period_start` (DATE).
    pub period_start: NaiveDate,
    /// `@period_end` (DATE).
    pub period_end: NaiveDate,
    /// `@as_of` (TIMESTAMP): the moment the value is for.
    pub as_of: DateTime<Utc>,
}

/// A query's job, as the sync log records it.
#[derive(Debug, Clone, Default)]
pub struct JobInfo {
    pub job_id: Option<String>,
    pub bytes_processed: Option<i64>,
    /// How many attempts it took, retries included.
    pub attempts: u32,
}

/// One number read from BigQuery.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub value: f64,
    pub job: JobInfo,
}

/// Why BigQuery did not give us a number.
#[derive(Debug, Clone, PartialEq)]
pub enum WarehouseError {
    /// The dry run says the SQL is not a single SELECT.
    NotSelect { statement_type: String },
    /// The query runs but does not return exactly one non-NULL number.
    Shape { message: String },
    /// Refused before reaching BigQuery: not one SELECT statement.
    Refused { message: String },
    /// The query reaches data this connection may not read.
    NotAllowed { message: String },
    /// BigQuery (or the way to it) failed.
    Service {
        /// BigQuery's reason (`invalidQuery`, `notFound`, `accessDenied`,
        /// `backendError`, …), or ours (`timeout`, `unavailable`).
        reason: String,
        message: String,
        /// Whether trying again later may succeed.
        transient: bool,
        /// Attempts okr-pulse made before giving up.
        attempts: u32,
    },
}

impl WarehouseError {
    /// The GraphQL / stored error code.
    pub fn code(&self) -> &'static str {
        match self {
            WarehouseError::NotSelect { .. } | WarehouseError::Refused { .. } => "QUERY_NOT_SELECT",
            WarehouseError::Shape { .. } => "QUERY_SHAPE",
            WarehouseError::NotAllowed { .. } => "QUERY_NOT_ALLOWED",
            WarehouseError::Service { .. } => "BIGQUERY_ERROR",
        }
    }

    /// A credential problem: not transient, and `message` names what to fix.
    pub fn credentials(message: impl Into<String>) -> WarehouseError {
        WarehouseError::Service {
            reason: "credentials".to_owned(),
            message: message.into(),
            transient: false,
            attempts: 1,
        }
    }

    /// A failure worth trying again later.
    pub fn transient(reason: &str, message: &str) -> WarehouseError {
        WarehouseError::Service {
            reason: reason.to_owned(),
            message: message.to_owned(),
            transient: true,
            attempts: 1,
        }
    }

    /// BigQuery's reason, for `BIGQUERY_ERROR`.
    pub fn reason(&self) -> Option<&str> {
        match self {
            WarehouseError::Service { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            WarehouseError::Service {
                transient: true,
                ..
            }
        )
    }

    /// A message that says what happened and what to change.
    pub fn message(&self) -> String {
        match self {
            WarehouseError::NotSelect { statement_type } => format!(
                "BigQuery reads this SQL as a {statement_type} statement; okr-pulse only runs a single SELECT that returns one number. Remove other statements and any DML or DDL."
            ),
            WarehouseError::Shape { message }
            | WarehouseError::Refused { message }
            | WarehouseError::NotAllowed { message } => message.clone(),
            WarehouseError::Service {
                reason, message, ..
            } => {
                let advice = match reason.as_str() {
                    "invalidQuery" => " Fix the SQL and try again.",
                    "notFound" => {
                        " Check the project, dataset and table names, and the connection's location."
                    }
                    "accessDenied" => {
                        " Grant the server's service account bigquery.datasets.get, bigquery.jobs.create, bigquery.tables.get and bigquery.tables.getData on the project (see bigQuerySetup)."
                    }
                    "bytesBilledLimitExceeded" => {
                        " The query scans more than the connection's maximumBytesBilled; filter on partitions or raise the cap."
                    }
                    "billingTierLimitExceeded" => {
                        " Simplify the query or ask the project owner to raise the billing tier."
                    }
                    "timeout" => {
                        " The query ran past the job timeout; make it cheaper or raise BIGQUERY_JOB_TIMEOUT."
                    }
                    "USER_PROJECT_DENIED" => {
                        " The credentials name a quota project (GOOGLE_CLOUD_QUOTA_PROJECT or the key file's quota_project_id) on which the account lacks serviceusage.services.use: grant it roles/serviceusage.serviceUsageConsumer there, or remove the quota project."
                    }
                    "SERVICE_DISABLED" => " Enable the BigQuery API in the project.",
                    "ACCESS_TOKEN_EXPIRED"
                    | "CREDENTIALS_MISSING"
                    | "ACCESS_TOKEN_TYPE_UNSUPPORTED" => {
                        " Google refused the server's credentials: check the key file or the account it names (bigQuerySetup shows both)."
                    }
                    "unavailable" => {
                        " BigQuery could not be reached; the next sync will try again."
                    }
                    _ if self.is_transient() => " This is temporary; the next sync will try again.",
                    _ => "",
                };
                let stop = if message.ends_with(['.', '!', '?']) || advice.is_empty() {
                    ""
                } else {
                    "."
                };
                format!("BigQuery: {message}{stop}{advice}")
            }
        }
    }
}

/// The BigQuery types that hold one number.
pub fn is_numeric_type(field_type: &str) -> bool {
    matches!(
        field_type.to_ascii_uppercase().as_str(),
        "INTEGER"
            | "INT64"
            | "FLOAT"
            | "FLOAT64"
            | "NUMERIC"
            | "BIGNUMERIC"
            | "DECIMAL"
            | "BIGDECIMAL"
    )
}

/// Which of our named parameters the SQL uses.
pub fn used_parameters(sql: &str) -> Vec<&'static str> {
    let lower = sql.to_ascii_lowercase();
    ["period_start", "period_end", "as_of"]
        .into_iter()
        .filter(|name| {
            let needle = format!("@{name}");
            lower.match_indices(&needle).any(|(at, _)| {
                let before_ok = at == 0 || lower.as_bytes()[at - 1] != b'@';
                let after = lower.as_bytes().get(at + needle.len());
                let after_ok = !matches!(after, Some(c) if c.is_ascii_alphanumeric() || *c == b'_');
                before_ok && after_ok
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_parameters_the_sql_names_are_bound() {
        assert_eq!(
            used_parameters("SELECT COUNT(*) FROM t WHERE d BETWEEN @period_start AND @Period_End"),
            ["period_start", "period_end"]
        );
        assert_eq!(used_parameters("SELECT @as_of"), ["as_of"]);
        assert!(used_parameters("SELECT @as_often, @@period_start").is_empty());
        assert!(used_parameters("SELECT 1").is_empty());
    }

    #[test]
    fn integer_float_and_decimal_columns_are_numeric() {
        for t in [
            "INTEGER",
            "INT64",
            "FLOAT",
            "FLOAT64",
            "NUMERIC",
            "BIGNUMERIC",
        ] {
            assert!(is_numeric_type(t), "{t}");
        }
        for t in ["STRING", "DATE", "BOOL", "TIMESTAMP", "RECORD"] {
            assert!(!is_numeric_type(t), "{t}");
        }
    }

    #[test]
    fn access_denied_tells_what_to_grant() {
        let err = WarehouseError::Service {
            reason: "accessDenied".into(),
            message: "Access Denied: Project p".into(),
            transient: false,
            attempts: 1,
        };
        assert_eq!(err.code(), "BIGQUERY_ERROR");
        assert!(err.message().contains("bigquery.jobs.create"));
    }
}
