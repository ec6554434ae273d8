//! Objectives, key results and check-ins: roots and inputs.

use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::NaiveDate;
use entity::enums::{KeyResultKind, KpiCondition, ProgressMode};

use crate::{
    domain::{
        Node,
        inputs::{self, CheckIn, KeyResultPatch, NewKeyResult, NewObjective, ObjectivePatch},
        validate::{Description, Invalid, Note, Title, Unit, Value, Weight},
    },
    error::AppError,
    store::objectives::{self, ObjectiveFilter},
};

use super::{
    RequestContext, list_limit,
    types::{KeyResult, Objective, ProgressPoint},
};

/// Most objectives one `objectives` list returns.
const MAX_OBJECTIVES: u64 = 5000;

/// Queries over the OKR tree.
#[derive(Default)]
pub struct OkrQuery;

#[Object]
impl OkrQuery {
    /// The organization's objectives, oldest first; only the roots with
    /// `rootsOnly`. With `periodFrom` and/or `periodTo`, only those whose
    /// period overlaps that range (both days inclusive): `periodFrom` and
    /// `periodTo` set to today give the objectives running today. At most
    /// `limit` (1 to 5000) from `offset` on; page with `offset`.
    async fn objectives(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = false)] roots_only: bool,
        period_from: Option<NaiveDate>,
        period_to: Option<NaiveDate>,
        #[graphql(default = 5000)] limit: i32,
        #[graphql(default = 0)] offset: i32,
    ) -> Result<Vec<Objective>> {
        let principal = ctx.principal()?;
        let filter = ObjectiveFilter {
            roots_only,
            period_from,
            period_to,
            limit: list_limit("limit", limit, MAX_OBJECTIVES)?,
            offset: u64::try_from(offset)
                .map_err(|_| AppError::bad_input("offset", "offset must not be negative."))?,
        };
        // Unfiltered, from the first, and nothing past the limit (one row
        // more is read to tell): the page is the whole organization.
        let unfiltered = !filter.roots_only
            && filter.period_from.is_none()
            && filter.period_to.is_none()
            && filter.offset == 0;
        let limit = usize::try_from(filter.limit).unwrap_or(usize::MAX);
        let one_more = ObjectiveFilter {
            limit: filter.limit + 1,
            ..filter
        };
        let mut rows = objectives::list(ctx.db(), &principal.org.id, one_more).await?;
        let whole = unfiltered && rows.len() <= limit;
        rows.truncate(limit);
        ctx.loaders()?
            .prime_objectives(&ctx.look_ahead(), &rows, whole)
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
        Ok(KeyResult::load(ctx, &id).await?)
    }
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

impl TryFrom<CreateObjectiveInput> for NewObjective {
    type Error = Invalid;

    fn try_from(input: CreateObjectiveInput) -> Result<Self, Invalid> {
        Ok(NewObjective {
            title: Title::parse(&input.title)?,
            description: Description::parse(input.description)?,
            period: inputs::period(input.period_start, input.period_end)?,
            weight: Weight::parse(input.weight)?,
            own_range: inputs::own_range(
                input.progress_mode,
                input.start_value,
                input.target_value,
            )?,
            progress_mode: input.progress_mode,
            parent_id: input.parent_id.map(|id| id.0),
            owner_id: input.owner_id.map(|id| id.0),
        })
    }
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

/// `Some(None)` for an explicit null, `None` when left out.
pub fn given<T>(value: MaybeUndefined<T>) -> Option<Option<T>> {
    match value {
        MaybeUndefined::Undefined => None,
        MaybeUndefined::Null => Some(None),
        MaybeUndefined::Value(v) => Some(Some(v)),
    }
}

impl TryFrom<UpdateObjectiveInput> for ObjectivePatch {
    type Error = Invalid;

    fn try_from(input: UpdateObjectiveInput) -> Result<Self, Invalid> {
        Ok(ObjectivePatch {
            title: input.title.as_deref().map(Title::parse).transpose()?,
            description: input
                .description
                .map(|d| Description::parse(Some(d)))
                .transpose()?,
            parent_id: given(input.parent_id).map(|p| p.map(|id| id.0)),
            owner_id: input.owner_id.map(|id| id.0),
            period_start: input.period_start,
            period_end: input.period_end,
            progress_mode: input.progress_mode,
            weight: input.weight.map(|w| Weight::parse(Some(w))).transpose()?,
            start_value: input
                .start_value
                .map(|v| Value::parse("startValue", v))
                .transpose()?,
            target_value: input
                .target_value
                .map(|v| Value::parse("targetValue", v))
                .transpose()?,
        })
    }
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

impl TryFrom<CreateKeyResultInput> for NewKeyResult {
    type Error = Invalid;

