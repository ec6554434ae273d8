//! Input rules shared by every mutation: parse, don't validate.

use chrono::NaiveDate;
use chrono_tz::Tz;

/// Longest title accepted, in characters.
pub const MAX_TITLE_CHARS: usize = 500;

/// A refused input: which field and what the person should change.
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// The GraphQL input field, e.g. `title` or `periodEnd`.
    pub field: &'static str,
    pub message: String,
}

impl Invalid {
    /// A refusal of `field` with a message a person can act on.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Invalid {
            field,
            message: message.into(),
        }
    }
}

/// A title: trimmed, not empty, at most [`MAX_TITLE_CHARS`] characters.
#[derive(Debug, Clone, PartialEq)]
pub struct Title(String);

impl Title {
    /// Parses a title, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Title, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("title", "The title must not be empty."));
        }
        let chars = trimmed.chars().count();
        if chars > MAX_TITLE_CHARS {
            return Err(Invalid::new(
                "title",
                format!(
                    "The title has {chars} characters; shorten it to at most {MAX_TITLE_CHARS}."
                ),
            ));
        }
        Ok(Title(trimmed.to_owned()))
    }
}

text_newtype!(Title);

/// Longest description accepted, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 10_000;

/// An objective's description: at most [`MAX_DESCRIPTION_CHARS`] characters.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Description(String);
text_newtype!(Description);

impl Description {
    /// Parses a description; none is the empty description.
    pub fn parse(raw: Option<String>) -> Result<Description, Invalid> {
        let text = raw.unwrap_or_default();
        if text.chars().count() > MAX_DESCRIPTION_CHARS {
            return Err(Invalid::new(
                "description",
                format!("The description must be at most {MAX_DESCRIPTION_CHARS} characters."),
            ));
        }
        Ok(Description(text))
    }
}

/// Longest check-in note accepted, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// A check-in note: trimmed, at most [`MAX_NOTE_CHARS`] characters.
#[derive(Debug, Clone, PartialEq)]
pub struct Note(String);
text_newtype!(Note);

impl Note {
    /// Parses a note; a blank one is no note.
    pub fn parse(raw: Option<&str>) -> Result<Option<Note>, Invalid> {
        match raw.map(str::trim) {
            None | Some("") => Ok(None),
            Some(n) if n.chars().count() > MAX_NOTE_CHARS => Err(Invalid::new(
                "note",
                format!("The note must be at most {MAX_NOTE_CHARS} characters."),
            )),
            Some(n) => Ok(Some(Note(n.to_owned()))),
        }
    }
}

/// Longest unit accepted, in characters.
pub const MAX_UNIT_CHARS: usize = 50;

/// A key result's unit (`leads`, `%` …): trimmed, at most [`MAX_UNIT_CHARS`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Unit(String);
text_newtype!(Unit);

impl Unit {
    /// Parses a unit; none is no unit.
    pub fn parse(raw: Option<&str>) -> Result<Unit, Invalid> {
        let unit = raw.unwrap_or_default().trim();
        if unit.chars().count() > MAX_UNIT_CHARS {
            return Err(Invalid::new(
                "unit",
                format!("The unit must be at most {MAX_UNIT_CHARS} characters."),
            ));
        }
        Ok(Unit(unit.to_owned()))
    }
}

/// A weight in a roll-up: finite and greater than zero.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Weight(f64);

impl Weight {
    /// Parses a weight; none is the default weight of 1.
    pub fn parse(raw: Option<f64>) -> Result<Weight, Invalid> {
        weight(raw.unwrap_or(1.0)).map(Weight)
    }

    /// The weight.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A finite number given for `field`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Value(f64);

impl Value {
    /// Parses a number for `field`.
    pub fn parse(field: &'static str, raw: f64) -> Result<Value, Invalid> {
        finite(field, raw).map(Value)
    }

    /// The number.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// A metric's start and target: both finite and different.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricRange {
    start: f64,
    target: f64,
}

impl MetricRange {
    /// Parses a start and a target.
    pub fn parse(start: f64, target: f64) -> Result<MetricRange, Invalid> {
        metric_range(start, target)?;
        Ok(MetricRange { start, target })
    }

    /// Where the metric starts.
    pub fn start(self) -> f64 {
        self.start
    }

