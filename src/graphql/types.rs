//! Output types and enums. They wrap database rows but expose only API
//! fields, computing expected progress and status for the request's instant.

use async_graphql::{Context, Enum, ID, Object, Result, SimpleObject};
use chrono::{DateTime, NaiveDate, Utc};
use entity::{key_result, objective, organization, progress_point, user};

use crate::{
    domain::progress::{self, Period},
    store::{
        self,
        progress::{HistoryOf, key_result_status, objective_status, period_of},
    },
};

use super::{RequestContext, loaders::NodeKey};

/// Where an OKR stands against where it should be by now.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Status {
    NotStarted,
    OnTrack,
    Behind,
    AtRisk,
}

impl From<progress::Status> for Status {
    fn from(s: progress::Status) -> Self {
        match s {
            progress::Status::NotStarted => Status::NotStarted,
            progress::Status::OnTrack => Status::OnTrack,
            progress::Status::Behind => Status::Behind,
            progress::Status::AtRisk => Status::AtRisk,
        }
    }
}

/// How an objective gets its progress.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug, Default)]
pub enum ProgressMode {
    /// Weighted average of its METRIC key results and child objectives.
    #[default]
    RollUp,
    /// Its own value, from a linked BigQuery query.
    DataSource,
    /// Its own value, from check-ins.
    Manual,
}

impl From<ProgressMode> for store::progress::ProgressMode {
    fn from(m: ProgressMode) -> Self {
        match m {
            ProgressMode::RollUp => Self::RollUp,
            ProgressMode::DataSource => Self::DataSource,
            ProgressMode::Manual => Self::Manual,
        }
    }
}

impl From<store::progress::ProgressMode> for ProgressMode {
    fn from(m: store::progress::ProgressMode) -> Self {
        use store::progress::ProgressMode as M;
        match m {
            M::RollUp => ProgressMode::RollUp,
            M::DataSource => ProgressMode::DataSource,
            M::Manual => ProgressMode::Manual,
        }
    }
}

/// What a key result measures.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum KeyResultKind {
    /// A number to move from startValue to targetValue.
    Metric,
    /// A number to keep at least or at most targetValue; never rolls up.
    Kpi,
}

impl From<KeyResultKind> for progress::KeyResultKind {
    fn from(k: KeyResultKind) -> Self {
        match k {
            KeyResultKind::Metric => Self::Metric,
            KeyResultKind::Kpi => Self::Kpi,
        }
    }
}

/// Which side of its target a KPI must stay on.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum KpiCondition {
    AtLeast,
    AtMost,
}

impl From<KpiCondition> for progress::KpiCondition {
    fn from(k: KpiCondition) -> Self {
        match k {
            KpiCondition::AtLeast => Self::AtLeast,
            KpiCondition::AtMost => Self::AtMost,
        }
    }
}

/// Where a history point's value came from.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum ProgressSource {
    Sync,
    Refresh,
    CheckIn,
    RollUp,
}

/// A user's role in their organization.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum Role {
    Admin,
    Member,
}

/// A person in the organization.
#[derive(SimpleObject)]
pub struct User {
    pub id: ID,
    pub email: String,
    pub name: String,
    pub role: Role,
}

impl From<user::Model> for User {
    fn from(u: user::Model) -> Self {
        User {
            id: u.id.into(),
            email: u.email,
            name: u.name,
            role: if u.role == "ADMIN" {
                Role::Admin
            } else {
                Role::Member
            },
        }
    }
}

/// The caller's organization and its settings.
#[derive(SimpleObject)]
pub struct Organization {
    pub id: ID,
    /// The `org` claim of its tokens.
    pub slug: String,
    pub name: String,
    /// IANA time zone in which periods start and end.
    pub time_zone: String,
    /// Shortfall in percentage points up to which an OKR is on track.
    pub behind_threshold: f64,
    /// Shortfall in percentage points above which an OKR is at risk.
    pub at_risk_threshold: f64,
    /// Whether members may create BigQuery connections of their own.
    pub members_can_create_connections: bool,
}

impl From<organization::Model> for Organization {
    fn from(o: organization::Model) -> Self {
        Organization {
            id: o.id.into(),
            slug: o.slug,
            name: o.name,
            time_zone: o.time_zone,
            behind_threshold: o.behind_threshold,
            at_risk_threshold: o.at_risk_threshold,
            members_can_create_connections: o.members_can_create_connections,
        }
    }
}

/// One moment of an objective's or key result's history.
pub struct ProgressPoint {
    pub model: progress_point::Model,
}

#[Object]
impl ProgressPoint {
    async fn id(&self) -> ID {
        self.model.id.to_string().into()
    }
    async fn objective_id(&self) -> Option<ID> {
        self.model.objective_id.clone().map(ID)
    }
    async fn key_result_id(&self) -> Option<ID> {
        self.model.key_result_id.clone().map(ID)
    }
    async fn at(&self) -> DateTime<Utc> {
        self.model.at
    }
    async fn value(&self) -> Option<f64> {
        self.model.value
    }
    /// Progress in percent, not clamped.
    async fn progress(&self) -> Option<f64> {
        self.model.progress
    }
    async fn expected_progress(&self) -> f64 {
        self.model.expected_progress
    }
    async fn status(&self) -> Status {
        progress::Status::parse(&self.model.status).into()
    }
    async fn source(&self) -> ProgressSource {
        match self.model.source.as_str() {
            "SYNC" => ProgressSource::Sync,
            "REFRESH" => ProgressSource::Refresh,
            "ROLL_UP" => ProgressSource::RollUp,
            _ => ProgressSource::CheckIn,
        }
    }
    async fn note(&self) -> Option<&str> {
        self.model.note.as_deref()
    }
}

