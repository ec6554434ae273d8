//! Every mutation's input as parsed values. The GraphQL layer turns its
//! input objects into these (`TryFrom`), so `store` and `sync` only ever see
//! values that passed the rules; the checks that need stored data (does the
//! parent exist, may this caller use that connection) stay with the store.

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::{
    node::Node,
    progress::{KeyResultKind, KpiCondition, Measure, Period},
    validate::{self, Description, Invalid, MetricRange, Note, Title, Unit, Value, Weight},
    warehouse::{BytesCap, ConnectionName, Location, ProjectId, Sql, SyncInterval},
};

pub use entity::enums::ProgressMode;

/// A period that ends on or after the day it starts.
pub fn period(start: NaiveDate, end: NaiveDate) -> Result<Period, Invalid> {
    validate::period(start, end)?;
    Ok(Period { start, end })
}

/// The own start and target of an objective in `mode`: required for MANUAL
/// and DATA_SOURCE objectives, refused for ROLL_UP ones (none is returned).
pub fn own_range(
    mode: ProgressMode,
    start: Option<f64>,
    target: Option<f64>,
) -> Result<Option<MetricRange>, Invalid> {
    match (mode, start, target) {
        (ProgressMode::RollUp, None, None) => Ok(None),
        (ProgressMode::RollUp, _, _) => Err(Invalid::new(
            "startValue",
            "startValue and targetValue apply only to MANUAL or DATA_SOURCE objectives; a ROLL_UP objective takes its progress from its key results.",
        )),
        (_, Some(s), Some(t)) => MetricRange::parse(s, t).map(Some),
        (_, _, _) => Err(Invalid::new(
            "targetValue",
            "A MANUAL or DATA_SOURCE objective needs both startValue and targetValue.",
        )),
    }
}

/// A key result's measure from its kind, condition, start and target.
pub fn measure(
    kind: KeyResultKind,
    condition: Option<KpiCondition>,
    start: Option<f64>,
    target: f64,
) -> Result<Measure, Invalid> {
    match kind {
        KeyResultKind::Metric => {
            if condition.is_some() {
                return Err(Invalid::new(
                    "kpiCondition",
                    "kpiCondition applies only to KPI key results.",
                ));
            }
            let start = start.ok_or_else(|| {
                Invalid::new("startValue", "A METRIC key result needs a startValue.")
            })?;
            let range = MetricRange::parse(start, target)?;
            Ok(Measure::Metric {
                start: range.start(),
                target: range.target(),
            })
        }
        KeyResultKind::Kpi => {
            let Some(condition) = condition else {
                return Err(Invalid::new(
                    "kpiCondition",
                    "A KPI key result needs a kpiCondition (AT_LEAST or AT_MOST).",
                ));
            };
            if start.is_some() {
                return Err(Invalid::new(
                    "startValue",
                    "A KPI has no startValue; it only keeps its value on one side of targetValue.",
                ));
            }
            let target = Value::parse("targetValue", target)?.get();
            Ok(Measure::Kpi { condition, target })
        }
    }
}

/// A new objective.
#[derive(Debug, Clone)]
pub struct NewObjective {
    pub title: Title,
    pub description: Description,
    pub parent_id: Option<String>,
    /// None: the caller.
    pub owner_id: Option<String>,
    pub period: Period,
    pub progress_mode: ProgressMode,
    pub weight: Weight,
    /// Own start and target; set exactly when the mode is not ROLL_UP.
    pub own_range: Option<MetricRange>,
}

/// Changes to an objective; `None` leaves a field as it is. The period and
/// the own range are checked against the stored values they combine with.
#[derive(Debug, Clone, Default)]
pub struct ObjectivePatch {
    pub title: Option<Title>,
    pub description: Option<Description>,
    /// `Some(None)` makes the objective a root.
    pub parent_id: Option<Option<String>>,
    pub owner_id: Option<String>,
    pub period_start: Option<NaiveDate>,
    pub period_end: Option<NaiveDate>,
    pub progress_mode: Option<ProgressMode>,
    pub weight: Option<Weight>,
    pub start_value: Option<Value>,
    pub target_value: Option<Value>,
}

/// A new key result.
#[derive(Debug, Clone)]
pub struct NewKeyResult {
    pub objective_id: String,
    pub title: Title,
    pub measure: Measure,
    pub unit: Unit,
    pub weight: Weight,
}

