//! Keeps BigQuery's reason and whether a failure was transient, on the data
//! source's last error and on each sync run, so clients can tell "fix your
//! SQL" from "BigQuery hiccuped, the next sync will retry".

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DataSources {
    Table,
    LastErrorReason,
    LastErrorTransient,
}

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    ErrorReason,
    Attempts,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        manager
            .alter_table(
                Table::alter()
                    .table(DataSources::Table)
                    .add_column(string_null(DataSources::LastErrorReason))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(DataSources::Table)
                    .add_column(boolean_null(DataSources::LastErrorTransient))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SyncRuns::Table)
                    .add_column(string_null(SyncRuns::ErrorReason))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(SyncRuns::Table)
                    .add_column(integer(SyncRuns::Attempts).default(1))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column) in [
            (
                DataSources::Table.into_iden(),
                DataSources::LastErrorReason.into_iden(),
            ),
            (
                DataSources::Table.into_iden(),
                DataSources::LastErrorTransient.into_iden(),
            ),
            (
                SyncRuns::Table.into_iden(),
                SyncRuns::ErrorReason.into_iden(),
            ),
            (SyncRuns::Table.into_iden(), SyncRuns::Attempts.into_iden()),
        ] {
            manager
                .alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
