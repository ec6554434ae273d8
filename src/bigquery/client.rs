//! The BigQuery client: Google's generated `JobService` client over REST,
//! with one set of credentials for the whole server (or one per
//! organization), our own polling of long queries and our own retries.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use google_cloud_bigquery_v2::{
    client::JobService,
    model::{
        GetQueryResultsRequest, InsertJobRequest, Job, JobConfiguration, JobConfigurationQuery,
        JobReference, PostQueryRequest, QueryParameter, QueryParameterType, QueryParameterValue,
        QueryRequest,
    },
};
use google_cloud_gax::options::RequestOptionsBuilder;
use tokio::time::Instant;

use crate::domain::warehouse::org_service_account;

use super::{
    JobInfo, Measurement, QueryParams, Target, WarehouseConfig, WarehouseError,
    classify::{classify_job_errors, classify_rpc, retry},
    credentials::{CredentialSource, Loaded, METADATA_TIMEOUT},
    impersonate::OrgAccount,
    is_numeric_type,
    rows::{Reply, first_values},
    used_parameters,
};

/// Most slack on top of the job timeout before we stop waiting for an answer.
const MAX_ANSWER_SLACK: Duration = Duration::from_secs(5);

/// How much longer than the retry budget a connection test may take.
const TEST_SLACK: Duration = Duration::from_secs(5);

/// The `User-Agent` of every request to Google.
pub const USER_AGENT: &str = concat!("okr-pulse/", env!("CARGO_PKG_VERSION"));

/// How long one `getQueryResults` call may wait on BigQuery's side for the
/// job to finish before it answers "not yet".
const POLL_WAIT: Duration = Duration::from_secs(10);

/// Rows read per reply: two are enough to tell one row from several.
const ROWS_READ: u32 = 2;

/// Credentials and the client that carries them.
struct Identity {
    loaded: Loaded,
    jobs: JobService,
}

/// An organization's identity and the base identity it was minted with:
/// when the base is built again, so is the org's.
type OrgIdentity = (Arc<Identity>, Arc<Identity>);

/// Talks to BigQuery (or its emulator) for the whole server.
pub struct Warehouse {
    config: WarehouseConfig,
    /// For the metadata server's email and the IAM Credentials API.
    http: reqwest::Client,
    /// The server's own identity, built on first use and again after a
    /// credential failure.
    base: tokio::sync::Mutex<Option<Arc<Identity>>>,
    /// Each organization's impersonated identity, by org slug.
    orgs: Mutex<HashMap<String, OrgIdentity>>,
}

/// What a dry run found out.
struct Checked {
    statement_type: String,
    columns: Vec<(String, String)>,
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
        Arc::new(Warehouse {
            config,
            http,
            base: tokio::sync::Mutex::new(None),
            orgs: Mutex::new(HashMap::new()),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &WarehouseConfig {
        &self.config
    }

    /// Where the server's credentials come from and the account's email,
    /// for the start-up log line and `bigQuerySetup`. With per-org accounts
    /// and `org` given, the email is that org's account.
    pub async fn describe(&self, org: Option<&str>) -> (CredentialSource, Option<String>) {
        let (source, email) = match self.config.credentials.load() {
            Err(_) => (CredentialSource::None, None),
            Ok(loaded) if loaded.source == CredentialSource::MetadataServer => {
                match self.config.credentials.metadata_email(&self.http).await {
                    Some(email) => (CredentialSource::MetadataServer, Some(email)),
                    None => (CredentialSource::None, None),
                }
            }
            Ok(loaded) => (loaded.source, loaded.email),
        };
        if source == CredentialSource::Emulator {
            return (source, None);
        }
        match (&self.config.org_service_account, org) {
            (Some(template), Some(slug)) => (source, org_service_account(template, slug).ok()),
            _ => (source, email),
        }
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
        let limit = self.config.backoff.max_elapsed + TEST_SLACK;
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

    /// The server's own identity, built now if it is not yet.
    async fn base(&self) -> Result<Arc<Identity>, WarehouseError> {
        let mut base = self.base.lock().await;
        if let Some(identity) = base.as_ref() {
            return Ok(identity.clone());
        }
        let loaded = self
            .config
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
        let template = match &self.config.org_service_account {
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
            &self.config.iam_endpoint,
            self.http.clone(),
        );
        let identity = Arc::new(
            self.identity_of(Loaded {
                credentials: account.into(),
                source: CredentialSource::Impersonated,
                email: Some(email),
            })
            .await?,
        );
        if let Ok(mut orgs) = self.orgs.lock() {
            orgs.insert(target.org.clone(), (identity.clone(), base));
        }
        Ok(identity)
    }

    /// A client that carries `loaded`.
    async fn identity_of(&self, loaded: Loaded) -> Result<Identity, WarehouseError> {
        let jobs = JobService::builder()
            .with_endpoint(self.config.endpoint.clone())
            .with_credentials(loaded.credentials.clone())
            // Retries are ours (bounded and classified), not the client's.
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .build()
            .await
            .map_err(|err| {
                WarehouseError::credentials(format!("The BigQuery client cannot be built: {err}."))
            })?;
        Ok(Identity { loaded, jobs })
    }

    /// Drops `identity` so the next call builds it again from its sources:
    /// a refused or broken credential never sticks.
    async fn forget(&self, identity: &Arc<Identity>) {
        let mut base = self.base.lock().await;
        if base.as_ref().is_some_and(|b| Arc::ptr_eq(b, identity)) {
            *base = None;
        }
        if let Ok(mut orgs) = self.orgs.lock() {
            orgs.retain(|_, (org, from)| {
                !Arc::ptr_eq(org, identity) && !Arc::ptr_eq(from, identity)
            });
        }
    }

    /// Makes one call with a valid token: credentials that give none are a
    /// `credentials` error (and are built again next time); a 401 gets one
    /// fresh token and one retry.
    async fn call<T, F, Fut>(&self, target: &Target, call: F) -> Result<T, WarehouseError>
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
                    self.forget(&identity).await;
                    return Err(self.no_token(&identity.loaded, &problem));
                }
            }
            // The generated client's futures are large: keep them off the stack.
            match Box::pin(call(identity.jobs.clone())).await {
                Err(err) if err.http_status_code() == Some(401) && !refreshed => {
                    tracing::info!("BigQuery refused the token, fetching a fresh one");
                    self.forget(&identity).await;
                    refreshed = true;
                }
                Err(err) => {
                    if err.is_authentication() || err.http_status_code() == Some(401) {
                        self.forget(&identity).await;
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
                self.config.credentials.metadata_host
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

    fn query_config(
        &self,
        target: &Target,
        sql: &str,
        params: QueryParams,
    ) -> (JobConfigurationQuery, Vec<QueryParameter>) {
        let bound = query_parameters(sql, params);
        let query = JobConfigurationQuery::new()
            .set_query(sql)
            .set_use_legacy_sql(false)
            .set_maximum_bytes_billed(self.bytes_cap(target))
            .set_parameter_mode(if bound.is_empty() { "" } else { "NAMED" })
            .set_query_parameters(bound.clone());
        (query, bound)
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
        let (query, _) = self.query_config(target, sql, params);
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
            .bounded(Box::pin(self.call(target, |jobs| {
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
                    q.referenced_tables
                        .iter()
                        .map(|t| {
                            let project = if t.project_id.is_empty() {
                                target.project_id.clone()
                            } else {
                                t.project_id.clone()
                            };
                            let table = format!("`{project}.{}.{}`", t.dataset_id, t.table_id);
                            (project, table)
                        })
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
        let (_, bound) = self.query_config(target, sql, params);
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
