//! A BigQuery connection: a GCP project queried with the server's own account.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "connections")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    /// Unique within the organization.
    pub name: String,
    pub project_id: String,
    /// BigQuery location (`US`, `EU`, `europe-west2` …); none lets BigQuery decide.
    pub location: Option<String>,
    pub owner_id: String,
    pub shared_with_everyone: bool,
    /// Cap on bytes billed per job; none means the server's default.
    pub maximum_bytes_billed: Option<i64>,
    /// Other projects whose tables the connection's queries may read,
    /// comma-separated; empty for none.
    pub readable_projects: String,
    pub last_test_ok: Option<bool>,
    pub last_test_message: Option<String>,
    pub last_tested_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
