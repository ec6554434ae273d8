//! A key result of an objective: a metric to move or a KPI to keep.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "key_results")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub objective_id: String,
    pub title: String,
    pub kind: crate::enums::KeyResultKind,
    /// For a KPI only.
    pub kpi_condition: Option<crate::enums::KpiCondition>,
    /// Where a metric starts; none for a KPI.
    pub start_value: Option<f64>,
    pub target_value: f64,
    pub unit: String,
    /// Weight in the objective's roll-up.
    pub weight: f64,
    pub current_value: Option<f64>,
    /// Raw progress in percent (not clamped); none before any value.
    pub progress: Option<f64>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