    /// Where it should end.
    pub fn target(self) -> f64 {
        self.target
    }
}

/// Checks that a period ends on or after the day it starts.
pub fn period(start: NaiveDate, end: NaiveDate) -> Result<(), Invalid> {
    if end < start {
        return Err(Invalid::new(
            "periodEnd",
            format!(
                "periodEnd ({end}) is before periodStart ({start}); pick an end on or after the start."
            ),
        ));
    }
    Ok(())
}

/// A weight in a roll-up: finite and greater than zero.
pub fn weight(value: f64) -> Result<f64, Invalid> {
    if !value.is_finite() || value <= 0.0 {
        return Err(Invalid::new(
            "weight",
            format!("weight must be a number greater than 0 (got {value})."),
        ));
    }
    Ok(value)
}

/// A finite number for `field`.
pub fn finite(field: &'static str, value: f64) -> Result<f64, Invalid> {
    if !value.is_finite() {
        return Err(Invalid::new(
            field,
            format!("{field} must be a finite number."),
        ));
    }
    Ok(value)
}

/// Start and target of a metric: both finite and different.
pub fn metric_range(start: f64, target: f64) -> Result<(), Invalid> {
    finite("startValue", start)?;
    finite("targetValue", target)?;
    if start == target {
        return Err(Invalid::new(
            "targetValue",
            format!(
                "startValue and targetValue are both {start}; a metric needs a target different from where it starts."
            ),
        ));
    }
    Ok(())
}

/// An IANA time zone name such as `Europe/Berlin`.
pub fn time_zone(raw: &str) -> Result<Tz, Invalid> {
    raw.parse::<Tz>().map_err(|_| {
        Invalid::new(
            "timeZone",
            format!(
                "'{raw}' is not an IANA time zone; use a name such as 'UTC' or 'Europe/Berlin'."
            ),
        )
    })
}

/// Status thresholds: `0 <= behind <= atRisk <= 100`.
pub fn thresholds(behind: f64, at_risk: f64) -> Result<(), Invalid> {
    if !behind.is_finite() || !(0.0..=100.0).contains(&behind) {
        return Err(Invalid::new(
            "behindThreshold",
            "behindThreshold must be between 0 and 100 percentage points.",
        ));
    }
    if !at_risk.is_finite() || !(0.0..=100.0).contains(&at_risk) {
        return Err(Invalid::new(
            "atRiskThreshold",
            "atRiskThreshold must be between 0 and 100 percentage points.",
        ));
    }
    if at_risk < behind {
        return Err(Invalid::new(
            "atRiskThreshold",
            format!("atRiskThreshold ({at_risk}) must not be below behindThreshold ({behind})."),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_trimmed() {
        assert_eq!(Title::parse("  Grow  ").unwrap().into_inner(), "Grow");
    }

    #[test]
    fn an_empty_or_blank_title_is_refused() {
        assert_eq!(Title::parse("").unwrap_err().field, "title");
        assert_eq!(Title::parse("   ").unwrap_err().field, "title");
    }

    #[test]
    fn a_title_of_500_characters_is_accepted_and_501_refused() {
        assert!(Title::parse(&"é".repeat(500)).is_ok());
        let err = Title::parse(&"a".repeat(501)).unwrap_err();
        assert!(err.message.contains("501"), "{}", err.message);
    }

    #[test]
    fn a_period_may_be_one_day_but_not_end_before_it_starts() {
        let d = |day| NaiveDate::from_ymd_opt(2026, 1, day).unwrap();
        assert!(period(d(5), d(5)).is_ok());
        assert_eq!(period(d(5), d(4)).unwrap_err().field, "periodEnd");
    }

    #[test]
    fn a_weight_must_be_positive_and_finite() {
        assert!(weight(0.5).is_ok());
        assert!(weight(0.0).is_err());
        assert!(weight(-1.0).is_err());
        assert!(weight(f64::NAN).is_err());
    }

    #[test]
    fn a_metric_needs_a_target_different_from_its_start() {
        assert!(metric_range(0.0, 10.0).is_ok());
        assert!(metric_range(10.0, 0.0).is_ok());
        assert_eq!(metric_range(3.0, 3.0).unwrap_err().field, "targetValue");
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert!(time_zone("Europe/Berlin").is_ok());
        assert_eq!(time_zone("Mars/Olympus").unwrap_err().field, "timeZone");
    }

    #[test]
    fn thresholds_must_be_ordered_percentages() {
        assert!(thresholds(0.0, 25.0).is_ok());
        assert!(thresholds(30.0, 20.0).is_err());
        assert!(thresholds(-1.0, 20.0).is_err());
        assert!(thresholds(0.0, 101.0).is_err());
    }
}
