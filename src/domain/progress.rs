//! Progress, expected progress and status: the rules of DESIGN §3.
//!
//! Every function here is pure so that each rule and edge can be tested
//! without a database or a clock.

use chrono::{DateTime, Days, NaiveDate, TimeZone, Utc};
use chrono_tz::Tz;

pub use entity::enums::{KeyResultKind, KpiCondition, Status};

/// The organization's status thresholds, in percentage points of shortfall.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// Up to this shortfall an OKR is on track.
    pub behind: f64,
    /// Up to this shortfall an OKR is behind; above it, at risk.
    pub at_risk: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            behind: 0.0,
            at_risk: 25.0,
        }
    }
}

/// The organization-wide inputs of every status: time zone and thresholds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scoring {
    pub tz: Tz,
    pub thresholds: Thresholds,
}

/// An OKR period: both days inclusive, in the organization's time zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

/// Raw progress of a metric in percent; not clamped, so 120 means overshoot.
///
/// Works for increasing and decreasing metrics alike: the direction is the
/// sign of `target - start`. `start == target` is refused at input, so the
/// division is safe; it would yield `None` here rather than infinity.
pub fn metric_progress(start: f64, target: f64, current: f64) -> Option<f64> {
    let span = target - start;
    if span == 0.0 || !span.is_finite() {
        return None;
    }
    Some((current - start) / span * 100.0)
}

/// Progress as used for status and roll-up: 0 to 100.
pub fn clamp_progress(progress: f64) -> f64 {
    progress.clamp(0.0, 100.0)
}

/// Whether a KPI value satisfies its condition.
pub fn kpi_met(condition: KpiCondition, target: f64, value: f64) -> bool {
    match condition {
        KpiCondition::AtLeast => value >= target,
        KpiCondition::AtMost => value <= target,
    }
}

/// A KPI's progress: 100 when met, else 0.
pub fn kpi_progress(condition: KpiCondition, target: f64, value: f64) -> f64 {
    if kpi_met(condition, target, value) {
        100.0
    } else {
        0.0
    }
}

/// A KPI's status: on track when met, at risk when not, not started without a value.
pub fn kpi_status(condition: KpiCondition, target: f64, value: Option<f64>) -> Status {
    match value {
        None => Status::NotStarted,
        Some(v) if kpi_met(condition, target, v) => Status::OnTrack,
        Some(_) => Status::AtRisk,
    }
}

/// The first instant of `day` in `tz`.
///
/// A day whose midnight does not exist (a DST gap at 00:00) starts at the
/// first instant that does.
fn start_of_day(day: NaiveDate, tz: Tz) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    match tz.from_local_datetime(&midnight) {
        chrono::LocalResult::Single(t) => t.with_timezone(&Utc),
        chrono::LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        chrono::LocalResult::None => {
            let one_hour_later = midnight + chrono::Duration::hours(1);
            tz.from_local_datetime(&one_hour_later)
                .earliest()
                .map(|t| t.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&midnight))
        }
    }
}

/// Expected progress in percent at `at`: the share of the period that has
/// elapsed, from the start of its first day to the end of its last day.
pub fn expected_progress(period: Period, tz: Tz, at: DateTime<Utc>) -> f64 {
    let begin = start_of_day(period.start, tz);
    let end_day = period
        .end
        .checked_add_days(Days::new(1))
        .unwrap_or(period.end);
    let end = start_of_day(end_day, tz);
    let total = (end - begin).num_milliseconds() as f64;
    if total <= 0.0 {
        return if at >= begin { 100.0 } else { 0.0 };
    }
    let elapsed = (at - begin).num_milliseconds() as f64;
    (elapsed / total).clamp(0.0, 1.0) * 100.0
}

/// Status from progress against expected progress.
///
/// Shortfall is `expected - clamp(progress)`; no progress yet is not started.
pub fn status(progress: Option<f64>, expected: f64, thresholds: Thresholds) -> Status {
    let Some(progress) = progress else {
        return Status::NotStarted;
    };
    let shortfall = expected - clamp_progress(progress);
    if shortfall <= thresholds.behind {
        Status::OnTrack
    } else if shortfall <= thresholds.at_risk {
        Status::Behind
    } else {
        Status::AtRisk
    }
}

/// One input of a roll-up: a METRIC key result or a child objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Contribution {
    pub weight: f64,
    /// Its progress; none before it has any value.
    pub progress: Option<f64>,
}

