//! The BigQuery client: Google's generated `JobService` client over REST,
//! with one set of credentials for the whole server (or one per
//! organization), our own polling of long queries and our own retries.

use std::{sync::Arc, time::Duration};

use google_cloud_bigquery_v2::model::{
    GetQueryResultsRequest, InsertJobRequest, Job, JobConfiguration, JobConfigurationQuery,
    JobReference, PostQueryRequest, QueryParameter, QueryParameterType, QueryParameterValue,
    QueryRequest,
};
use google_cloud_gax::options::RequestOptionsBuilder;
use tokio::time::Instant;

use super::{
    JobInfo, Measurement, QueryParams, Target, WarehouseConfig, WarehouseError,
    classify::{classify_job_errors, retry},
    credentials::METADATA_TIMEOUT,
    identity::{Description, Identities},
    is_numeric_type,
    rows::{Reply, first_values},
    used_parameters,
};

/// Most slack on top of the job timeout before we stop waiting for an answer.
const MAX_ANSWER_SLACK: Duration = Duration::from_secs(5);

/// How much longer than the retry budget a connection test may take.
const TEST_SLACK: Duration = Duration::from_secs(5);

/// Longest a connection test may take, whatever the retry budget.
const TEST_LIMIT: Duration = Duration::from_secs(25);

/// The `User-Agent` of every request to Google.
pub const USER_AGENT: &str = concat!("okr-pulse/", env!("CARGO_PKG_VERSION"));

/// How long one `getQueryResults` call may wait on BigQuery's side for the
/// job to finish before it answers "not yet".
const POLL_WAIT: Duration = Duration::from_secs(10);

/// Rows read per reply: two are enough to tell one row from several.
const ROWS_READ: u32 = 2;

/// Talks to BigQuery (or its emulator) for the whole server.
pub struct Warehouse {
    config: WarehouseConfig,
    /// The identities requests carry.
    identities: Identities,
}

/// What a dry run found out.
struct Checked {
    statement_type: String,
    columns: Vec<(String, String)>,
    /// Each table or routine the query reads outside the job's project:
    /// (project, name).
    referenced_projects: Vec<(String, String)>,
}

