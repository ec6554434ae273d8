//! Database migrations for okr-pulse, run at start-up on SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261125_000001_create_tables;
mod m20261125_000002_add_error_detail;
mod m20261207_000001_add_readable_projects;

/// Every migration, oldest first.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_tables::Migration),
            Box::new(m20261125_000002_add_error_detail::Migration),
            Box::new(m20261207_000001_add_readable_projects::Migration),
        ]
    }
}
