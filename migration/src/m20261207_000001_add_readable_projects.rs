//! Lets an admin name the other projects a connection's queries may read
//! (comma-separated project ids): a query whose dry run reads a table of
//! any other project is refused, so one organization cannot reach another
//! customer's data through the server's identity.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Connections {
    Table,
    ReadableProjects,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Connections::Table)
                    .add_column(string(Connections::ReadableProjects).default(""))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Connections::Table)
                    .drop_column(Connections::ReadableProjects)
                    .to_owned(),
            )
            .await
    }
}
