//! An objective: a node of the alignment tree.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "objectives")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// The objective this one aligns to; none for a root.
    pub parent_id: Option<String>,
    pub owner_id: String,
    pub title: String,
    pub description: String,
    /// First day of the period, inclusive, in the organization's time zone.
    pub period_start: Date,
    /// Last day of the period, inclusive, in the organization's time zone.
    pub period_end: Date,
    pub progress_mode: crate::enums::ProgressMode,
    /// Weight of this objective in its parent's roll-up.
    pub weight: f64,
    /// Own start value, used when progress does not roll up.
    pub start_value: Option<f64>,
    /// Own target value, used when progress does not roll up.
    pub target_value: Option<f64>,
    pub current_value: Option<f64>,
    /// Latest progress in percent (rolled up, or from the own values); none before any value.
    pub progress: Option<f64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
