//! A BigQuery query that feeds the value of one objective or key result.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "data_sources")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub connection_id: String,
    /// Set when the data source feeds an objective.
    #[sea_orm(unique)]
    pub objective_id: Option<String>,
    /// Set when the data source feeds a key result.
    #[sea_orm(unique)]
    pub key_result_id: Option<String>,
    pub sql: String,
    pub sync_interval_seconds: i64,
    pub state: crate::enums::DataSourceState,
    pub last_value: Option<f64>,
    pub last_synced_at: Option<DateTimeUtc>,
    pub next_sync_at: DateTimeUtc,
    pub last_error_code: Option<String>,
    pub last_error_message: Option<String>,
    pub last_error_at: Option<DateTimeUtc>,
    /// BigQuery's reason for the last error (`invalidQuery`, `backendError` …).
    pub last_error_reason: Option<String>,
    /// Whether the last error may go away by itself.
    pub last_error_transient: Option<bool>,
    pub consecutive_failures: i32,
    /// The replica that holds the sync lease, while one does.
    pub lease_owner: Option<String>,
    /// When the lease lapses and another replica may take the sync over.
    pub lease_expires_at: Option<DateTimeUtc>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
