//! BigQuery connections, the server's BigQuery identity, and data sources.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{connection, data_source, sync_run};

use crate::{
    bigquery::REQUIRED_PERMISSIONS,
    error::AppError,
    store::{
        connections::{self, ConnectionPatch, NewConnection},
        data_sources, key_results, objectives,
        progress::period_of,
    },
    sync::{LinkRequest, Syncer, UpdateRequest},
};

use super::{
    RequestContext,
    loaders::NodeKey,
    types::{KeyResult, Objective, User},
};

/// Most sync runs returned at once.
const MAX_SYNC_RUNS: i32 = 100;

pub(super) fn syncer<'a>(ctx: &Context<'a>) -> &'a Syncer {
    ctx.data_unchecked::<Syncer>()
}

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
    async fn maximum_bytes_billed(&self) -> Option<i64> {
        self.0.maximum_bytes_billed
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

/// What the server needs granted in a customer's project.
#[derive(SimpleObject)]
pub struct BigQuerySetup {
    /// The service account the server queries as; null when it runs with
    /// credentials that are not a service account (or against an emulator).
    pub service_account_email: Option<String>,
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

/// Whether a data source is healthy.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum DataSourceState {
    /// Linked, not yet synced.
    Pending,
    /// The last run succeeded.
    Ok,
    /// The last run failed; the last good value is kept.
    Error,
    /// Syncs are paused (a manual check-in is kept).
    Paused,
}

/// Why a run failed.
#[derive(SimpleObject, Clone)]
pub struct SyncError {
    /// `BIGQUERY_ERROR`, `QUERY_SHAPE` or `QUERY_NOT_SELECT`.
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
    /// `BIGQUERY_ERROR`, `QUERY_SHAPE` or `QUERY_NOT_SELECT`.
    pub code: String,
    pub message: String,
    /// BigQuery's reason, when it gave one.
    pub reason: Option<String>,
}

/// How a run ended.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SyncOutcome {
    /// A new value was recorded.
    Ok,
    /// The value had not moved; no history point was written.
    Unchanged,
    Error,
}

/// What started a run.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SyncTrigger {
    /// Linking, or a change of SQL or connection.
    Link,
    /// The hourly (or configured) schedule.
    Sync,
    /// `refreshDataSource`.
    Refresh,
}