/// Changes to a key result; `None` leaves a field as it is. The measure is
/// checked against the stored kind, start and target it combines with.
#[derive(Debug, Clone, Default)]
pub struct KeyResultPatch {
    pub title: Option<Title>,
    pub kpi_condition: Option<KpiCondition>,
    pub start_value: Option<Value>,
    pub target_value: Option<Value>,
    pub unit: Option<Unit>,
    pub weight: Option<Weight>,
}

/// A value typed in by hand.
#[derive(Debug, Clone)]
pub struct CheckIn {
    pub node: Node,
    pub value: Value,
    pub note: Option<Note>,
    /// Pause the linked data source so syncs stop overwriting this value.
    pub pause_automatic_updates: bool,
}

/// Longest organization name, in characters.
pub const MAX_ORG_NAME_CHARS: usize = 200;

/// Changes to an organization's settings; `None` leaves a setting as it is.
/// The thresholds are checked together with the stored ones.
#[derive(Debug, Clone, Default)]
pub struct OrgSettingsPatch {
    /// Parsed with [`org_name`].
    pub name: Option<String>,
    pub time_zone: Option<Tz>,
    pub behind_threshold: Option<f64>,
    pub at_risk_threshold: Option<f64>,
    pub members_can_create_connections: Option<bool>,
}

/// An organization's name: trimmed, 1–200 characters.
pub fn org_name(raw: &str) -> Result<String, Invalid> {
    let name = raw.trim();
    validate::plain_text("name", name, false)?;
    if name.is_empty() || name.chars().count() > MAX_ORG_NAME_CHARS {
        return Err(Invalid::new(
            "name",
            "The organization name must be 1 to 200 characters.",
        ));
    }
    Ok(name.to_owned())
}

/// A new BigQuery connection.
#[derive(Debug, Clone)]
pub struct NewConnection {
    pub name: ConnectionName,
    pub project_id: ProjectId,
    pub location: Option<Location>,
    pub maximum_bytes_billed: Option<BytesCap>,
    /// Other projects the connection's queries may read (admins only).
    pub readable_projects: Option<Vec<ProjectId>>,
}

/// Changes to a connection; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ConnectionPatch {
    pub name: Option<ConnectionName>,
    pub project_id: Option<ProjectId>,
    /// `Some(None)` lets BigQuery pick the location.
    pub location: Option<Option<Location>>,
    /// `Some(None)` falls back to the server's default.
    pub maximum_bytes_billed: Option<Option<BytesCap>>,
    /// Replaces the other projects the queries may read (admins only).
    pub readable_projects: Option<Vec<ProjectId>>,
}

/// A query to link to an objective or key result.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub node: Node,
    /// None: the only connection the caller may use.
    pub connection_id: Option<String>,
    pub sql: Sql,
    /// None: the server's default interval.
    pub interval: Option<SyncInterval>,
}

/// Changes to a data source; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct DataSourcePatch {
    pub sql: Option<Sql>,
    pub connection_id: Option<String>,
    pub interval: Option<SyncInterval>,
    pub paused: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_roll_up_objective_has_no_own_range_and_others_need_one() {
        assert_eq!(own_range(ProgressMode::RollUp, None, None), Ok(None));
        assert_eq!(
            own_range(ProgressMode::RollUp, Some(0.0), None)
                .unwrap_err()
                .field,
            "startValue"
        );
        assert!(own_range(ProgressMode::Manual, Some(0.0), Some(10.0)).is_ok());
        assert_eq!(
            own_range(ProgressMode::Manual, Some(0.0), None)
                .unwrap_err()
                .field,
            "targetValue"
        );
    }

    #[test]
    fn a_metric_needs_a_start_and_a_kpi_a_condition_without_one() {
        assert!(measure(KeyResultKind::Metric, None, Some(0.0), 10.0).is_ok());
        let field = |r: Result<Measure, Invalid>| r.unwrap_err().field;
        assert_eq!(
            field(measure(KeyResultKind::Metric, None, None, 10.0)),
            "startValue"
        );
        assert_eq!(
            field(measure(
                KeyResultKind::Metric,
                Some(KpiCondition::AtLeast),
                Some(0.0),
                1.0
            )),
            "kpiCondition"
        );
        assert_eq!(
            field(measure(KeyResultKind::Kpi, None, None, 1.0)),
            "kpiCondition"
        );
        assert_eq!(
            field(measure(
                KeyResultKind::Kpi,
                Some(KpiCondition::AtMost),
                Some(0.0),
                1.0
            )),
            "startValue"
        );
    }
}
