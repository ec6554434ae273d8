//! Objectives, key results and check-ins.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::NaiveDate;

use crate::{
    error::AppError,
    store::{
        key_results::{self, KeyResultPatch, NewKeyResult},
        objectives::{self, NewObjective, ObjectivePatch},
        progress::{self, NewValue, period_of},
    },
};

use super::{
    RequestContext,
    bigquery::syncer,
    types::{KeyResult, KeyResultKind, KpiCondition, Objective, ProgressMode, ProgressPoint},
};

/// Queries over the OKR tree.
#[derive(Default)]
pub struct OkrQuery;

#[Object]
impl OkrQuery {
    /// Every objective of the organization, oldest first; only the roots with `rootsOnly`.
    async fn objectives(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] roots_only: bool,
    ) -> Result<Vec<Objective>> {
        let principal = ctx.principal()?;
        let rows = objectives::list(ctx.db(), &principal.org.id, roots_only).await?;
        ctx.loaders()?
            .prime_objectives(&ctx.look_ahead(), &rows)
            .await
            .map_err(AppError::from)?;
        Ok(rows.into_iter().map(Objective).collect())
    }

    /// One objective; null when it does not exist in the caller's organization.
    async fn objective(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Objective>> {
        let principal = ctx.principal()?;
        Ok(objectives::get(ctx.db(), &principal.org.id, &id)
            .await?
            .map(Objective))
    }

    /// One key result; null when it does not exist in the caller's organization.
    async fn key_result(&self, ctx: &Context<'_>, id: ID) -> Result<Option<KeyResult>> {
        let principal = ctx.principal()?;
        let Some(model) = key_results::get(ctx.db(), &principal.org.id, &id).await? else {
            return Ok(None);
        };
        key_result_output(ctx, model).await.map(Some)
    }
}

/// Wraps a key result with its objective's period.
async fn key_result_output(
    ctx: &Context<'_>,
    model: entity::key_result::Model,
) -> Result<KeyResult> {
    let org_id = &ctx.principal()?.org.id;
    let objective = objectives::get(ctx.db(), org_id, &model.objective_id)
        .await?
        .ok_or_else(|| AppError::not_found("objective", &model.objective_id))?;
    Ok(KeyResult {
        model,
        period: period_of(&objective),
    })
}

/// A new objective.
#[derive(InputObject)]
pub struct CreateObjectiveInput {
    pub title: String,
    pub description: Option<String>,
    /// The objective it aligns to; omit for a root.
    pub parent_id: Option<ID>,
    /// Defaults to the caller.
    pub owner_id: Option<ID>,
    pub period_start: NaiveDate,
    pub period_end: NaiveDate,
    #[graphql(default)]
    pub progress_mode: ProgressMode,
    /// Weight in the parent's roll-up; default 1.
    pub weight: Option<f64>,
    /// Required for MANUAL and DATA_SOURCE objectives.
    pub start_value: Option<f64>,
    /// Required for MANUAL and DATA_SOURCE objectives.
    pub target_value: Option<f64>,
}

/// Changes to an objective; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateObjectiveInput {
    pub title: Option<String>,
    pub description: Option<String>,
    /// A new parent; `null` makes the objective a root.
    pub parent_id: MaybeUndefined<ID>,
    pub owner_id: Option<ID>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub progress_mode: Option<ProgressMode>,
    pub weight: Option<f64>,
    pub start_value: Option<f64>,
    pub target_value: Option<f64>,
}

/// A new key result.
#[derive(InputObject)]
pub struct CreateKeyResultInput {
    pub objective_id: ID,
    pub title: String,
    pub kind: KeyResultKind,
    /// Required for a KPI.
    pub kpi_condition: Option<KpiCondition>,
    /// Required for a METRIC.
    pub start_value: Option<f64>,
    pub target_value: f64,
    pub unit: Option<String>,
    /// Weight in the objective's roll-up; default 1.
    pub weight: Option<f64>,
}

/// Changes to a key result; omitted fields stay as they are.
#[derive(InputObject)]
pub struct UpdateKeyResultInput {
    pub title: Option<String>,
    pub kpi_condition: Option<KpiCondition>,
    pub start_value: Option<f64>,
    pub target_value: Option<f64>,
    pub unit: Option<String>,
    pub weight: Option<f64>,
}

/// A manual value for one key result or objective (give exactly one id).
#[derive(InputObject)]
pub struct CheckInInput {
    pub key_result_id: Option<ID>,
    pub objective_id: Option<ID>,
    pub value: f64,
    pub note: Option<String>,
    /// Pause the linked data source so the next sync does not overwrite this value.
    #[graphql(default = false)]
    pub pause_automatic_updates: bool,
}

