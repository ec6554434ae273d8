//! The OKR tree's output types. They wrap database rows but expose only API
//! fields, computing expected progress and status for the request's instant.

use std::sync::Arc;

use async_graphql::{Context, ID, Object, Result};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{
    enums::{KeyResultKind, KpiCondition, ProgressMode, ProgressSource, Status},
    key_result, objective, progress_point,
};

use crate::{
    domain::{
        Node,
        progress::{Period, evaluate_objective},
    },
    error::AppError,
    store::{history::Window, key_results::measure_of, objectives::period_of},
};

use super::{DataSource, User};
use crate::graphql::list_limit;

/// Most history points one `history` list returns.
const MAX_HISTORY: u64 = 10_000;
use crate::graphql::RequestContext;

/// The points of one node's `history` field, through the request's loader
/// so that a whole tree's histories cost one statement per kind of node.
async fn history_of(
    ctx: &Context<'_>,
    node: Node,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i32,
) -> Result<Vec<ProgressPoint>> {
    let window = history_window(from, to, limit)?;
    let points = ctx
        .loaders()?
        .histories
        .load_one((node, window))
        .await
        .map_err(AppError::from)?;
    Ok(points
        .map(|points| ProgressPoint::all_of(&points))
        .unwrap_or_default())
}

/// The window a `history` field's arguments ask for.
pub fn history_window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: i32,
) -> Result<Window, AppError> {
    Ok(Window {
        from,
        to,
        limit: list_limit("limit", limit, MAX_HISTORY)?,
    })
}

/// The default of a `history` field's `limit` (the `default` attributes
/// below say the same).
pub const HISTORY_DEFAULT_LIMIT: i32 = 1000;

/// One moment of an objective's or key result's history.
///
/// It shares the list it came from, so that a tree's thousands of points
/// are read once and never copied on their way into the response.
#[derive(Clone)]
pub struct ProgressPoint {
    points: Arc<[progress_point::Model]>,
    index: usize,
}

#[Object]
impl ProgressPoint {
    async fn id(&self) -> ID {
        self.model().id.to_string().into()
    }
    async fn objective_id(&self) -> Option<ID> {
        self.model().objective_id.clone().map(ID)
    }
    async fn key_result_id(&self) -> Option<ID> {
        self.model().key_result_id.clone().map(ID)
    }
    async fn at(&self) -> DateTime<Utc> {
        self.model().at
    }
    async fn value(&self) -> Option<f64> {
        self.model().value
    }
    /// Progress in percent, not clamped.
    async fn progress(&self) -> Option<f64> {
        self.model().progress
    }
    async fn expected_progress(&self) -> f64 {
        self.model().expected_progress
    }
    async fn status(&self) -> Status {
        self.model().status
    }
    async fn source(&self) -> ProgressSource {
        self.model().source
    }
    async fn note(&self) -> Option<&str> {
        self.model().note.as_deref()
    }
}

impl ProgressPoint {
    /// Every point of a shared list, in order.
    pub fn all_of(points: &Arc<[progress_point::Model]>) -> Vec<ProgressPoint> {
        (0..points.len())
            .map(|index| ProgressPoint {
                points: points.clone(),
                index,
            })
            .collect()
    }

    /// The newest point of a node's whole history: the one written last,
    /// which is not always the one with the latest `at`.
    pub fn newest_of(points: &Arc<[progress_point::Model]>) -> Option<ProgressPoint> {
        let index = (0..points.len()).max_by_key(|&i| points[i].id)?;
        Some(ProgressPoint {
            points: points.clone(),
            index,
        })
    }

    fn model(&self) -> &progress_point::Model {
        &self.points[self.index]
    }
}

impl From<progress_point::Model> for ProgressPoint {
    fn from(model: progress_point::Model) -> Self {
        ProgressPoint {
            points: Arc::from([model]),
            index: 0,
        }
    }
}

/// An objective: a node of the alignment tree.
pub struct Objective(pub objective::Model);

