//! Data sources: roots and inputs.

use async_graphql::{Context, ID, InputObject, Object, Result};

use crate::{
    domain::{
        Node,
        inputs::{DataSourcePatch, NewLink},
        validate::Invalid,
        warehouse::{Sql, SyncInterval},
    },
    error::AppError,
    store::data_sources,
};

use super::{
    RequestContext,
    types::{DataSource, DataSourcePreview},
};

/// Queries about data sources.
#[derive(Default)]
pub struct DataSourceQuery;

#[Object]
impl DataSourceQuery {
    /// One data source of the organization; null when none has this id.
    async fn data_source(&self, ctx: &Context<'_>, id: ID) -> Result<Option<DataSource>> {
        let principal = ctx.principal()?;
        Ok(data_sources::get(ctx.db(), &principal.org.id, &id)
            .await?
            .map(DataSource))
    }
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

impl TryFrom<LinkDataSourceInput> for NewLink {
    type Error = Invalid;

    fn try_from(input: LinkDataSourceInput) -> Result<Self, Invalid> {
        Ok(NewLink {
            sql: Sql::parse(&input.sql)?,
            interval: input
                .sync_interval_seconds
                .map(SyncInterval::parse)
                .transpose()?,
            node: Node::exactly_one(
                input.key_result_id.map(|id| id.0),
                input.objective_id.map(|id| id.0),
            )?,
            connection_id: input.connection_id.map(|id| id.0),
        })
    }
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

impl TryFrom<UpdateDataSourceInput> for DataSourcePatch {
    type Error = Invalid;

    fn try_from(input: UpdateDataSourceInput) -> Result<Self, Invalid> {
        Ok(DataSourcePatch {
            interval: input
                .sync_interval_seconds
                .map(SyncInterval::parse)
                .transpose()?,
            sql: input.sql.as_deref().map(Sql::parse).transpose()?,
            connection_id: input.connection_id.map(|id| id.0),
            paused: input.paused,
        })
    }
}

/// Changes to data sources.
#[derive(Default)]
pub struct DataSourceMutation;

#[Object]
impl DataSourceMutation {
    /// Links a key result or objective to a query. The SQL is checked with a
    /// dry run and run once before anything is saved.
    async fn link_data_source(
        &self,
        ctx: &Context<'_>,
        input: LinkDataSourceInput,
    ) -> Result<DataSource> {
        let principal = ctx.principal()?;
        let link = NewLink::try_from(input).map_err(AppError::from)?;
        Ok(DataSource(ctx.service().link(principal, link).await?))
    }

    /// Runs exactly the checks of `linkDataSource` (a dry run, then one run)
    /// and returns the value, saving nothing: a "Test" before linking.
    async fn preview_data_source(
        &self,
        ctx: &Context<'_>,
        input: LinkDataSourceInput,
    ) -> Result<DataSourcePreview> {
        let principal = ctx.principal()?;
        let link = NewLink::try_from(input).map_err(AppError::from)?;
        Ok(DataSourcePreview(
            ctx.service().preview(principal, link).await?,
        ))
    }

    /// Changes a data source; a new SQL or connection is validated first.
    async fn update_data_source(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateDataSourceInput,
    ) -> Result<DataSource> {
        let principal = ctx.principal()?;
        let patch = DataSourcePatch::try_from(input).map_err(AppError::from)?;
        Ok(DataSource(
            ctx.service()
                .update_data_source(principal, &id, patch)
                .await?,
        ))
    }

    /// Removes a data source; the values it recorded stay in the history.
    async fn unlink_data_source(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let principal = ctx.principal()?;
        ctx.service().unlink(principal, &id).await?;
        Ok(id)
    }

    /// Runs the query now. A BigQuery failure is recorded on the data
    /// source (`state: ERROR`, `lastError`) and the last good value stays.
    async fn refresh_data_source(&self, ctx: &Context<'_>, id: ID) -> Result<DataSource> {
        let principal = ctx.principal()?;
        Ok(DataSource(ctx.service().refresh(principal, &id).await?))
    }
}
