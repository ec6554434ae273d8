//! The caller and their organization.

use async_graphql::{Context, InputObject, Object, Result};

use crate::{
    auth::Authenticator,
    domain::{
        inputs::{OrgSettingsPatch, org_name},
        validate::{self, Invalid},
    },
    error::AppError,
    store::orgs,
};

use super::{
    RequestContext,
    types::{Organization, User},
};

/// Queries about the caller.
#[derive(Default)]
pub struct OrgQuery;

#[Object]
impl OrgQuery {
    /// The caller, as provisioned from their token.
    async fn me(&self, ctx: &Context<'_>) -> Result<User> {
        Ok(ctx.principal()?.user.clone().into())
    }

    /// The caller's organization and its settings.
    async fn organization(&self, ctx: &Context<'_>) -> Result<Organization> {
        Ok(ctx.principal()?.org.clone().into())
    }

    /// The organization's users (everyone who has signed in), by name.
    async fn users(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        let principal = ctx.principal()?;
        Ok(orgs::users(ctx.db(), &principal.org.id)
            .await?
            .into_iter()
            .map(User::from)
            .collect())
    }
}

/// Changes to the organization's settings; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateOrganizationInput {
    pub name: Option<String>,
    /// IANA time zone, e.g. `Europe/Berlin`.
    pub time_zone: Option<String>,
    /// 0–100; must not exceed atRiskThreshold.
    pub behind_threshold: Option<f64>,
    /// 0–100; must not be below behindThreshold.
    pub at_risk_threshold: Option<f64>,
    pub members_can_create_connections: Option<bool>,
}

impl TryFrom<UpdateOrganizationInput> for OrgSettingsPatch {
    type Error = Invalid;

    fn try_from(input: UpdateOrganizationInput) -> Result<Self, Invalid> {
        Ok(OrgSettingsPatch {
            name: input.name.as_deref().map(org_name).transpose()?,
            time_zone: input
                .time_zone
                .as_deref()
                .map(validate::time_zone)
                .transpose()?,
            behind_threshold: input.behind_threshold,
            at_risk_threshold: input.at_risk_threshold,
            members_can_create_connections: input.members_can_create_connections,
        })
    }
}

/// Organization settings (admins only).
#[derive(Default)]
pub struct OrgMutation;

#[Object]
impl OrgMutation {
    /// Changes the organization's name, time zone, status thresholds or member rights.
    async fn update_organization(
        &self,
        ctx: &Context<'_>,
        input: UpdateOrganizationInput,
    ) -> Result<Organization> {
        let principal = ctx.principal()?;
        principal.require_admin("change organization settings")?;
        let patch = OrgSettingsPatch::try_from(input).map_err(AppError::from)?;
        let org = orgs::update_settings(ctx.writes(), principal, patch).await?;
        // Callers cached with the old settings would score with them.
        if let Some(auth) = ctx.data_opt::<Authenticator>() {
            auth.forget_org(&org.id);
        }
        Ok(org.into())
    }
}
