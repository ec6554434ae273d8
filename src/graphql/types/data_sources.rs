//! BigQuery's output types: connections, data sources and their runs.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{
    connection, data_source,
    enums::{DataSourceState, SyncOutcome, SyncTrigger},
    sync_run,
};

use crate::{
    domain::Node,
    error::AppError,
    graphql::{Int64, RequestContext, list_limit},
    store::{connections, runs},
    sync::link::Preview,
};

use super::{KeyResult, Objective, User};

/// Most sync runs returned at once.
const MAX_SYNC_RUNS: u64 = 100;

/// The outcome of the last `testConnection`.
#[derive(SimpleObject)]
pub struct ConnectionTest {
    pub ok: bool,
    /// BigQuery's message, and what to grant when access was denied.
    pub message: String,
    pub checked_at: DateTime<Utc>,
}

/// A BigQuery project the server queries with its own service account.
pub struct Connection(pub connection::Model);

#[Object]
impl Connection {
    async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    /// Unique within the organization.
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn project_id(&self) -> &str {
        &self.0.project_id
    }
    /// BigQuery location; null lets BigQuery decide.
    async fn location(&self) -> Option<&str> {
        self.0.location.as_deref()
    }
    /// Per-job cap on bytes billed; null means the server's default.
    async fn maximum_bytes_billed(&self) -> Option<Int64> {
        self.0.maximum_bytes_billed.map(Int64)
    }
    /// Other projects whose tables the queries may read besides `projectId`.
    async fn readable_projects(&self) -> Vec<String> {
        crate::store::connections::readable_projects(&self.0)
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let user = ctx
            .loaders()?
            .users
            .load_one(self.0.owner_id.clone())
            .await
            .map_err(AppError::from)?;
        Ok(user.map(User::from))
    }
    async fn shared_with_everyone(&self) -> bool {
        self.0.shared_with_everyone
    }
    /// Users it is shared with, besides its owner and admins.
    async fn shared_with(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        Ok(connections::shared_with(ctx.db(), &self.0.id)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }
    /// Whether the caller may change, share, test or delete it.
    async fn can_manage(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(connections::can_manage(ctx.principal()?, &self.0))
    }
    /// Whether the caller may link data sources through it.
    async fn can_use(&self, ctx: &Context<'_>) -> Result<bool> {
        Ok(connections::can_use(ctx.db(), ctx.principal()?, &self.0).await?)
    }
    /// The last `testConnection` outcome; null before the first test.
    async fn last_test(&self) -> Option<ConnectionTest> {
        Some(ConnectionTest {
            ok: self.0.last_test_ok?,
            message: self.0.last_test_message.clone().unwrap_or_default(),
            checked_at: self.0.last_tested_at?,
        })
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
}

/// Where the server's Google credentials come from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum CredentialSource {
    /// A service-account key file.
    ServiceAccountKey,
    /// A person's gcloud credentials.
    AuthorizedUser,
    /// Workload Identity Federation.
    ExternalAccount,
    /// A service account impersonated by other credentials.
    Impersonated,
    /// The metadata server of Google Cloud.
    MetadataServer,
    /// A local BigQuery emulator: no credentials.
    Emulator,
    /// None found: BigQuery calls fail until credentials are configured.
    None,
}

impl From<crate::bigquery::CredentialSource> for CredentialSource {
    fn from(source: crate::bigquery::CredentialSource) -> Self {
        use crate::bigquery::CredentialSource as S;
        match source {
            S::ServiceAccountKey => CredentialSource::ServiceAccountKey,
            S::AuthorizedUser => CredentialSource::AuthorizedUser,
            S::ExternalAccount => CredentialSource::ExternalAccount,
            S::Impersonated => CredentialSource::Impersonated,
            S::MetadataServer => CredentialSource::MetadataServer,
            S::Emulator => CredentialSource::Emulator,
            S::None => CredentialSource::None,
        }
    }
}

/// What the server needs granted in a customer's project.
#[derive(SimpleObject)]
pub struct BigQuerySetup {
    /// The service account this organization's queries run as; null when
    /// the credentials name none (gcloud user credentials, an emulator, or
    /// none found).
    pub service_account_email: Option<String>,
    /// Where the server's credentials come from.
    pub credential_source: CredentialSource,
    /// The permissions to grant on each project.
    pub required_permissions: Vec<String>,
    /// How to grant them.
    pub steps: Vec<String>,
}

/// Where a data source's value comes from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DataSourceKind {
    #[graphql(name = "BIGQUERY")]
    BigQuery,
}

/// Why a run failed.
#[derive(SimpleObject, Clone)]
pub struct SyncError {
    /// `BIGQUERY_ERROR`, `QUERY_SHAPE`, `QUERY_NOT_SELECT` or `QUERY_NOT_ALLOWED`.
    pub code: String,
    pub message: String,
    /// BigQuery's reason (`invalidQuery`, `notFound`, `backendError` …).
    pub reason: Option<String>,
    /// Whether it may go away by itself (the next sync retries).
    pub transient: bool,
    pub at: DateTime<Utc>,
}

