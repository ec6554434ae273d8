//! BigQuery connections and the server's BigQuery identity: roots and inputs.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::Utc;

use crate::{
    bigquery::REQUIRED_PERMISSIONS,
    domain::{
        inputs::{ConnectionPatch, NewConnection},
        validate::Invalid,
        warehouse::{BytesCap, ConnectionName, Location, ProjectId},
    },
    error::AppError,
    store::connections,
};

use super::{
    Int64, RequestContext,
    okrs::given,
    types::{BigQuerySetup, Connection, ConnectionTest},
};

/// Queries about connections.
#[derive(Default)]
pub struct ConnectionQuery;

#[Object]
impl ConnectionQuery {
    /// The server's service account and what to grant it.
    async fn big_query_setup(&self, ctx: &Context<'_>) -> Result<BigQuerySetup> {
        let principal = ctx.principal()?;
        let described = ctx
            .service()
            .syncer()
            .warehouse()
            .describe(Some(&principal.org.slug))
            .await;
        let (source, email) = (described.source, described.email);
        let who = email
            .clone()
            .unwrap_or_else(|| "the server's service account".to_owned());
        Ok(BigQuerySetup {
            service_account_email: email,
            credential_source: source.into(),
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
    pub maximum_bytes_billed: Option<Int64>,
    /// Other projects whose tables the queries may read (admins only; at most 20).
    pub readable_projects: Option<Vec<String>>,
}

impl TryFrom<CreateConnectionInput> for NewConnection {
    type Error = Invalid;

    fn try_from(input: CreateConnectionInput) -> Result<Self, Invalid> {
        Ok(NewConnection {
            name: ConnectionName::parse(&input.name)?,
            project_id: ProjectId::parse(&input.project_id)?,
            location: input.location.as_deref().map(Location::parse).transpose()?,
            maximum_bytes_billed: input
                .maximum_bytes_billed
                .map(|b| BytesCap::parse(b.0))
                .transpose()?,
            readable_projects: input
                .readable_projects
                .as_deref()
                .map(parse_projects)
                .transpose()?,
        })
    }
}

/// Changes to a connection; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateConnectionInput {
    pub name: Option<String>,
    pub project_id: Option<String>,
    /// `null` lets BigQuery decide.
    pub location: MaybeUndefined<String>,
    /// `null` falls back to the server's default.
    pub maximum_bytes_billed: MaybeUndefined<Int64>,
    /// Replaces the other projects whose tables the queries may read (admins only).
    pub readable_projects: Option<Vec<String>>,
}

impl TryFrom<UpdateConnectionInput> for ConnectionPatch {
    type Error = Invalid;

    fn try_from(input: UpdateConnectionInput) -> Result<Self, Invalid> {
        Ok(ConnectionPatch {
            name: input
                .name
                .as_deref()
                .map(ConnectionName::parse)
                .transpose()?,
            project_id: input
                .project_id
                .as_deref()
                .map(ProjectId::parse)
                .transpose()?,
            location: given(input.location)
                .map(|l| l.as_deref().map(Location::parse).transpose())
                .transpose()?,
            maximum_bytes_billed: given(input.maximum_bytes_billed)
                .map(|c| c.map(|b| BytesCap::parse(b.0)).transpose())
                .transpose()?,
            readable_projects: input
                .readable_projects
                .as_deref()
                .map(parse_projects)
                .transpose()?,
        })
    }
}

/// Most projects one connection may read besides its own.
const MAX_READABLE_PROJECTS: usize = 20;

/// A list of project ids, each checked.
fn parse_projects(projects: &[String]) -> Result<Vec<ProjectId>, Invalid> {
    if projects.len() > MAX_READABLE_PROJECTS {
        return Err(Invalid::new(
            "readableProjects",
            format!("At most {MAX_READABLE_PROJECTS} projects may be listed."),
        ));
    }
    projects.iter().map(|p| ProjectId::parse(p)).collect()
}

/// Who may use a connection. `userIds`, when given, replaces the list.
#[derive(InputObject)]
pub struct ShareConnectionInput {
    /// Share with the whole organization.
    pub everyone: Option<bool>,
    pub user_ids: Option<Vec<ID>>,
}

/// Changes to connections.
#[derive(Default)]
pub struct ConnectionMutation;

#[Object]
impl ConnectionMutation {
    /// Adds a BigQuery connection owned by the caller.
    async fn create_connection(
        &self,
        ctx: &Context<'_>,
        input: CreateConnectionInput,
    ) -> Result<Connection> {
        let principal = ctx.principal()?;
        let new = NewConnection::try_from(input).map_err(AppError::from)?;
        let config = ctx.service().syncer().warehouse().config();
        let tenancy = match (&config.emulator_host, &config.org_service_account) {
            (Some(_), _) => connections::Tenancy::Unchecked,
            (None, Some(template)) => connections::Tenancy::PerOrgAccounts(template),
            (None, None) => connections::Tenancy::OneOrg,
        };
        Ok(Connection(
            connections::create(ctx.writes(), principal, new, tenancy).await?,
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
        let patch = ConnectionPatch::try_from(input).map_err(AppError::from)?;
        Ok(Connection(
            connections::update(ctx.writes(), principal, &id, patch).await?,
        ))
    }

    /// Deletes a connection; `CONFLICT` while data sources use it.
    async fn delete_connection(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let principal = ctx.principal()?;
        connections::delete(ctx.writes(), principal, &id).await?;
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
            connections::share(ctx.writes(), principal, &id, input.everyone, user_ids).await?,
        ))
    }

    /// Dry-runs a query in the connection's project and reports the outcome.
    async fn test_connection(&self, ctx: &Context<'_>, id: ID) -> Result<ConnectionTest> {
        let principal = ctx.principal()?;
        let conn = ctx
            .service()
            .syncer()
            .test_connection(principal, &id)
            .await?;
        Ok(ConnectionTest {
            ok: conn.last_test_ok.unwrap_or(false),
            message: conn.last_test_message.unwrap_or_default(),
            checked_at: conn.last_tested_at.unwrap_or_else(Utc::now),
        })
    }
}
