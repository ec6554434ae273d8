//! The first schema: organizations, users, connections and their shares,
//! objectives, key results, data sources, sync runs and progress points.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Slug,
    Name,
    BehindThreshold,
    AtRiskThreshold,
    TimeZone,
    MembersCanCreateConnections,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    OrgId,
    Subject,
    Email,
    Name,
    Role,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Connections {
    Table,
    Id,
    OrgId,
    Name,
    ProjectId,
    Location,
    OwnerId,
    SharedWithEveryone,
    MaximumBytesBilled,
    LastTestOk,
    LastTestMessage,
    LastTestedAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ConnectionShares {
    Table,
    ConnectionId,
    UserId,
}

#[derive(DeriveIden)]
enum Objectives {
    Table,
    Id,
    OrgId,
    ParentId,
    OwnerId,
    Title,
    Description,
    PeriodStart,
    PeriodEnd,
    ProgressMode,
    Weight,
    StartValue,
    TargetValue,
    CurrentValue,
    Progress,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum KeyResults {
    Table,
    Id,
    OrgId,
    ObjectiveId,
    Title,
    Kind,
    KpiCondition,
    StartValue,
    TargetValue,
    Unit,
    Weight,
    CurrentValue,
    Progress,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DataSources {
    Table,
    Id,
    OrgId,
    ConnectionId,
    ObjectiveId,
    KeyResultId,
    Sql,
    SyncIntervalSeconds,
    State,
    LastValue,
    LastSyncedAt,
    NextSyncAt,
    LastErrorCode,
    LastErrorMessage,
    LastErrorAt,
    ConsecutiveFailures,
    LeaseOwner,
    LeaseExpiresAt,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SyncRuns {
    Table,
    Id,
    OrgId,
    DataSourceId,
    StartedAt,
    DurationMs,
    Outcome,
    Trigger,
    JobId,
    BytesProcessed,
    Value,
    ErrorCode,
    ErrorMessage,
}

#[derive(DeriveIden)]
enum ProgressPoints {
    Table,
    Id,
    OrgId,
    ObjectiveId,
    KeyResultId,
    At,
    Value,
    Progress,
    ExpectedProgress,
    Status,
    Source,
    Note,
}

/// A foreign key from `from_table.from_col` to `to_table.id`.
fn fk(
    from_table: impl IntoIden,
    from_col: impl IntoIden,
    to_table: impl IntoIden,
    on_delete: ForeignKeyAction,
) -> ForeignKeyCreateStatement {
    let from_table = from_table.into_iden();
    let from_col = from_col.into_iden();
    let to_table = to_table.into_iden();
    ForeignKey::create()
        .name(format!("fk_{from_table}_{from_col}"))
        .from(from_table, from_col)
        .to(to_table, Alias::new("id"))
        .on_delete(on_delete)
        .take()
}

/// An index on `table (cols…)`, named after them.
fn index(table: impl IntoIden, cols: &[&'static str], unique: bool) -> IndexCreateStatement {
    let table = table.into_iden();
    let mut stmt = Index::create();
    stmt.name(format!("ix_{table}_{}", cols.join("_")))
        .table(table);
    for col in cols {
        stmt.col(Alias::new(*col));
    }
    if unique {
        stmt.unique();
    }
    stmt.take()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        use ForeignKeyAction::{Cascade, Restrict};

        manager
            .create_table(
                Table::create()
                    .table(Organizations::Table)
                    .col(string(Organizations::Id).primary_key())
                    .col(string_uniq(Organizations::Slug))
                    .col(string(Organizations::Name))
                    .col(double(Organizations::BehindThreshold))
                    .col(double(Organizations::AtRiskThreshold))
                    .col(string(Organizations::TimeZone))
                    .col(boolean(Organizations::MembersCanCreateConnections))
                    .col(timestamp_with_time_zone(Organizations::CreatedAt))
                    .col(timestamp_with_time_zone(Organizations::UpdatedAt))
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(string(Users::Id).primary_key())
                    .col(string(Users::OrgId))
                    .col(string(Users::Subject))
                    .col(string(Users::Email))
                    .col(string(Users::Name))
                    .col(string(Users::Role))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .foreign_key(&mut fk(
                        Users::Table,
                        Users::OrgId,
                        Organizations::Table,
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(Users::Table, &["org_id", "subject"], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Connections::Table)
                    .col(string(Connections::Id).primary_key())
                    .col(string(Connections::OrgId))
                    .col(string(Connections::Name))
                    .col(string(Connections::ProjectId))
                    .col(string_null(Connections::Location))
                    .col(string(Connections::OwnerId))
                    .col(boolean(Connections::SharedWithEveryone))
                    .col(big_integer_null(Connections::MaximumBytesBilled))
                    .col(boolean_null(Connections::LastTestOk))
                    .col(text_null(Connections::LastTestMessage))
                    .col(timestamp_with_time_zone_null(Connections::LastTestedAt))
                    .col(timestamp_with_time_zone(Connections::CreatedAt))
                    .col(timestamp_with_time_zone(Connections::UpdatedAt))
                    .foreign_key(&mut fk(
                        Connections::Table,
                        Connections::OrgId,
                        Organizations::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        Connections::Table,
                        Connections::OwnerId,
                        Users::Table,
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(Connections::Table, &["org_id", "name"], true))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ConnectionShares::Table)
                    .col(string(ConnectionShares::ConnectionId))
                    .col(string(ConnectionShares::UserId))
                    .primary_key(
                        Index::create()
                            .col(ConnectionShares::ConnectionId)
                            .col(ConnectionShares::UserId),
                    )
                    .foreign_key(&mut fk(
                        ConnectionShares::Table,
                        ConnectionShares::ConnectionId,
                        Connections::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        ConnectionShares::Table,
                        ConnectionShares::UserId,
                        Users::Table,
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(ConnectionShares::Table, &["user_id"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(Objectives::Table)
                    .col(string(Objectives::Id).primary_key())
                    .col(string(Objectives::OrgId))
                    .col(string_null(Objectives::ParentId))
                    .col(string(Objectives::OwnerId))
                    .col(string(Objectives::Title))
                    .col(text(Objectives::Description))
                    .col(date(Objectives::PeriodStart))
                    .col(date(Objectives::PeriodEnd))
                    .col(string(Objectives::ProgressMode))
                    .col(double(Objectives::Weight))
                    .col(double_null(Objectives::StartValue))
                    .col(double_null(Objectives::TargetValue))
                    .col(double_null(Objectives::CurrentValue))
                    .col(double_null(Objectives::Progress))
                    .col(timestamp_with_time_zone(Objectives::CreatedAt))
                    .col(timestamp_with_time_zone(Objectives::UpdatedAt))
                    .foreign_key(&mut fk(
                        Objectives::Table,
                        Objectives::OrgId,
                        Organizations::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        Objectives::Table,
                        Objectives::ParentId,
                        Objectives::Table,
                        Restrict,
                    ))
                    .foreign_key(&mut fk(
                        Objectives::Table,
                        Objectives::OwnerId,
                        Users::Table,
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(Objectives::Table, &["org_id", "parent_id"], false))
            .await?;
        manager
            .create_index(index(Objectives::Table, &["parent_id"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(KeyResults::Table)
                    .col(string(KeyResults::Id).primary_key())
                    .col(string(KeyResults::OrgId))
                    .col(string(KeyResults::ObjectiveId))
                    .col(string(KeyResults::Title))
                    .col(string(KeyResults::Kind))
                    .col(string_null(KeyResults::KpiCondition))
                    .col(double_null(KeyResults::StartValue))
                    .col(double(KeyResults::TargetValue))
                    .col(string(KeyResults::Unit))
                    .col(double(KeyResults::Weight))
                    .col(double_null(KeyResults::CurrentValue))
                    .col(double_null(KeyResults::Progress))
                    .col(timestamp_with_time_zone(KeyResults::CreatedAt))
                    .col(timestamp_with_time_zone(KeyResults::UpdatedAt))
                    .foreign_key(&mut fk(
                        KeyResults::Table,
                        KeyResults::OrgId,
                        Organizations::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        KeyResults::Table,
                        KeyResults::ObjectiveId,
                        Objectives::Table,
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(KeyResults::Table, &["objective_id"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(DataSources::Table)
                    .col(string(DataSources::Id).primary_key())
                    .col(string(DataSources::OrgId))
                    .col(string(DataSources::ConnectionId))
                    .col(string_null(DataSources::ObjectiveId))
                    .col(string_null(DataSources::KeyResultId))
                    .col(text(DataSources::Sql))
                    .col(big_integer(DataSources::SyncIntervalSeconds))
                    .col(string(DataSources::State))
                    .col(double_null(DataSources::LastValue))
                    .col(timestamp_with_time_zone_null(DataSources::LastSyncedAt))
                    .col(timestamp_with_time_zone(DataSources::NextSyncAt))
                    .col(string_null(DataSources::LastErrorCode))
                    .col(text_null(DataSources::LastErrorMessage))
                    .col(timestamp_with_time_zone_null(DataSources::LastErrorAt))
                    .col(integer(DataSources::ConsecutiveFailures))
                    .col(string_null(DataSources::LeaseOwner))
                    .col(timestamp_with_time_zone_null(DataSources::LeaseExpiresAt))
                    .col(string(DataSources::CreatedBy))
                    .col(timestamp_with_time_zone(DataSources::CreatedAt))
                    .col(timestamp_with_time_zone(DataSources::UpdatedAt))
                    .foreign_key(&mut fk(
                        DataSources::Table,
                        DataSources::OrgId,
                        Organizations::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        DataSources::Table,
                        DataSources::ConnectionId,
                        Connections::Table,
                        Restrict,
                    ))
                    .foreign_key(&mut fk(
                        DataSources::Table,
                        DataSources::ObjectiveId,
                        Objectives::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        DataSources::Table,
                        DataSources::KeyResultId,
                        KeyResults::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        DataSources::Table,
                        DataSources::CreatedBy,
                        Users::Table,
                        Restrict,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(DataSources::Table, &["objective_id"], true))
            .await?;
        manager
            .create_index(index(DataSources::Table, &["key_result_id"], true))
            .await?;
        manager
            .create_index(index(DataSources::Table, &["connection_id"], false))
            .await?;
        manager
            .create_index(index(DataSources::Table, &["next_sync_at"], false))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(SyncRuns::Table)
                    .col(big_pk_auto(SyncRuns::Id))
                    .col(string(SyncRuns::OrgId))
                    .col(string(SyncRuns::DataSourceId))
                    .col(timestamp_with_time_zone(SyncRuns::StartedAt))
                    .col(big_integer(SyncRuns::DurationMs))
                    .col(string(SyncRuns::Outcome))
                    .col(string(SyncRuns::Trigger))
                    .col(string_null(SyncRuns::JobId))
                    .col(big_integer_null(SyncRuns::BytesProcessed))
                    .col(double_null(SyncRuns::Value))
                    .col(string_null(SyncRuns::ErrorCode))
                    .col(text_null(SyncRuns::ErrorMessage))
                    .foreign_key(&mut fk(
                        SyncRuns::Table,
                        SyncRuns::OrgId,
                        Organizations::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        SyncRuns::Table,
                        SyncRuns::DataSourceId,
                        DataSources::Table,
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                SyncRuns::Table,
                &["data_source_id", "started_at"],
                false,
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ProgressPoints::Table)
                    .col(big_pk_auto(ProgressPoints::Id))
                    .col(string(ProgressPoints::OrgId))
                    .col(string_null(ProgressPoints::ObjectiveId))
                    .col(string_null(ProgressPoints::KeyResultId))
                    .col(timestamp_with_time_zone(ProgressPoints::At))
                    .col(double_null(ProgressPoints::Value))
                    .col(double_null(ProgressPoints::Progress))
                    .col(double(ProgressPoints::ExpectedProgress))
                    .col(string(ProgressPoints::Status))
                    .col(string(ProgressPoints::Source))
                    .col(text_null(ProgressPoints::Note))
                    .foreign_key(&mut fk(
                        ProgressPoints::Table,
                        ProgressPoints::OrgId,
                        Organizations::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        ProgressPoints::Table,
                        ProgressPoints::ObjectiveId,
                        Objectives::Table,
                        Cascade,
                    ))
                    .foreign_key(&mut fk(
                        ProgressPoints::Table,
                        ProgressPoints::KeyResultId,
                        KeyResults::Table,
                        Cascade,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(ProgressPoints::Table, &["objective_id", "at"], false))
            .await?;
        manager
            .create_index(index(
                ProgressPoints::Table,
                &["key_result_id", "at"],
                false,
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ProgressPoints::Table.into_iden(),
            SyncRuns::Table.into_iden(),
            DataSources::Table.into_iden(),
            KeyResults::Table.into_iden(),
            Objectives::Table.into_iden(),
            ConnectionShares::Table.into_iden(),
            Connections::Table.into_iden(),
            Users::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