/// Changes to the OKR tree.
#[derive(Default)]
pub struct OkrMutation;

#[Object]
impl OkrMutation {
    /// Creates an objective; its parent's roll-up includes it at once.
    async fn create_objective(
        &self,
        ctx: &Context<'_>,
        input: CreateObjectiveInput,
    ) -> Result<Objective> {
        let principal = ctx.principal()?;
        let new = NewObjective {
            title: input.title,
            description: input.description,
            parent_id: input.parent_id.map(|id| id.0),
            owner_id: input.owner_id.map(|id| id.0),
            period_start: input.period_start,
            period_end: input.period_end,
            progress_mode: input.progress_mode.into(),
            weight: input.weight,
            start_value: input.start_value,
            target_value: input.target_value,
        };
        let (model, changes) = objectives::create(ctx.db(), principal, new).await?;
        syncer(ctx).publish(&changes).await;
        Ok(Objective(model))
    }

    /// Changes an objective; moving it re-rolls both the old and the new parent.
    async fn update_objective(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateObjectiveInput,
    ) -> Result<Objective> {
        let principal = ctx.principal()?;
        let patch = ObjectivePatch {
            title: input.title,
            description: input.description,
            parent_id: match input.parent_id {
                MaybeUndefined::Undefined => None,
                MaybeUndefined::Null => Some(None),
                MaybeUndefined::Value(id) => Some(Some(id.0)),
            },
            owner_id: input.owner_id.map(|id| id.0),
            period_start: input.period_start,
            period_end: input.period_end,
            progress_mode: input.progress_mode.map(Into::into),
            weight: input.weight,
            start_value: input.start_value,
            target_value: input.target_value,
        };
        let (model, changes) = objectives::update(ctx.db(), principal, &id, patch).await?;
        syncer(ctx).publish(&changes).await;
        Ok(Objective(model))
    }

    /// Deletes an objective with its key results, data source and history.
    /// Its child objectives are kept and move up to its parent (or become roots).
    async fn delete_objective(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let principal = ctx.principal()?;
        let changes = objectives::delete(ctx.db(), principal, &id).await?;
        syncer(ctx).publish(&changes).await;
        Ok(id)
    }

    /// Adds a key result to an objective.
    async fn create_key_result(
        &self,
        ctx: &Context<'_>,
        input: CreateKeyResultInput,
    ) -> Result<KeyResult> {
        let principal = ctx.principal()?;
        let new = NewKeyResult {
            objective_id: input.objective_id.0,
            title: input.title,
            kind: input.kind.into(),
            kpi_condition: input.kpi_condition.map(Into::into),
            start_value: input.start_value,
            target_value: input.target_value,
            unit: input.unit,
            weight: input.weight,
        };
        let (model, changes) = key_results::create(ctx.db(), principal, new).await?;
        syncer(ctx).publish(&changes).await;
        key_result_output(ctx, model).await
    }

    /// Changes a key result; its progress is recomputed from its current value.
    async fn update_key_result(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateKeyResultInput,
    ) -> Result<KeyResult> {
        let principal = ctx.principal()?;
        let patch = KeyResultPatch {
            title: input.title,
            kpi_condition: input.kpi_condition.map(Into::into),
            start_value: input.start_value,
            target_value: input.target_value,
            unit: input.unit,
            weight: input.weight,
        };
        let (model, changes) = key_results::update(ctx.db(), principal, &id, patch).await?;
        syncer(ctx).publish(&changes).await;
        key_result_output(ctx, model).await
    }

    /// Deletes a key result with its data source and history.
    async fn delete_key_result(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let principal = ctx.principal()?;
        let changes = key_results::delete(ctx.db(), principal, &id).await?;
        syncer(ctx).publish(&changes).await;
        Ok(id)
    }

    /// Records a value by hand, writes a history point and re-rolls every ancestor.
    async fn check_in(&self, ctx: &Context<'_>, input: CheckInInput) -> Result<ProgressPoint> {
        let principal = ctx.principal()?;
        let value = NewValue {
            key_result_id: input.key_result_id.map(|id| id.0),
            objective_id: input.objective_id.map(|id| id.0),
            value: input.value,
            note: input.note,
            pause_automatic_updates: input.pause_automatic_updates,
        };
        let (point, changes) = progress::check_in(ctx.db(), principal, value).await?;
        syncer(ctx).publish(&changes).await;
        Ok(point.into())
    }
}
