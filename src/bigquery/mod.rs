//! The only code that knows BigQuery.
//!
//! [`Warehouse`] validates a query (a dry run, then one real run) and
//! measures it (one real run), retrying transient failures with jittered
//! exponential backoff. Everything it returns is one of our own types, so
//! the rest of the server never sees the Google crates.

mod classify;
mod client;
mod identity;

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

pub use classify::{BackoffPolicy, backoff_delay};
pub use client::Warehouse;

/// The BigQuery permissions the server's service account needs on a project.
pub const REQUIRED_PERMISSIONS: [&str; 4] = [
    "bigquery.datasets.get",
    "bigquery.jobs.create",
    "bigquery.tables.get",
    "bigquery.tables.getData",
];

/// How the server reaches BigQuery.
#[derive(Debug, Clone)]
pub struct WarehouseConfig {
    /// A local emulator (`http://127.0.0.1:9050`); every client then uses
    /// anonymous credentials. None means real BigQuery with Application
    /// Default Credentials.
    pub emulator_host: Option<String>,
    /// Default cap on bytes billed per job, for connections without their own.
    pub maximum_bytes_billed: i64,
    /// How long one job may run before BigQuery cancels it and we stop waiting.
    pub job_timeout: Duration,
    /// Retries of transient failures.
    pub backoff: BackoffPolicy,
    /// Where the server's service-account email is looked up.
    pub identity: IdentitySource,
}

/// Where to find the email of the service account the server queries as.
#[derive(Debug, Clone, Default)]
pub struct IdentitySource {
    /// A service-account key file (`GOOGLE_APPLICATION_CREDENTIALS`).
    pub key_file: Option<std::path::PathBuf>,
    /// The metadata server's host (`GCE_METADATA_HOST`).
    pub metadata_host: String,
}

/// Where a query runs.
#[derive(Debug, Clone)]
pub struct Target {
    pub project_id: String,
    pub location: Option<String>,
    /// Per-connection cap; none means the server's default.
    pub maximum_bytes_billed: Option<i64>,
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
    /// BigQuery (or the way to it) failed.
    Service {
        /// BigQuery's reason (`invalidQuery`, `notFound`, `accessDenied`,
        /// `backendError`, …), or ours (`timeout`, `unavailable`).
        reason: String,
        message: String,
        /// Whether trying again later may succeed.
        transient: bool,
        /// Whether Google's client library already retried it (it does so
        /// itself for `backendError`, `rateLimitExceeded` and
        /// `internalError`), so that retrying again would only pile up requests.
        client_retried: bool,
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
            WarehouseError::Service { .. } => "BIGQUERY_ERROR",
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
            WarehouseError::Shape { message } | WarehouseError::Refused { message } => {
                message.clone()
            }
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
            client_retried: false,
            attempts: 1,
        };
        assert_eq!(err.code(), "BIGQUERY_ERROR");
        assert!(err.message().contains("bigquery.jobs.create"));
    }
}
