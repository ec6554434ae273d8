//! One run of a data source's query: the sync log.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sync_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub org_id: String,
    pub data_source_id: String,
    pub started_at: DateTimeUtc,
    pub duration_ms: i64,
    pub outcome: crate::enums::SyncOutcome,
    pub trigger: crate::enums::SyncTrigger,
    pub job_id: Option<String>,
    pub bytes_processed: Option<i64>,
    pub value: Option<f64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub error_reason: Option<String>,
    /// Attempts made, retries of transient failures included.
    pub attempts: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
