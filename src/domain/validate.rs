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

/// Largest magnitude a number may have: beyond it, sums and progress lose
/// their precision in a double.
pub const MAX_MAGNITUDE: f64 = 1e15;

/// Largest weight in a roll-up.
pub const MAX_WEIGHT: f64 = 1e6;

/// Earliest and latest day a period may name.
pub const DATE_RANGE: (NaiveDate, NaiveDate) = (
    NaiveDate::from_ymd_opt(1900, 1, 1).expect("a valid date"),
    NaiveDate::from_ymd_opt(2999, 12, 31).expect("a valid date"),
);

/// Refuses NUL and other control characters; tab and line breaks are kept
/// where `multi_line` text (descriptions, notes, SQL) may have them.
pub fn plain_text(field: &'static str, text: &str, multi_line: bool) -> Result<(), Invalid> {
    let allowed = |c: char| multi_line && matches!(c, '\t' | '\n' | '\r');
    if let Some(c) = text.chars().find(|&c| c.is_control() && !allowed(c)) {
        return Err(Invalid::new(
            field,
            format!(
                "{field} contains the control character U+{:04X}; remove it.",
                c as u32
            ),
        ));
    }
    Ok(())
}

/// Whether a character shows nothing: white space, and the format and
/// filler characters (zero-width spaces, joiners, direction marks, the
/// byte-order mark, Hangul fillers, variation selectors, tags).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(c,
            '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}'
            | '\u{17B5}' | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}' | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E0FFF}')
}

/// Refuses a name that shows nothing, however long.
fn visible(field: &'static str, text: &str, what: &str) -> Result<(), Invalid> {
    if text.chars().all(is_invisible) {
        return Err(Invalid::new(
            field,
            format!("{what} must contain at least one visible character."),
        ));
    }
    Ok(())
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
        plain_text("title", trimmed, false)?;
        visible("title", trimmed, "The title")?;
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
        plain_text("description", &text, true)?;
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
            Some(n) => {
                plain_text("note", n, true)?;
                Ok(Some(Note(n.to_owned())))
            }
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
        plain_text("unit", unit, false)?;
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
    let (first, last) = DATE_RANGE;
    for (field, day) in [("periodStart", start), ("periodEnd", end)] {
        if !(first..=last).contains(&day) {
            return Err(Invalid::new(
                field,
                format!("{field} ({day}) must be between {first} and {last}."),
            ));
        }
    }
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

/// A weight in a roll-up: greater than zero, at most [`MAX_WEIGHT`].
pub fn weight(value: f64) -> Result<f64, Invalid> {
    if !value.is_finite() || value <= 0.0 || value > MAX_WEIGHT {
        return Err(Invalid::new(
            "weight",
            format!("weight must be greater than 0 and at most {MAX_WEIGHT} (got {value})."),
        ));
    }
    Ok(value)
}

/// A finite number for `field`, at most [`MAX_MAGNITUDE`] either way.
pub fn finite(field: &'static str, value: f64) -> Result<f64, Invalid> {
    if !value.is_finite() || value.abs() > MAX_MAGNITUDE {
        return Err(Invalid::new(
            field,
            format!("{field} must be a finite number between -1e15 and 1e15."),
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

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_long_text() {
        assert_eq!(Title::parse("a\u{0}b").unwrap_err().field, "title");
        assert!(Title::parse("a\nb").is_err());
        assert!(Description::parse(Some("line one\nline\ttwo".into())).is_ok());
        assert!(Description::parse(Some("nul\u{0}".into())).is_err());
        assert!(Note::parse(Some("bell\u{7}")).is_err());
        assert!(Unit::parse(Some("%\u{1b}[31m")).is_err());
    }

    #[test]
    fn a_title_of_invisible_characters_only_is_refused() {
        for invisible in [
            "\u{200B}",
            "\u{200B}\u{FEFF}\u{2060}",
            "\u{3164}",
            "\u{E0041}",
        ] {
            let err = Title::parse(invisible).unwrap_err();
            assert!(
                err.message.contains("visible"),
                "{invisible:?}: {}",
                err.message
            );
        }
        assert!(Title::parse("\u{200B}Grow").is_ok());
    }

    #[test]
    fn numbers_are_bounded_and_weights_too() {
        assert!(finite("value", 1e15).is_ok());
        assert!(finite("value", -1e15).is_ok());
        assert!(finite("value", 1.0000001e15).is_err());
        assert!(finite("value", f64::INFINITY).is_err());
        assert!(weight(1e6).is_ok());
        assert!(weight(1e6 + 1.0).is_err());
    }

    #[test]
    fn periods_stay_between_1900_and_2999() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert!(period(d(1900, 1, 1), d(2999, 12, 31)).is_ok());
        assert_eq!(
            period(d(1899, 12, 31), d(2000, 1, 1)).unwrap_err().field,
            "periodStart"
        );
        assert_eq!(
            period(d(2000, 1, 1), d(3000, 1, 1)).unwrap_err().field,
            "periodEnd"
        );
    }
}