#[Object]
impl Objective {
    async fn id(&self) -> ID {
        self.0.id.clone().into()
    }
    async fn title(&self) -> &str {
        &self.0.title
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    /// First day of the period (inclusive), in the organization's time zone.
    async fn period_start(&self) -> NaiveDate {
        self.0.period_start
    }
    /// Last day of the period (inclusive), in the organization's time zone.
    async fn period_end(&self) -> NaiveDate {
        self.0.period_end
    }
    async fn progress_mode(&self) -> ProgressMode {
        self.0.progress_mode
    }
    /// Weight of this objective in its parent's roll-up.
    async fn weight(&self) -> f64 {
        self.0.weight
    }
    /// Own start value (MANUAL and DATA_SOURCE objectives).
    async fn start_value(&self) -> Option<f64> {
        self.0.start_value
    }
    /// Own target value (MANUAL and DATA_SOURCE objectives).
    async fn target_value(&self) -> Option<f64> {
        self.0.target_value
    }
    /// Own current value (MANUAL and DATA_SOURCE objectives).
    async fn current_value(&self) -> Option<f64> {
        self.0.current_value
    }
    /// Progress in percent; null before any value.
    async fn progress(&self) -> Option<f64> {
        self.0.progress
    }
    /// Share of the period elapsed, in percent.
    async fn expected_progress(&self, ctx: &Context<'_>) -> Result<f64> {
        Ok(self.evaluate(ctx)?.0)
    }
    async fn status(&self, ctx: &Context<'_>) -> Result<Status> {
        Ok(self.evaluate(ctx)?.1)
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
    /// The objective this one aligns to.
    async fn parent(&self, ctx: &Context<'_>) -> Result<Option<Objective>> {
        let Some(parent_id) = &self.0.parent_id else {
            return Ok(None);
        };
        let parent = ctx
            .loaders()?
            .objectives
            .load_one(parent_id.clone())
            .await
            .map_err(AppError::from)?;
        Ok(parent.map(Objective))
    }
    /// Objectives that align to this one, oldest first; `limit` (at most
    /// MAX_CHILDREN_PER_OBJECTIVE) returns the first ones only.
    async fn children(&self, ctx: &Context<'_>, limit: Option<i32>) -> Result<Vec<Objective>> {
        let max = ctx.service().bounds().children_per_objective;
        let take = match limit {
            Some(asked) => list_limit("limit", asked, max)?,
            None => max,
        };
        let children = ctx
            .loaders()?
            .children
            .load_one(self.0.id.clone())
            .await
            .map_err(AppError::from)?;
        Ok(children
            .iter()
            .flat_map(|c| c.iter())
            .take(take as usize)
            .cloned()
            .map(Objective)
            .collect())
    }
    /// Key results, oldest first; `limit` (at most
    /// MAX_KEY_RESULTS_PER_OBJECTIVE) returns the first ones only.
    async fn key_results(&self, ctx: &Context<'_>, limit: Option<i32>) -> Result<Vec<KeyResult>> {
        let max = ctx.service().bounds().key_results_per_objective;
        let take = match limit {
            Some(asked) => list_limit("limit", asked, max)?,
            None => max,
        };
        let krs = ctx
            .loaders()?
            .key_results
            .load_one(self.0.id.clone())
            .await
            .map_err(AppError::from)?;
        let period = period_of(&self.0);
        Ok(krs
            .iter()
            .flat_map(|k| k.iter())
            .take(take as usize)
            .cloned()
            .map(|model| KeyResult { model, period })
            .collect())
    }
    /// The newest history point.
    async fn latest_point(&self, ctx: &Context<'_>) -> Result<Option<ProgressPoint>> {
        let point = ctx
            .loaders()?
            .latest_points
            .load_one(Node::Objective(self.0.id.clone()))
            .await
            .map_err(AppError::from)?;
        Ok(point.flatten())
    }
    /// The BigQuery query that feeds this objective (DATA_SOURCE mode).
    async fn data_source(&self, ctx: &Context<'_>) -> Result<Option<DataSource>> {
        DataSource::of(ctx, Node::Objective(self.0.id.clone())).await
    }
    /// History points oldest first, optionally between `from` and `to`
    /// (inclusive); at most `limit` (1 to 10000), so page with `from`.
    async fn history(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(default = 1000)] limit: i32,
    ) -> Result<Vec<ProgressPoint>> {
        history_of(ctx, Node::Objective(self.0.id.clone()), from, to, limit).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A key result of an objective.
pub struct KeyResult {
    pub model: key_result::Model,
    /// The objective's period, which expected progress is measured against.
    pub period: Period,
}

#[Object]
impl KeyResult {
    async fn id(&self) -> ID {
        self.model.id.clone().into()
    }
    async fn objective(&self, ctx: &Context<'_>) -> Result<Option<Objective>> {
        let o = ctx
            .loaders()?
            .objectives
            .load_one(self.model.objective_id.clone())
            .await
            .map_err(AppError::from)?;
        Ok(o.map(Objective))
    }
    async fn title(&self) -> &str {
        &self.model.title
    }
    async fn kind(&self) -> KeyResultKind {
        self.model.kind
    }
    async fn kpi_condition(&self) -> Option<KpiCondition> {
        self.model.kpi_condition
    }
    async fn start_value(&self) -> Option<f64> {
        self.model.start_value
    }
    async fn target_value(&self) -> f64 {
        self.model.target_value
    }
    async fn unit(&self) -> &str {
        &self.model.unit
    }
    /// Weight in the objective's roll-up.
    async fn weight(&self) -> f64 {
        self.model.weight
    }
    async fn current_value(&self) -> Option<f64> {
        self.model.current_value
    }
    /// Progress in percent, not clamped (120 means the target was overshot); null before any value.
    async fn progress(&self) -> Option<f64> {
        self.model.progress
    }
    /// Share of the objective's period elapsed, in percent.
    async fn expected_progress(&self, ctx: &Context<'_>) -> Result<f64> {
        Ok(self.evaluate(ctx)?.0)
    }
    async fn status(&self, ctx: &Context<'_>) -> Result<Status> {
        Ok(self.evaluate(ctx)?.1)
    }
    /// The newest history point.
    async fn latest_point(&self, ctx: &Context<'_>) -> Result<Option<ProgressPoint>> {
        let point = ctx
            .loaders()?
            .latest_points
            .load_one(Node::KeyResult(self.model.id.clone()))
            .await
            .map_err(AppError::from)?;
        Ok(point.flatten())
    }
    /// The BigQuery query that feeds this key result.
    async fn data_source(&self, ctx: &Context<'_>) -> Result<Option<DataSource>> {
        DataSource::of(ctx, Node::KeyResult(self.model.id.clone())).await
    }
    /// History points oldest first, optionally between `from` and `to`
    /// (inclusive); at most `limit` (1 to 10000), so page with `from`.
    async fn history(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(default = 1000)] limit: i32,
    ) -> Result<Vec<ProgressPoint>> {
        history_of(ctx, Node::KeyResult(self.model.id.clone()), from, to, limit).await
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
}

impl Objective {
    /// Expected progress and status at the request's instant.
    fn evaluate(&self, ctx: &Context<'_>) -> Result<(f64, Status), AppError> {
        Ok(evaluate_objective(
            self.0.progress,
            period_of(&self.0),
            ctx.scoring()?,
            ctx.now(),
        ))
    }
}

impl KeyResult {
    /// A key result of the caller's organization, with its objective's
    /// period; none when either does not exist there.
    pub async fn load(ctx: &Context<'_>, id: &str) -> Result<Option<KeyResult>, AppError> {
        let org_id = &ctx.principal()?.org.id;
        let Some(model) = crate::store::key_results::get(ctx.db(), org_id, id).await? else {
            return Ok(None);
        };
        let Some(objective) =
            crate::store::objectives::get(ctx.db(), org_id, &model.objective_id).await?
        else {
            return Ok(None);
        };
        Ok(Some(KeyResult {
            model,
            period: period_of(&objective),
        }))
    }

    /// Wraps a key result that was just written, with its objective's period.
    pub async fn written(
        ctx: &Context<'_>,
        model: key_result::Model,
    ) -> Result<KeyResult, AppError> {
        let id = model.id.clone();
        KeyResult::load(ctx, &id)
            .await?
            .ok_or_else(|| AppError::not_found("key result", id))
    }

    /// Expected progress and status at the request's instant.
    fn evaluate(&self, ctx: &Context<'_>) -> Result<(f64, Status), AppError> {
        Ok(measure_of(&self.model)?.evaluate(
            self.model.current_value,
            self.model.progress,
            self.period,
            ctx.scoring()?,
            ctx.now(),
        ))
    }
}
