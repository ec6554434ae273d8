//! Every stored word, as one typed definition.
//!
//! Each enumeration is stored as its upper-case API name in a text column,
//! so SQLite and PostgreSQL hold the same values and a person reading the
//! database sees the API's words. A stored value that is not listed here
//! fails to load instead of reading as some default. With the `graphql`
//! feature the same types are the schema's enums, so a word is added or
//! renamed in one place.

use sea_orm::entity::prelude::*;

/// Where an OKR stands against where it should be by now.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Status {
    #[sea_orm(string_value = "NOT_STARTED")]
    NotStarted,
    #[sea_orm(string_value = "ON_TRACK")]
    OnTrack,
    #[sea_orm(string_value = "BEHIND")]
    Behind,
    #[sea_orm(string_value = "AT_RISK")]
    AtRisk,
}

/// Where a history point's value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ProgressSource {
    #[sea_orm(string_value = "SYNC")]
    Sync,
    #[sea_orm(string_value = "REFRESH")]
    Refresh,
    #[sea_orm(string_value = "CHECK_IN")]
    CheckIn,
    #[sea_orm(string_value = "ROLL_UP")]
    RollUp,
}

/// How an objective gets its progress.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum ProgressMode {
    /// Weighted average of its METRIC key results and child objectives.
    #[default]
    #[sea_orm(string_value = "ROLL_UP")]
    RollUp,
    /// Its own value, from a linked BigQuery query.
    #[sea_orm(string_value = "DATA_SOURCE")]
    DataSource,
    /// Its own value, from check-ins.
    #[sea_orm(string_value = "MANUAL")]
    Manual,
}

/// What a key result measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum KeyResultKind {
    /// A number to move from startValue to targetValue.
    #[sea_orm(string_value = "METRIC")]
    Metric,
    /// A number to keep at least or at most targetValue; never rolls up.
    #[sea_orm(string_value = "KPI")]
    Kpi,
}

/// Which side of its target a KPI must stay on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum KpiCondition {
    #[sea_orm(string_value = "AT_LEAST")]
    AtLeast,
    #[sea_orm(string_value = "AT_MOST")]
    AtMost,
}

/// A user's role in their organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum Role {
    #[sea_orm(string_value = "ADMIN")]
    Admin,
    #[sea_orm(string_value = "MEMBER")]
    Member,
}

/// Whether a data source is healthy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum DataSourceState {
    /// Linked, not yet synced.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// The last run succeeded.
    #[sea_orm(string_value = "OK")]
    Ok,
    /// The last run failed; the last good value is kept.
    #[sea_orm(string_value = "ERROR")]
    Error,
    /// Syncs are paused (a manual check-in is kept).
    #[sea_orm(string_value = "PAUSED")]
    Paused,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum SyncOutcome {
    /// A new value was recorded.
    #[sea_orm(string_value = "OK")]
    Ok,
    /// The value had not moved; no history point was written.
    #[sea_orm(string_value = "UNCHANGED")]
    Unchanged,
    #[sea_orm(string_value = "ERROR")]
    Error,
}

/// What started a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[cfg_attr(feature = "graphql", derive(async_graphql::Enum))]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum SyncTrigger {
    /// Linking, or a change of SQL or connection.
    #[sea_orm(string_value = "LINK")]
    Link,
    /// The hourly (or configured) schedule.
    #[sea_orm(string_value = "SYNC")]
    Sync,
    /// `refreshDataSource`.
    #[sea_orm(string_value = "REFRESH")]
    Refresh,
}

impl SyncTrigger {
    /// The history source of a value this run records.
    pub fn source(self) -> ProgressSource {
        match self {
            SyncTrigger::Refresh => ProgressSource::Refresh,
            SyncTrigger::Link | SyncTrigger::Sync => ProgressSource::Sync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_word_is_stored_as_its_api_name() {
        assert_eq!(Status::OnTrack.to_value(), "ON_TRACK");
        assert_eq!(ProgressSource::CheckIn.to_value(), "CHECK_IN");
        assert_eq!(ProgressMode::DataSource.to_value(), "DATA_SOURCE");
        assert_eq!(KpiCondition::AtMost.to_value(), "AT_MOST");
        assert_eq!(DataSourceState::Paused.to_value(), "PAUSED");
        assert_eq!(SyncOutcome::Unchanged.to_value(), "UNCHANGED");
    }

    #[test]
    fn an_unknown_stored_word_is_an_error_not_a_default() {
        assert!(Status::try_from_value(&"ON_TRAKC".to_owned()).is_err());
        assert!(DataSourceState::try_from_value(&"ok".to_owned()).is_err());
        assert_eq!(
            Role::try_from_value(&"ADMIN".to_owned()).unwrap(),
            Role::Admin
        );
    }
}
