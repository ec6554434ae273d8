//! History: the state of an objective or key result at one moment.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "progress_points")]
pub struct Model {
    /// Increasing, so that points written in the same instant keep their order.
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: String,
    /// Set on an objective's own points.
    pub objective_id: Option<String>,
    /// Set on a key result's points.
    pub key_result_id: Option<String>,
    pub at: DateTimeUtc,
    pub value: Option<f64>,
    pub progress: Option<f64>,
    pub expected_progress: f64,
    pub status: crate::enums::Status,
    pub source: crate::enums::ProgressSource,
    pub note: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