impl Warehouse {
    /// A warehouse for this configuration; clients are built on first use.
    pub fn new(config: WarehouseConfig) -> Arc<Warehouse> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(METADATA_TIMEOUT)
            .build()
            .unwrap_or_default();
        let identities = Identities::new(
            config.credentials.clone(),
            config.endpoint.clone(),
            config.iam_endpoint.clone(),
            config.org_service_account.clone(),
            http,
        );
        Arc::new(Warehouse { config, identities })
    }

    /// The configuration in force.
    pub fn config(&self) -> &WarehouseConfig {
        &self.config
    }

    /// Where the server's credentials come from and the account's email,
    /// for the start-up log line and `bigQuerySetup`. With per-org accounts
    /// and `org` given, the email is that org's account.
    pub async fn describe(&self, org: Option<&str>) -> Description {
        self.identities.describe(org).await
    }

    /// Checks that `sql` is a single SELECT of one numeric column that reads
    /// only tables the connection may read (dry run), then runs it once and
    /// returns its one non-NULL value. DML, DDL and scripts are refused by
    /// the dry run and never executed.
    pub async fn validate(
        &self,
        target: &Target,
        sql: &str,
        params: QueryParams,
        labels: &[(&str, &str)],
    ) -> Result<Measurement, WarehouseError> {
        let checked = self
            .with_retries(|| Box::pin(self.dry_run_once(target, sql, params, labels)))
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
        if let Some((project, table)) = checked
            .referenced_projects
            .iter()
            .find(|(project, _)| !target.may_read(project))
        {
            return Err(WarehouseError::NotAllowed {
                message: format!(
                    "The query reads {table} in project '{project}', which this connection may not read: a connection reads its own project ('{}') and the projects an admin lists in its readableProjects.",
                    target.project_id
                ),
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
                Box::pin(self.run_once(target, sql, params, labels))
            })
            .await;
        result.map(|mut m| {
            m.job.attempts = attempts;
            m
        })
    }

    /// Dry-runs `SELECT 1` in the project: proves the server may create
    /// jobs there. Answers within the retry budget plus 5 s, whatever
    /// Google does, since a person is waiting.
    pub async fn test(&self, target: &Target) -> Result<(), WarehouseError> {
        let params = QueryParams {
            period_start: chrono::NaiveDate::MIN,
            period_end: chrono::NaiveDate::MIN,
            as_of: chrono::Utc::now(),
        };
        // Within the retry budget plus 5 s, and within the default HTTP
        // request timeout, so the outcome is recorded and seen.
        let limit = (self.config.backoff.max_elapsed + TEST_SLACK).min(TEST_LIMIT);
        let attempts =
            self.with_retries(|| Box::pin(self.dry_run_once(target, "SELECT 1", params, &[])));
        match tokio::time::timeout(limit, attempts).await {
            Ok(outcome) => outcome.map(|_| ()),
            Err(_) => Err(WarehouseError::transient(
                "timeout",
                &format!("no answer within {} s", limit.as_secs()),
            )),
        }
    }

    /// Runs `attempt` under this warehouse's retry policy.
    async fn with_retries<T, F, Fut>(&self, attempt: F) -> Result<T, WarehouseError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, WarehouseError>>,
    {
        retry(&self.config.backoff, attempt).await
    }

    fn bytes_cap(&self, target: &Target) -> i64 {
        target
            .maximum_bytes_billed
            .unwrap_or(self.config.maximum_bytes_billed)
    }

    fn job_timeout_ms(&self) -> i64 {
        self.config.job_timeout.as_millis().min(i64::MAX as u128) as i64
    }

    async fn dry_run_once(
        &self,
        target: &Target,
        sql: &str,
        params: QueryParams,
        labels: &[(&str, &str)],
    ) -> Result<Checked, WarehouseError> {
        let bound = query_parameters(sql, params);
        let query = JobConfigurationQuery::new()
            .set_query(sql)
            .set_use_legacy_sql(false)
            .set_maximum_bytes_billed(self.bytes_cap(target))
            .set_parameter_mode(if bound.is_empty() { "" } else { "NAMED" })
            .set_query_parameters(bound);
        let mut reference = JobReference::new()
            .set_project_id(target.project_id.clone())
            .set_job_id(format!("okr_pulse_dry_{}", uuid::Uuid::now_v7().simple()));
        if let Some(location) = &target.location {
            reference = reference.set_location(location.clone());
        }
        let job = Job::new().set_job_reference(reference).set_configuration(
            JobConfiguration::new()
                .set_query(query)
                .set_dry_run(true)
                .set_job_timeout_ms(self.job_timeout_ms())
                .set_labels(labels.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
        );
        let request = InsertJobRequest::new()
            .set_project_id(target.project_id.clone())
            .set_job(job);
        let job = self
            .bounded(Box::pin(self.identities.call(target, |jobs| {
                jobs.insert_job()
                    .with_request(request.clone())
                    .with_user_agent(USER_AGENT)
                    .send()
            })))
            .await??;
        if let Some(status) = &job.status {
            if let Some(error) = &status.error_result {
                return Err(classify_job_errors(std::slice::from_ref(error)));
            }
            if !status.errors.is_empty() {
                return Err(classify_job_errors(&status.errors));
            }
        }
        let stats = job.statistics.as_ref().and_then(|s| s.query.as_ref());
        Ok(Checked {
            statement_type: stats
                .map(|q| q.statement_type.to_ascii_uppercase())
                .unwrap_or_default(),
            columns: stats
                .and_then(|q| q.schema.as_ref())
                .map(|s| {
                    s.fields
                        .iter()
                        .map(|f| (f.name.clone(), f.r#type.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            referenced_projects: stats
                .map(|q| {
                    let project = |p: &str| {
                        if p.is_empty() {
                            target.project_id.clone()
                        } else {
                            p.to_owned()
                        }
                    };
                    let tables = q.referenced_tables.iter().map(|t| {
                        let p = project(&t.project_id);
                        let name = format!("`{p}.{}.{}`", t.dataset_id, t.table_id);
                        (p, name)
                    });
                    let routines = q.referenced_routines.iter().map(|r| {
                        let p = project(&r.project_id);
                        let name = format!("routine `{p}.{}.{}`", r.dataset_id, r.routine_id);
                        (p, name)
                    });
                    tables.chain(routines).collect()
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
        let bound = query_parameters(sql, params);
        let mut request = QueryRequest::new()
            .set_query(sql)
            .set_use_legacy_sql(false)
            .set_maximum_bytes_billed(self.bytes_cap(target))
            .set_job_timeout_ms(self.job_timeout_ms())
            .set_timeout_ms(POLL_WAIT.as_millis() as u32)
            .set_max_results(ROWS_READ)
            .set_request_id(uuid::Uuid::now_v7().simple().to_string())
            .set_labels(labels.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        if !bound.is_empty() {
            request = request
                .set_parameter_mode("NAMED")
                .set_query_parameters(bound);
        }
        if let Some(location) = &target.location {
            request = request.set_location(location.clone());
        }
        let request = PostQueryRequest::new()
            .set_project_id(target.project_id.clone())
            .set_query_request(request);
        let work = async {
            let first = self
                .identities
                .call(target, |jobs| {
                    jobs.query()
                        .with_request(request.clone())
                        .with_user_agent(USER_AGENT)
                        .send()
                })
                .await?;
            if !first.errors.is_empty() {
                return Err(classify_job_errors(&first.errors));
            }
            let mut reply = Reply::from(first);
            self.finish(target, &mut reply).await?;
            let job = JobInfo {
                job_id: reply
                    .job
                    .as_ref()
                    .map(|j| j.job_id.clone())
                    .filter(|id| !id.is_empty())
                    .or_else(|| reply.query_id.clone()),
                bytes_processed: reply.bytes_processed,
                attempts: 1,
            };
            let value = first_values(&reply.rows)?;
            Ok(Measurement { value, job })
        };
        self.bounded(Box::pin(work)).await?
    }

    /// Polls a query that is still running until it is done, then makes
    /// sure its first rows are in `reply`, however BigQuery shaped its
    /// answers (rows inline, a page token, or neither).
    async fn finish(&self, target: &Target, reply: &mut Reply) -> Result<(), WarehouseError> {
        let mut pause = Duration::from_millis(200);
        while !reply.complete {
            let job = reply.job.clone().ok_or_else(|| {
                WarehouseError::transient(
                    "backendError",
                    "BigQuery answered that the query is still running but named no job",
                )
            })?;
            let started = Instant::now();
            let next = self.results(target, &job, None, POLL_WAIT).await?;
            reply.merge(next);
            if !reply.complete && started.elapsed() < pause {
                // The service answered "not yet" at once: wait a little, longer each time.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
        if reply.rows.is_empty() && reply.total_rows.unwrap_or(0) > 0 {
            if let Some(job) = reply.job.clone() {
                let token = reply.page_token.clone();
                let next = self
                    .results(target, &job, token.as_deref(), Duration::ZERO)
                    .await?;
                reply.merge(next);
            }
            if reply.rows.is_empty() {
                return Err(WarehouseError::transient(
                    "backendError",
                    "BigQuery reported result rows but returned none; the next sync will read them again",
                ));
            }
        }
        Ok(())
    }

    /// One `getQueryResults` call.
    async fn results(
        &self,
        target: &Target,
        job: &JobReference,
        page_token: Option<&str>,
        wait: Duration,
    ) -> Result<Reply, WarehouseError> {
        let mut request = GetQueryResultsRequest::new()
            .set_project_id(job.project_id.clone())
            .set_job_id(job.job_id.clone())
            .set_max_results(ROWS_READ)
            .set_timeout_ms(wait.as_millis() as u32);
        if let Some(location) = job.location.clone().or_else(|| target.location.clone()) {
            request = request.set_location(location);
        }
        match page_token {
            Some(token) => request = request.set_page_token(token),
            None => request = request.set_start_index(0u64),
        }
        let response = self
            .identities
            .call(target, |jobs| {
                jobs.get_query_results()
                    .with_request(request.clone())
                    .with_user_agent(USER_AGENT)
                    .send()
            })
            .await?;
        if !response.errors.is_empty() {
            return Err(classify_job_errors(&response.errors));
        }
        Ok(Reply::from(response))
    }

    /// Waits for an answer for at most the job timeout plus some slack (BigQuery
    /// cancels the job itself at the job timeout).
    async fn bounded<T>(&self, work: impl Future<Output = T>) -> Result<T, WarehouseError> {
        let limit = self.config.job_timeout + self.config.job_timeout.min(MAX_ANSWER_SLACK);
        tokio::time::timeout(limit, work).await.map_err(|_| {
            WarehouseError::transient(
                "timeout",
                &format!("no answer within {} ms", limit.as_millis()),
            )
        })
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