/// Why one run failed.
#[derive(SimpleObject, Clone)]
pub struct SyncRunError {
    /// `BIGQUERY_ERROR`, `QUERY_SHAPE`, `QUERY_NOT_SELECT` or `QUERY_NOT_ALLOWED`.
    pub code: String,
    pub message: String,
    /// BigQuery's reason, when it gave one.
    pub reason: Option<String>,
}

/// One run of a data source's query.
pub struct SyncRun(pub sync_run::Model);

#[Object]
impl SyncRun {
    async fn id(&self) -> ID {
        self.0.id.to_string().into()
    }
    async fn started_at(&self) -> DateTime<Utc> {
        self.0.started_at
    }
    async fn duration_ms(&self) -> i64 {
        self.0.duration_ms
    }
    async fn outcome(&self) -> SyncOutcome {
        self.0.outcome
    }
    async fn trigger(&self) -> SyncTrigger {
        self.0.trigger
    }
    /// BigQuery's job id.
    async fn job_id(&self) -> Option<&str> {
        self.0.job_id.as_deref()
    }
    async fn bytes_processed(&self) -> Option<Int64> {
        self.0.bytes_processed.map(Int64)
    }
    async fn value(&self) -> Option<f64> {
        self.0.value
    }
    /// Attempts made, retries of transient failures included.
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn error(&self) -> Option<SyncRunError> {
        Some(SyncRunError {
            code: self.0.error_code.clone()?,
            message: self.0.error_message.clone().unwrap_or_default(),
            reason: self.0.error_reason.clone(),
        })
    }
}

/// A BigQuery query that feeds one objective or key result.
pub struct DataSource(pub data_source::Model);

impl DataSource {
    /// The data source of an objective or key result, batched.
    pub async fn of(ctx: &Context<'_>, node: Node) -> Result<Option<DataSource>> {
        let ds = ctx
            .loaders()?
            .data_sources
            .load_one(node)
            .await
            .map_err(AppError::from)?;
        Ok(ds.flatten().map(DataSource))
    }
}

#[Object]
impl DataSource {
    async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    async fn kind(&self) -> DataSourceKind {
        DataSourceKind::BigQuery
    }
    async fn connection(&self, ctx: &Context<'_>) -> Result<Option<Connection>> {
        let conn = ctx
            .loaders()?
            .connections
            .load_one(self.0.connection_id.clone())
            .await
            .map_err(AppError::from)?;
        Ok(conn.map(Connection))
    }
    async fn sql(&self) -> &str {
        &self.0.sql
    }
    async fn state(&self) -> DataSourceState {
        self.0.state
    }
    /// The last value BigQuery returned.
    async fn last_value(&self) -> Option<f64> {
        self.0.last_value
    }
    async fn last_synced_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_synced_at
    }
    async fn next_sync_at(&self) -> DateTime<Utc> {
        self.0.next_sync_at
    }
    /// Why the last run failed; null after a success.
    async fn last_error(&self) -> Option<SyncError> {
        Some(SyncError {
            code: self.0.last_error_code.clone()?,
            message: self.0.last_error_message.clone().unwrap_or_default(),
            reason: self.0.last_error_reason.clone(),
            transient: self.0.last_error_transient.unwrap_or(false),
            at: self.0.last_error_at?,
        })
    }
    async fn consecutive_failures(&self) -> i32 {
        self.0.consecutive_failures
    }
    async fn sync_interval_seconds(&self) -> i64 {
        self.0.sync_interval_seconds
    }
    async fn objective(&self, ctx: &Context<'_>) -> Result<Option<Objective>> {
        let Some(id) = &self.0.objective_id else {
            return Ok(None);
        };
        let o = ctx
            .loaders()?
            .objectives
            .load_one(id.clone())
            .await
            .map_err(AppError::from)?;
        Ok(o.map(Objective))
    }
    async fn key_result(&self, ctx: &Context<'_>) -> Result<Option<KeyResult>> {
        let Some(id) = &self.0.key_result_id else {
            return Ok(None);
        };
        Ok(KeyResult::load(ctx, id).await?)
    }
    /// The newest runs first; `limit` is 1 to 100.
    async fn sync_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<Vec<SyncRun>> {
        let limit = list_limit("limit", limit, MAX_SYNC_RUNS)?;
        Ok(runs::recent_runs(ctx.db(), &self.0.id, limit)
            .await?
            .into_iter()
            .map(SyncRun)
            .collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// What a query returned when tried, without saving anything.
pub struct DataSourcePreview(pub Preview);

#[Object]
impl DataSourcePreview {
    /// The one number the query returned.
    async fn value(&self) -> f64 {
        self.0.value
    }
    /// Bytes BigQuery processed for it.
    async fn bytes_processed(&self) -> Option<Int64> {
        self.0.bytes_processed.map(Int64)
    }
    /// BigQuery's job id.
    async fn job_id(&self) -> Option<&str> {
        self.0.job_id.as_deref()
    }
    /// The connection it ran through.
    async fn connection(&self) -> Connection {
        Connection(self.0.connection.clone())
    }
}