/// Weighted average Σ wᵢ·pᵢ / Σ wᵢ of clamped progress.
///
/// Contributions without a value count as 0 % (an untouched key result
/// holds its objective back); when none has a value the objective has not
/// started and the result is `None`. KPIs never reach this function.
pub fn roll_up(contributions: &[Contribution]) -> Option<f64> {
    if contributions.iter().all(|c| c.progress.is_none()) {
        return None;
    }
    let total_weight: f64 = contributions.iter().map(|c| c.weight).sum();
    if total_weight <= 0.0 {
        return None;
    }
    let weighted: f64 = contributions
        .iter()
        .map(|c| c.weight * clamp_progress(c.progress.unwrap_or(0.0)))
        .sum();
    Some(weighted / total_weight)
}

/// How a value turns into progress: a metric's range or a KPI's condition.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Measure {
    /// Progress from `start` to `target` (either direction).
    Metric { start: f64, target: f64 },
    /// Met or not: 100 % or 0 %.
    Kpi {
        condition: KpiCondition,
        target: f64,
    },
}

impl Measure {
    /// A key result's measure from its stored parts; none for a metric
    /// without a start (which input rules never let through).
    pub fn of_key_result(
        kind: KeyResultKind,
        condition: Option<KpiCondition>,
        start: Option<f64>,
        target: f64,
    ) -> Option<Measure> {
        match kind {
            KeyResultKind::Metric => Some(Measure::Metric {
                start: start?,
                target,
            }),
            KeyResultKind::Kpi => Some(Measure::Kpi {
                condition: condition.unwrap_or(KpiCondition::AtLeast),
                target,
            }),
        }
    }

    /// Raw progress in percent for a value.
    pub fn progress(self, value: f64) -> Option<f64> {
        match self {
            Measure::Metric { start, target } => metric_progress(start, target, value),
            Measure::Kpi { condition, target } => Some(kpi_progress(condition, target, value)),
        }
    }

    /// Expected progress and status at `at` for this value and progress.
    pub fn evaluate(
        self,
        value: Option<f64>,
        progress: Option<f64>,
        period: Period,
        scoring: Scoring,
        at: DateTime<Utc>,
    ) -> (f64, Status) {
        let expected = expected_progress(period, scoring.tz, at);
        let status = match self {
            Measure::Kpi { condition, target } => kpi_status(condition, target, value),
            Measure::Metric { .. } => status(progress, expected, scoring.thresholds),
        };
        (expected, status)
    }
}

/// Expected progress and status at `at` of an objective with this progress.
pub fn evaluate_objective(
    progress: Option<f64>,
    period: Period,
    scoring: Scoring,
    at: DateTime<Utc>,
) -> (f64, Status) {
    let expected = expected_progress(period, scoring.tz, at);
    (expected, status(progress, expected, scoring.thresholds))
}

/// A ROLL_UP objective's progress from its key results `(kind, weight,
/// progress)` and child objectives `(weight, progress)`. KPIs are left out.
pub fn objective_roll_up(
    key_results: &[(KeyResultKind, f64, Option<f64>)],
    children: &[(f64, Option<f64>)],
) -> Option<f64> {
    let contributions: Vec<Contribution> = key_results
        .iter()
        .filter(|(kind, _, _)| *kind == KeyResultKind::Metric)
        .map(|&(_, weight, progress)| Contribution { weight, progress })
        .chain(
            children
                .iter()
                .map(|&(weight, progress)| Contribution { weight, progress }),
        )
        .collect();
    roll_up(&contributions)
}