impl From<progress_point::Model> for ProgressPoint {
    fn from(model: progress_point::Model) -> Self {
        ProgressPoint { model }
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
        store::progress::ProgressMode::parse(&self.0.progress_mode).into()
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
        Ok(objective_status(&self.0, self.0.progress, ctx.scoring()?, ctx.now()).0)
    }
    async fn status(&self, ctx: &Context<'_>) -> Result<Status> {
        Ok(
            objective_status(&self.0, self.0.progress, ctx.scoring()?, ctx.now())
                .1
                .into(),
        )
    }
    async fn owner(&self, ctx: &Context<'_>) -> Result<Option<User>> {
        let user = ctx
            .loaders()?
            .users
            .load_one(self.0.owner_id.clone())
            .await
            .map_err(crate::error::AppError::from)?;
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
            .map_err(crate::error::AppError::from)?;
        Ok(parent.map(Objective))
    }
    /// Objectives that align to this one, oldest first.
    async fn children(&self, ctx: &Context<'_>) -> Result<Vec<Objective>> {
        let children = ctx
            .loaders()?
            .children
            .load_one(self.0.id.clone())
            .await
            .map_err(crate::error::AppError::from)?;
        Ok(children
            .unwrap_or_default()
            .into_iter()
            .map(Objective)
            .collect())
    }
    /// Key results, oldest first.
    async fn key_results(&self, ctx: &Context<'_>) -> Result<Vec<KeyResult>> {
        let krs = ctx
            .loaders()?
            .key_results
            .load_one(self.0.id.clone())
            .await
            .map_err(crate::error::AppError::from)?;
        let period = period_of(&self.0);
        Ok(krs
            .unwrap_or_default()
            .into_iter()
            .map(|model| KeyResult { model, period })
            .collect())
    }
    /// The newest history point.
    async fn latest_point(&self, ctx: &Context<'_>) -> Result<Option<ProgressPoint>> {
        let point = ctx
            .loaders()?
            .latest_points
            .load_one(NodeKey::Objective(self.0.id.clone()))
            .await
            .map_err(crate::error::AppError::from)?;
        Ok(point.flatten().map(ProgressPoint::from))
    }
    /// The BigQuery query that feeds this objective (DATA_SOURCE mode).
    async fn data_source(&self, ctx: &Context<'_>) -> Result<Option<super::bigquery::DataSource>> {
        super::bigquery::DataSource::of(ctx, NodeKey::Objective(self.0.id.clone())).await
    }
    /// History points oldest first, optionally between `from` and `to` (inclusive).
    async fn history(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<ProgressPoint>> {
        let org_id = &ctx.principal()?.org.id;
        let points =
            store::progress::history(ctx.db(), org_id, HistoryOf::Objective(&self.0.id), from, to)
                .await?;
        Ok(points.into_iter().map(ProgressPoint::from).collect())
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
            .map_err(crate::error::AppError::from)?;
        Ok(o.map(Objective))
    }
    async fn title(&self) -> &str {
        &self.model.title
    }
    async fn kind(&self) -> KeyResultKind {
        match store::progress::kind_of(&self.model) {
            progress::KeyResultKind::Metric => KeyResultKind::Metric,
            progress::KeyResultKind::Kpi => KeyResultKind::Kpi,
        }
    }
    async fn kpi_condition(&self) -> Option<KpiCondition> {
        match self.model.kpi_condition.as_deref() {
            Some("AT_LEAST") => Some(KpiCondition::AtLeast),
            Some("AT_MOST") => Some(KpiCondition::AtMost),
            _ => None,
        }
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
        Ok(self.evaluate(ctx)?.1.into())
    }
    /// The newest history point.
    async fn latest_point(&self, ctx: &Context<'_>) -> Result<Option<ProgressPoint>> {
        let point = ctx
            .loaders()?
            .latest_points
            .load_one(NodeKey::KeyResult(self.model.id.clone()))
            .await
            .map_err(crate::error::AppError::from)?;
        Ok(point.flatten().map(ProgressPoint::from))
    }
    /// The BigQuery query that feeds this key result.
    async fn data_source(&self, ctx: &Context<'_>) -> Result<Option<super::bigquery::DataSource>> {
        super::bigquery::DataSource::of(ctx, NodeKey::KeyResult(self.model.id.clone())).await
    }
    /// History points oldest first, optionally between `from` and `to` (inclusive).
    async fn history(
        &self,
        ctx: &Context<'_>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Vec<ProgressPoint>> {
        let org_id = &ctx.principal()?.org.id;
        let points = store::progress::history(
            ctx.db(),
            org_id,
            HistoryOf::KeyResult(&self.model.id),
            from,
            to,
        )
        .await?;
        Ok(points.into_iter().map(ProgressPoint::from).collect())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.model.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.model.updated_at
    }
}

impl KeyResult {
    fn evaluate(&self, ctx: &Context<'_>) -> Result<(f64, progress::Status)> {
        Ok(key_result_status(
            &self.model,
            self.model.progress,
            self.period,
            ctx.scoring()?,
            ctx.now(),
        ))
    }
}