/// One run of a data source's query.
pub struct SyncRun(sync_run::Model);

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
        match self.0.outcome.as_str() {
            "OK" => SyncOutcome::Ok,
            "UNCHANGED" => SyncOutcome::Unchanged,
            _ => SyncOutcome::Error,
        }
    }
    async fn trigger(&self) -> SyncTrigger {
        match self.0.trigger.as_str() {
            "LINK" => SyncTrigger::Link,
            "REFRESH" => SyncTrigger::Refresh,
            _ => SyncTrigger::Sync,
        }
    }
    /// BigQuery's job id.
    async fn job_id(&self) -> Option<&str> {
        self.0.job_id.as_deref()
    }
    async fn bytes_processed(&self) -> Option<i64> {
        self.0.bytes_processed
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
    pub async fn of(ctx: &Context<'_>, key: NodeKey) -> Result<Option<DataSource>> {
        let ds = ctx
            .loaders()?
            .data_sources
            .load_one(key)
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
        match self.0.state.as_str() {
            "OK" => DataSourceState::Ok,
            "ERROR" => DataSourceState::Error,
            "PAUSED" => DataSourceState::Paused,
            _ => DataSourceState::Pending,
        }
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
        let org_id = &ctx.principal()?.org.id;
        let Some(model) = key_results::get(ctx.db(), org_id, id).await? else {
            return Ok(None);
        };
        let Some(o) = objectives::get(ctx.db(), org_id, &model.objective_id).await? else {
            return Ok(None);
        };
        Ok(Some(KeyResult {
            model,
            period: period_of(&o),
        }))
    }
    /// The newest runs first (at most 100).
    async fn sync_runs(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] limit: i32,
    ) -> Result<Vec<SyncRun>> {
        let limit = limit.clamp(1, MAX_SYNC_RUNS) as u64;
        Ok(data_sources::recent_runs(ctx.db(), &self.0.id, limit)
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

/// Queries about BigQuery.
#[derive(Default)]
pub struct BigQueryQuery;

#[Object]
impl BigQueryQuery {
    /// The server's service account and what to grant it.
    async fn big_query_setup(&self, ctx: &Context<'_>) -> Result<BigQuerySetup> {
        ctx.principal()?;
        let email = syncer(ctx).warehouse().service_account_email().await;
        let who = email
            .clone()
            .unwrap_or_else(|| "the server's service account".to_owned());
        Ok(BigQuerySetup {
            service_account_email: email,
            required_permissions: REQUIRED_PERMISSIONS.iter().map(|p| p.to_string()).collect(),
            steps: vec![
                format!(
                    "In the Google Cloud console of your project, open IAM & Admin > Roles and create a role with {} (or use the predefined roles BigQuery Job User on the project and BigQuery Data Viewer on the datasets).",
                    REQUIRED_PERMISSIONS.join(", ")
                ),
                format!("In IAM & Admin > IAM, grant that role to {who} on the project."),
                "Create the connection here with the project id (and its location, if your datasets are not in the US multi-region) and run testConnection.".to_owned(),
            ],
        })
    }

    /// Connections the caller may use or manage, by name.
    async fn connections(&self, ctx: &Context<'_>) -> Result<Vec<Connection>> {
        let principal = ctx.principal()?;
        Ok(connections::list_for(ctx.db(), principal)
            .await?
            .into_iter()
            .map(Connection)
            .collect())
    }

    /// One connection of the organization; null when none has this id.
    async fn connection(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Connection>> {
        let principal = ctx.principal()?;
        Ok(connections::get(ctx.db(), &principal.org.id, &id)
            .await?
            .map(Connection))
    }

    /// One data source of the organization; null when none has this id.
    async fn data_source(&self, ctx: &Context<'_>, id: ID) -> Result<Option<DataSource>> {
        let principal = ctx.principal()?;
        Ok(data_sources::get(ctx.db(), &principal.org.id, &id)
            .await?
            .map(DataSource))
    }
}

/// A new connection.
#[derive(InputObject)]
pub struct CreateConnectionInput {
    /// Unique within the organization.
    pub name: String,
    /// GCP project id, e.g. `acme-analytics` or `example.com:acme-analytics`.
    pub project_id: String,
    /// BigQuery location (`US`, `EU`, `europe-west2` …).
    pub location: Option<String>,
    /// Per-job cap on bytes billed; default: the server's.
    pub maximum_bytes_billed: Option<i64>,
}

/// Changes to a connection; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateConnectionInput {
    pub name: Option<String>,
    pub project_id: Option<String>,
    /// `null` lets BigQuery decide.
    pub location: MaybeUndefined<String>,
    /// `null` falls back to the server's default.
    pub maximum_bytes_billed: MaybeUndefined<i64>,
}

/// Who may use a connection. `userIds`, when given, replaces the list.
#[derive(InputObject)]
pub struct ShareConnectionInput {
    /// Share with the whole organization.
    pub everyone: Option<bool>,
    pub user_ids: Option<Vec<ID>>,
}

/// A query to feed one key result or objective (give exactly one id).
#[derive(InputObject)]
pub struct LinkDataSourceInput {
    pub key_result_id: Option<ID>,
    pub objective_id: Option<ID>,
    /// Optional when the caller may use exactly one connection.
    pub connection_id: Option<ID>,
    /// A SELECT returning one row with one numeric column. May use
    /// `@period_start`, `@period_end` (DATE) and `@as_of` (TIMESTAMP).
    pub sql: String,
    /// Default: the server's SYNC_INTERVAL.
    pub sync_interval_seconds: Option<i64>,
}

/// Changes to a data source; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateDataSourceInput {
    pub sql: Option<String>,
    pub connection_id: Option<ID>,
    pub sync_interval_seconds: Option<i64>,
    /// Pause or resume syncing.
    pub paused: Option<bool>,
}

fn to_maybe<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

/// Changes to connections and data sources.
#[derive(Default)]
pub struct BigQueryMutation;

#[Object]
impl BigQueryMutation {
    /// Adds a BigQuery connection owned by the caller.
    async fn create_connection(
        &self,
        ctx: &Context<'_>,
        input: CreateConnectionInput,
    ) -> Result<Connection> {
        let principal = ctx.principal()?;
        let new = NewConnection {
            name: input.name,
            project_id: input.project_id,
            location: input.location,
            maximum_bytes_billed: input.maximum_bytes_billed,
        };
        Ok(Connection(
            connections::create(ctx.db(), principal, new).await?,
        ))
    }

    /// Changes a connection (admins, or its owner).
    async fn update_connection(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateConnectionInput,
    ) -> Result<Connection> {
        let principal = ctx.principal()?;
        let patch = ConnectionPatch {
            name: input.name,
            project_id: input.project_id,
            location: to_maybe(input.location),
            maximum_bytes_billed: to_maybe(input.maximum_bytes_billed),
        };
        Ok(Connection(
            connections::update(ctx.db(), principal, &id, patch).await?,
        ))
    }

    /// Deletes a connection; `CONFLICT` while data sources use it.
    async fn delete_connection(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let principal = ctx.principal()?;
        connections::delete(ctx.db(), principal, &id).await?;
        Ok(id)
    }

    /// Sets who may use a connection.
    async fn share_connection(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: ShareConnectionInput,
    ) -> Result<Connection> {
        let principal = ctx.principal()?;
        let user_ids = input
            .user_ids
            .map(|ids| ids.into_iter().map(|id| id.0).collect());
        Ok(Connection(
            connections::share(ctx.db(), principal, &id, input.everyone, user_ids).await?,
        ))
    }

    /// Dry-runs a query in the connection's project and reports the outcome.
    async fn test_connection(&self, ctx: &Context<'_>, id: ID) -> Result<ConnectionTest> {
        let principal = ctx.principal()?;
        let conn = syncer(ctx).test_connection(principal, &id).await?;
        Ok(ConnectionTest {
            ok: conn.last_test_ok.unwrap_or(false),
            message: conn.last_test_message.unwrap_or_default(),
            checked_at: conn.last_tested_at.unwrap_or_else(Utc::now),
        })
    }

    /// Links a key result or objective to a query. The SQL is checked with a
    /// dry run and run once before anything is saved.
    async fn link_data_source(
        &self,
        ctx: &Context<'_>,
        input: LinkDataSourceInput,
    ) -> Result<DataSource> {
        let principal = ctx.principal()?;
        let request = LinkRequest {
            key_result_id: input.key_result_id.map(|id| id.0),
            objective_id: input.objective_id.map(|id| id.0),
            connection_id: input.connection_id.map(|id| id.0),
            sql: input.sql,
            sync_interval_seconds: input.sync_interval_seconds,
        };
        Ok(DataSource(syncer(ctx).link(principal, request).await?))
    }

    /// Changes a data source; a new SQL or connection is validated first.
    async fn update_data_source(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateDataSourceInput,
    ) -> Result<DataSource> {
        let principal = ctx.principal()?;
        let request = UpdateRequest {
            sql: input.sql,
            connection_id: input.connection_id.map(|id| id.0),
            sync_interval_seconds: input.sync_interval_seconds,
            paused: input.paused,
        };
        Ok(DataSource(
            syncer(ctx).update(principal, &id, request).await?,
        ))
    }

    /// Removes a data source; the values it recorded stay in the history.
    async fn unlink_data_source(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let principal = ctx.principal()?;
        data_sources::delete(ctx.db(), &principal.org.id, &id).await?;
        Ok(id)
    }

    /// Runs the query now. A BigQuery failure is recorded on the data
    /// source (`state: ERROR`, `lastError`) and the last good value stays.
    async fn refresh_data_source(&self, ctx: &Context<'_>, id: ID) -> Result<DataSource> {
        let principal = ctx.principal()?;
        Ok(DataSource(syncer(ctx).refresh(principal, &id).await?))
    }
}
