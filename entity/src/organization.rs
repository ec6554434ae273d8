//! A tenant: everything else belongs to exactly one organization.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "organizations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The `org` claim of the tokens that belong to this organization.
    #[sea_orm(unique)]
    pub slug: String,
    pub name: String,
    /// Shortfall (percentage points) up to which an OKR is still on track.
    pub behind_threshold: f64,
    /// Shortfall (percentage points) above which an OKR is at risk.
    pub at_risk_threshold: f64,
    /// IANA time zone in which OKR periods start and end.
    pub time_zone: String,
    /// Whether members may create BigQuery connections of their own.
    pub members_can_create_connections: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