/// Whether two progress values differ enough to be a change worth recording.
pub fn progress_changed(a: Option<f64>, b: Option<f64>) -> bool {
    match (a, b) {
        (None, None) => false,
        (Some(x), Some(y)) => (x - y).abs() > 1e-9,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    const Q1: Period = Period {
        start: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
        end: NaiveDate::from_ymd_opt(2026, 3, 31).unwrap(),
    };

    #[test]
    fn an_increasing_metric_measures_progress_from_start_to_target() {
        assert_eq!(metric_progress(0.0, 200.0, 50.0), Some(25.0));
        assert_eq!(metric_progress(100.0, 200.0, 150.0), Some(50.0));
    }

    #[test]
    fn a_decreasing_metric_measures_progress_as_the_value_falls() {
        assert_eq!(metric_progress(10.0, 2.0, 6.0), Some(50.0));
        assert_eq!(metric_progress(10.0, 2.0, 2.0), Some(100.0));
        assert_eq!(metric_progress(10.0, 2.0, 12.0), Some(-25.0));
    }

    #[test]
    fn raw_progress_is_not_clamped_but_status_and_roll_up_use_the_clamped_value() {
        assert_eq!(metric_progress(0.0, 100.0, 150.0), Some(150.0));
        assert_eq!(metric_progress(0.0, 100.0, -20.0), Some(-20.0));
        assert_eq!(clamp_progress(150.0), 100.0);
        assert_eq!(clamp_progress(-20.0), 0.0);
        // Overshoot does not make a late objective look better than 100 %.
        assert_eq!(
            status(Some(150.0), 100.0, Thresholds::default()),
            Status::OnTrack
        );
        // A value below the start is 0 %, a full 50 points short at mid-period.
        assert_eq!(
            status(Some(-20.0), 50.0, Thresholds::default()),
            Status::AtRisk
        );
    }

    #[test]
    fn a_metric_whose_start_equals_its_target_has_no_progress() {
        assert_eq!(metric_progress(5.0, 5.0, 5.0), None);
    }

    #[test]
    fn an_at_least_kpi_is_met_at_or_above_its_target() {
        assert!(kpi_met(KpiCondition::AtLeast, 99.0, 99.0));
        assert!(kpi_met(KpiCondition::AtLeast, 99.0, 99.5));
        assert!(!kpi_met(KpiCondition::AtLeast, 99.0, 98.9));
        assert_eq!(kpi_progress(KpiCondition::AtLeast, 99.0, 100.0), 100.0);
        assert_eq!(kpi_progress(KpiCondition::AtLeast, 99.0, 1.0), 0.0);
    }

    #[test]
    fn an_at_most_kpi_is_met_at_or_below_its_target() {
        assert!(kpi_met(KpiCondition::AtMost, 2.0, 2.0));
        assert!(kpi_met(KpiCondition::AtMost, 2.0, 0.5));
        assert!(!kpi_met(KpiCondition::AtMost, 2.0, 2.1));
    }

    #[test]
    fn a_kpi_is_on_track_when_met_and_at_risk_when_not_whatever_the_date() {
        assert_eq!(
            kpi_status(KpiCondition::AtLeast, 10.0, Some(10.0)),
            Status::OnTrack
        );
        assert_eq!(
            kpi_status(KpiCondition::AtLeast, 10.0, Some(9.0)),
            Status::AtRisk
        );
        assert_eq!(
            kpi_status(KpiCondition::AtMost, 10.0, None),
            Status::NotStarted
        );
    }

    #[test]
    fn expected_progress_is_zero_before_the_period_starts() {
        assert_eq!(
            expected_progress(Q1, Tz::UTC, utc("2025-12-31T23:59:59Z")),
            0.0
        );
        assert_eq!(
            expected_progress(Q1, Tz::UTC, utc("2026-01-01T00:00:00Z")),
            0.0
        );
    }

    #[test]
    fn expected_progress_grows_linearly_inside_the_period() {
        // 90 days in Q1 2026; 45 days in is half-way.
        let half = expected_progress(Q1, Tz::UTC, utc("2026-02-15T00:00:00Z"));
        assert!((half - 50.0).abs() < 1e-9, "{half}");
    }

    #[test]
    fn expected_progress_reaches_100_only_at_the_end_of_the_last_day() {
        let last_day_noon = expected_progress(Q1, Tz::UTC, utc("2026-03-31T12:00:00Z"));
        assert!(
            last_day_noon < 100.0 && last_day_noon > 99.0,
            "{last_day_noon}"
        );
        assert_eq!(
            expected_progress(Q1, Tz::UTC, utc("2026-04-01T00:00:00Z")),
            100.0
        );
        assert_eq!(
            expected_progress(Q1, Tz::UTC, utc("2027-01-01T00:00:00Z")),
            100.0
        );
    }

    #[test]
    fn expected_progress_follows_the_organizations_time_zone() {
        let tokyo: Tz = "Asia/Tokyo".parse().unwrap();
        // 2026-03-31T15:00Z is midnight on April 1st in Tokyo: the period is over there.
        assert_eq!(
            expected_progress(Q1, tokyo, utc("2026-03-31T15:00:00Z")),
            100.0
        );
        // …but not yet in UTC.
        assert!(expected_progress(Q1, Tz::UTC, utc("2026-03-31T15:00:00Z")) < 100.0);
        // And it had not started in Tokyo before 2025-12-31T15:00Z.
        assert_eq!(
            expected_progress(Q1, tokyo, utc("2025-12-31T14:59:00Z")),
            0.0
        );
        assert!(expected_progress(Q1, tokyo, utc("2025-12-31T16:00:00Z")) > 0.0);
    }

    #[test]
    fn a_one_day_period_is_half_expected_at_noon_of_that_day() {
        let day = Period {
            start: d(2026, 6, 1),
            end: d(2026, 6, 1),
        };
        let noon = expected_progress(day, Tz::UTC, utc("2026-06-01T12:00:00Z"));
        assert!((noon - 50.0).abs() < 1e-9);
    }

    #[test]
    fn a_period_across_a_daylight_saving_change_ends_at_local_midnight() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let march = Period {
            start: d(2026, 3, 1),
            end: d(2026, 3, 31),
        };
        // Berlin is UTC+2 from March 29th, so April 1st begins at 22:00Z.
        assert_eq!(
            expected_progress(march, berlin, utc("2026-03-31T22:00:00Z")),
            100.0
        );
        assert!(expected_progress(march, berlin, utc("2026-03-31T21:59:00Z")) < 100.0);
    }

    #[test]
    fn no_value_yet_is_not_started() {
        assert_eq!(
            status(None, 80.0, Thresholds::default()),
            Status::NotStarted
        );
    }

    #[test]
    fn a_shortfall_of_exactly_zero_is_on_track() {
        assert_eq!(
            status(Some(40.0), 40.0, Thresholds::default()),
            Status::OnTrack
        );
    }

    #[test]
    fn being_ahead_of_schedule_is_on_track() {
        assert_eq!(
            status(Some(90.0), 40.0, Thresholds::default()),
            Status::OnTrack
        );
    }

    #[test]
    fn any_shortfall_above_the_behind_threshold_is_behind() {
        assert_eq!(
            status(Some(39.99), 40.0, Thresholds::default()),
            Status::Behind
        );
    }

    #[test]
    fn a_shortfall_of_exactly_25_is_still_behind() {
        assert_eq!(
            status(Some(25.0), 50.0, Thresholds::default()),
            Status::Behind
        );
    }

    #[test]
    fn a_shortfall_just_above_25_is_at_risk() {
        assert_eq!(
            status(Some(24.99), 50.0, Thresholds::default()),
            Status::AtRisk
        );
    }

    #[test]
    fn an_organizations_own_thresholds_move_the_boundaries() {
        let lenient = Thresholds {
            behind: 10.0,
            at_risk: 40.0,
        };
        assert_eq!(status(Some(40.0), 50.0, lenient), Status::OnTrack);
        assert_eq!(status(Some(39.0), 50.0, lenient), Status::Behind);
        assert_eq!(status(Some(10.0), 50.0, lenient), Status::Behind);
        assert_eq!(status(Some(9.0), 50.0, lenient), Status::AtRisk);
    }

    #[test]
    fn roll_up_is_the_weighted_average_of_clamped_progress() {
        let p = roll_up(&[
            Contribution {
                weight: 1.0,
                progress: Some(100.0),
            },
            Contribution {
                weight: 3.0,
                progress: Some(20.0),
            },
        ]);
        assert_eq!(p, Some(40.0));
        let overshoot = roll_up(&[
            Contribution {
                weight: 1.0,
                progress: Some(300.0),
            },
            Contribution {
                weight: 1.0,
                progress: Some(-50.0),
            },
        ]);
        assert_eq!(overshoot, Some(50.0));
    }

    #[test]
    fn roll_up_counts_an_item_without_a_value_as_zero() {
        let p = roll_up(&[
            Contribution {
                weight: 1.0,
                progress: Some(80.0),
            },
            Contribution {
                weight: 1.0,
                progress: None,
            },
        ]);
        assert_eq!(p, Some(40.0));
    }

    #[test]
    fn roll_up_of_nothing_or_of_items_without_values_has_not_started() {
        assert_eq!(roll_up(&[]), None);
        assert_eq!(
            roll_up(&[Contribution {
                weight: 2.0,
                progress: None
            }]),
            None
        );
    }

    #[test]
    fn progress_changes_are_detected_including_the_first_value() {
        assert!(progress_changed(None, Some(0.0)));
        assert!(!progress_changed(Some(10.0), Some(10.0)));
        assert!(progress_changed(Some(10.0), Some(10.5)));
        assert!(!progress_changed(None, None));
    }
    #[test]
    fn kpis_never_count_in_an_objectives_roll_up() {
        let p = objective_roll_up(
            &[
                (KeyResultKind::Metric, 1.0, Some(50.0)),
                (KeyResultKind::Kpi, 5.0, Some(0.0)),
            ],
            &[],
        );
        assert_eq!(p, Some(50.0));
        let only_kpis = objective_roll_up(&[(KeyResultKind::Kpi, 1.0, Some(100.0))], &[]);
        assert_eq!(only_kpis, None);
    }

    #[test]
    fn child_objectives_count_in_the_roll_up_with_their_weight() {
        let p = objective_roll_up(
            &[(KeyResultKind::Metric, 1.0, Some(100.0))],
            &[(2.0, Some(25.0)), (1.0, None)],
        );
        assert_eq!(p, Some(37.5));
    }
}
