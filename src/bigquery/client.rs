//! The BigQuery client: one per project and location, reused for every job.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use google_cloud_bigquery::client::BigQuery;
use google_cloud_bigquery_v2::model::{QueryParameter, QueryParameterType, QueryParameterValue};
use tokio::sync::OnceCell;

use super::{
    JobInfo, Measurement, QueryParams, Target, WarehouseConfig, WarehouseError,
    classify::{classify_query_error, retry},
    identity, is_numeric_type, used_parameters,
};

/// Most slack on top of the job timeout before we stop waiting for an answer.
const MAX_ANSWER_SLACK: Duration = Duration::from_secs(5);

/// Talks to BigQuery (or its emulator) for the whole server.
pub struct Warehouse {
    config: WarehouseConfig,
    /// Built clients by (project, location): building one resolves
    /// credentials and a connection pool, so it is done once.
    clients: Mutex<HashMap<(String, Option<String>), BigQuery>>,
    /// The service-account email, looked up once.
    identity: OnceCell<Option<String>>,
}

/// What a dry run found out.
struct Checked {
    statement_type: String,
    columns: Vec<(String, String)>,
}

impl Warehouse {
    /// A warehouse for this configuration; clients are built on first use.
    pub fn new(config: WarehouseConfig) -> Arc<Warehouse> {
        Arc::new(Warehouse {
            config,
            clients: Mutex::new(HashMap::new()),
            identity: OnceCell::new(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &WarehouseConfig {
        &self.config
    }

    /// The email of the service account the server queries as, if it has one.
    pub async fn service_account_email(&self) -> Option<String> {
        if self.config.emulator_host.is_some() {
            return None;
        }
        self.identity
            .get_or_init(|| identity::service_account_email(&self.config.identity))
            .await
            .clone()
    }

    /// Checks that `sql` is a single SELECT of one numeric column (dry run),
    /// then runs it once and returns its one non-NULL value. DML, DDL and
    /// scripts are refused by the dry run and never executed.
    pub async fn validate(
        &self,
        target: &Target,
        sql: &str,
        params: QueryParams,
        labels: &[(&str, &str)],
    ) -> Result<Measurement, WarehouseError> {
        let checked = self
            .with_retries(|| self.dry_run_once(target, sql, params, labels))
            .await?;
        if checked.statement_type != "SELECT" {
            return Err(WarehouseError::NotSelect {
                statement_type: if checked.statement_type.is_empty() {
                    "non-SELECT".to_owned()
                } else {
                    checked.statement_type
                },
            });
        }
        match checked.columns.as_slice() {
            [(_, field_type)] if is_numeric_type(field_type) => {}
            [(name, field_type)] => {
                return Err(WarehouseError::Shape {
                    message: format!(
                        "The query's column '{name}' is {field_type}; it must be a number (INT64, FLOAT64, NUMERIC or BIGNUMERIC). CAST it or aggregate it to one."
                    ),
                });
            }
            columns => {
                let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
                return Err(WarehouseError::Shape {
                    message: format!(
                        "The query returns {} columns ({}); it must return exactly one numeric column.",
                        columns.len(),
                        names.join(", ")
                    ),
                });
            }
        }
        self.measure(target, sql, params, labels).await
    }

    /// Runs `sql` and returns its one non-NULL value.
    pub async fn measure(
        &self,
        target: &Target,
        sql: &str,
        params: QueryParams,
        labels: &[(&str, &str)],
    ) -> Result<Measurement, WarehouseError> {
        let mut attempts = 0;
        let result = self
            .with_retries(|| {
                attempts += 1;
                self.run_once(target, sql, params, labels)
            })
            .await;
        result.map(|mut m| {
            m.job.attempts = attempts;
            m
        })
    }

    /// Dry-runs `SELECT 1` in the project: proves the server may create jobs there.
    pub async fn test(&self, target: &Target) -> Result<(), WarehouseError> {
        let params = QueryParams {
            period_start: chrono::NaiveDate::MIN,
            period_end: chrono::NaiveDate::MIN,
            as_of: chrono::Utc::now(),
        };
        self.with_retries(|| self.dry_run_once(target, "SELECT 1", params, &[]))
            .await
            .map(|_| ())
    }

    /// Runs `attempt` under this warehouse's retry policy.
    async fn with_retries<T, F, Fut>(&self, attempt: F) -> Result<T, WarehouseError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, WarehouseError>>,
    {
        retry(&self.config.backoff, attempt).await
    }

    async fn client(&self, target: &Target) -> Result<BigQuery, WarehouseError> {
        let key = (target.project_id.clone(), target.location.clone());
        if let Some(client) = self.clients.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(client);
        }
        let mut builder = BigQuery::builder()
            .with_project_id(target.project_id.clone())
            // Retries are ours (bounded and classified), not the client's.
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry);
        if let Some(host) = &self.config.emulator_host {
            builder = builder
                .with_endpoint(emulator_endpoint(host))
                .with_credentials(
                    google_cloud_auth::credentials::anonymous::Builder::new().build(),
                );
        }
        let client = builder
            .build()
            .await
            .map_err(|err| WarehouseError::Service {
                reason: "unavailable".to_owned(),
                message: format!("could not set up the BigQuery client: {err}"),
                transient: false,
                client_retried: false,
                attempts: 0,
            })?;
        if let Ok(mut clients) = self.clients.lock() {
            clients.insert(key, client.clone());
        }
        Ok(client)
    }

    fn query(
        &self,
        client: &BigQuery,
        target: &Target,
        sql: &str,
        params: QueryParams,
        labels: &[(&str, &str)],
    ) -> google_cloud_bigquery::builder::bigquery::Query {
        let mut query = client
            .query(sql)
            .with_project_id(target.project_id.clone())
            .set_use_legacy_sql(false)
            .set_maximum_bytes_billed(
                target
                    .maximum_bytes_billed
                    .unwrap_or(self.config.maximum_bytes_billed),
            )
            .set_job_timeout_ms(self.config.job_timeout.as_millis() as i64)
            .set_timeout_ms(self.config.job_timeout.as_millis().min(u32::MAX as u128) as u32)
            .set_labels(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if let Some(location) = &target.location {
            query = query.set_location(location.clone());
        }
        let bound = query_parameters(sql, params);
        if !bound.is_empty() {
            query = query
                .set_parameter_mode("NAMED")
                .set_query_parameters(bound);
        }
        query
    }

    async fn dry_run_once(
        &self,
        target: &Target,
        sql: &str,
        params: QueryParams,
        labels: &[(&str, &str)],
    ) -> Result<Checked, WarehouseError> {
        let client = self.client(target).await?;
        let request = self
            .query(&client, target, sql, params, labels)
            .set_dry_run(true)
            .send();
        let handle = self.bounded(request).await?.map_err(classify_query_error)?;
        let metadata = handle.metadata();
        Ok(Checked {
            statement_type: metadata.statement_type.to_ascii_uppercase(),
            columns: metadata
                .schema
                .as_ref()
                .map(|s| {
                    s.fields
                        .iter()
                        .map(|f| (f.name.clone(), f.r#type.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    async fn run_once(
        &self,
        target: &Target,
        sql: &str,
        params: QueryParams,
        labels: &[(&str, &str)],
    ) -> Result<Measurement, WarehouseError> {
        let client = self.client(target).await?;
        let query = self.query(&client, target, sql, params, labels);
        let work = async move {
            let complete = query.until_done().await.map_err(classify_query_error)?;
            let metadata = complete.metadata().clone();
            let job = JobInfo {
                job_id: metadata
                    .job_reference
                    .as_ref()
                    .map(|r| r.job_id.clone())
                    .filter(|id| !id.is_empty()),
                bytes_processed: metadata.total_bytes_processed,
                attempts: 1,
            };
            let mut rows = complete.read();
            let mut values = Vec::new();
            while let Some(row) = rows.next().await {
                let row = row.map_err(|err| WarehouseError::Service {
                    reason: "backendError".to_owned(),
                    message: format!("reading the result failed: {err}"),
                    transient: true,
                    client_retried: false,
                    attempts: 1,
                })?;
                if values.len() >= 2 {
                    break;
                }
                values.push(row.get::<Option<f64>>(0usize).map_err(|err| {
                    WarehouseError::Shape {
                        message: format!("The query's value is not a number: {err}."),
                    }
                })?);
            }
            match values.as_slice() {
                [Some(value)] if value.is_finite() => Ok(Measurement { value: *value, job }),
                [Some(_)] => Err(WarehouseError::Shape {
                    message: "The query returned a value that is not a finite number.".to_owned(),
                }),
                [None] => Err(WarehouseError::Shape {
                    message: "The query returned NULL; wrap the value in COALESCE(…, 0) or make sure rows match.".to_owned(),
                }),
                [] => Err(WarehouseError::Shape {
                    message: "The query returned no rows; it must return exactly one row (use an aggregate such as COUNT or SUM).".to_owned(),
                }),
                _ => Err(WarehouseError::Shape {
                    message: "The query returned more than one row; it must return exactly one (aggregate, or add LIMIT 1).".to_owned(),
                }),
            }
        };
        self.bounded(work).await?
    }

    /// Waits for an answer for at most the job timeout plus some slack (BigQuery
    /// cancels the job itself at the job timeout).
    async fn bounded<T>(&self, work: impl Future<Output = T>) -> Result<T, WarehouseError> {
        let limit = self.config.job_timeout + self.config.job_timeout.min(MAX_ANSWER_SLACK);
        tokio::time::timeout(limit, work)
            .await
            .map_err(|_| WarehouseError::Service {
                reason: "timeout".to_owned(),
                message: format!("no answer within {} ms", limit.as_millis()),
                transient: true,
                client_retried: false,
                attempts: 1,
            })
    }
}

/// `host:port` or a full URL, as `BIGQUERY_EMULATOR_HOST` allows either.
fn emulator_endpoint(host: &str) -> String {
    if host.starts_with("http://") || host.starts_with("https://") {
        host.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", host.trim_end_matches('/'))
    }
}

/// The named parameters the SQL uses, typed as BigQuery expects.
fn query_parameters(sql: &str, params: QueryParams) -> Vec<QueryParameter> {
    used_parameters(sql)
        .into_iter()
        .map(|name| {
            let (kind, value) = match name {
                "period_start" => ("DATE", params.period_start.to_string()),
                "period_end" => ("DATE", params.period_end.to_string()),
                _ => (
                    "TIMESTAMP",
                    params
                        .as_of
                        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
                ),
            };
            QueryParameter::new()
                .set_name(name)
                .set_parameter_type(QueryParameterType::new().set_type(kind))
                .set_parameter_value(QueryParameterValue::new().set_value(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emulator_host_may_be_given_with_or_without_a_scheme() {
        assert_eq!(emulator_endpoint("127.0.0.1:9050"), "http://127.0.0.1:9050");
        assert_eq!(
            emulator_endpoint("http://127.0.0.1:9050/"),
            "http://127.0.0.1:9050"
        );
    }
}