    fn try_from(input: CreateKeyResultInput) -> Result<Self, Invalid> {
        Ok(NewKeyResult {
            title: Title::parse(&input.title)?,
            measure: inputs::measure(
                input.kind,
                input.kpi_condition,
                input.start_value,
                input.target_value,
            )?,
            weight: Weight::parse(input.weight)?,
            unit: Unit::parse(input.unit.as_deref())?,
            objective_id: input.objective_id.0,
        })
    }
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

impl TryFrom<UpdateKeyResultInput> for KeyResultPatch {
    type Error = Invalid;

    fn try_from(input: UpdateKeyResultInput) -> Result<Self, Invalid> {
        Ok(KeyResultPatch {
            title: input.title.as_deref().map(Title::parse).transpose()?,
            kpi_condition: input.kpi_condition,
            start_value: input
                .start_value
                .map(|v| Value::parse("startValue", v))
                .transpose()?,
            target_value: input
                .target_value
                .map(|v| Value::parse("targetValue", v))
                .transpose()?,
            unit: input
                .unit
                .as_deref()
                .map(|u| Unit::parse(Some(u)))
                .transpose()?,
            weight: input.weight.map(|w| Weight::parse(Some(w))).transpose()?,
        })
    }
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

impl TryFrom<CheckInInput> for CheckIn {
    type Error = Invalid;

    fn try_from(input: CheckInInput) -> Result<Self, Invalid> {
        Ok(CheckIn {
            note: Note::parse(input.note.as_deref())?,
            value: Value::parse("value", input.value)?,
            node: Node::exactly_one(
                input.key_result_id.map(|id| id.0),
                input.objective_id.map(|id| id.0),
            )?,
            pause_automatic_updates: input.pause_automatic_updates,
        })
    }
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
        let new = NewObjective::try_from(input).map_err(AppError::from)?;
        Ok(Objective(
            ctx.service().create_objective(principal, new).await?,
        ))
    }

    /// Changes an objective; moving it re-rolls both the old and the new parent.
    async fn update_objective(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateObjectiveInput,
    ) -> Result<Objective> {
        let principal = ctx.principal()?;
        let patch = ObjectivePatch::try_from(input).map_err(AppError::from)?;
        Ok(Objective(
            ctx.service()
                .update_objective(principal, &id, patch)
                .await?,
        ))
    }

    /// Deletes an objective with its key results, data source and history.
    /// Its child objectives are kept and move up to its parent (or become roots).
    async fn delete_objective(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let principal = ctx.principal()?;
        ctx.service().delete_objective(principal, &id).await?;
        Ok(id)
    }

    /// Adds a key result to an objective.
    async fn create_key_result(
        &self,
        ctx: &Context<'_>,
        input: CreateKeyResultInput,
    ) -> Result<KeyResult> {
        let principal = ctx.principal()?;
        let new = NewKeyResult::try_from(input).map_err(AppError::from)?;
        let model = ctx.service().create_key_result(principal, new).await?;
        Ok(KeyResult::written(ctx, model).await?)
    }

    /// Changes a key result; its progress is recomputed from its current value.
    async fn update_key_result(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateKeyResultInput,
    ) -> Result<KeyResult> {
        let principal = ctx.principal()?;
        let patch = KeyResultPatch::try_from(input).map_err(AppError::from)?;
        let model = ctx
            .service()
            .update_key_result(principal, &id, patch)
            .await?;
        Ok(KeyResult::written(ctx, model).await?)
    }

    /// Deletes a key result with its data source and history.
    async fn delete_key_result(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let principal = ctx.principal()?;
        ctx.service().delete_key_result(principal, &id).await?;
        Ok(id)
    }

    /// Records a value by hand, writes a history point and re-rolls every ancestor.
    async fn check_in(&self, ctx: &Context<'_>, input: CheckInInput) -> Result<ProgressPoint> {
        let principal = ctx.principal()?;
        let check_in = CheckIn::try_from(input).map_err(AppError::from)?;
        Ok(ctx.service().check_in(principal, check_in).await?.into())
    }
}
