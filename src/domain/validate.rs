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

    /// The title text.
    pub fn into_inner(self) -> String {
        self.0
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

/// A GCP project id: 6–30 lowercase letters, digits or hyphens, starting
/// with a letter and not ending with a hyphen; optionally domain-scoped
/// (`example.com:my-project`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectId(String);

impl ProjectId {
    /// Parses a project id, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<ProjectId, Invalid> {
        let raw = raw.trim();
        let (domain, project) = match raw.rsplit_once(':') {
            Some((domain, project)) => (Some(domain), project),
            None => (None, raw),
        };
        let refuse = |why: &str| {
            Invalid::new(
                "projectId",
                format!(
                    "'{raw}' is not a GCP project id: {why}. Project ids look like 'acme-analytics' or 'example.com:acme-analytics'."
                ),
            )
        };
        if let Some(domain) = domain {
            let domain_ok = !domain.is_empty()
                && domain.len() <= 253
                && domain.contains('.')
                && domain
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
                && !domain.starts_with(['.', '-'])
                && !domain.ends_with(['.', '-']);
            if !domain_ok {
                return Err(refuse(
                    "the domain before ':' must be a lowercase domain name",
                ));
            }
        }
        let len = project.chars().count();
        if !(6..=30).contains(&len) {
            return Err(refuse("it must be 6 to 30 characters long"));
        }
        if !project.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(refuse("it must start with a lowercase letter"));
        }
        if project.ends_with('-') {
            return Err(refuse("it must not end with a hyphen"));
        }
        if !project
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(refuse(
                "only lowercase letters, digits and hyphens are allowed",
            ));
        }
        Ok(ProjectId(raw.to_owned()))
    }

    /// The project id text.
    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A connection name: trimmed, 1–100 characters.
pub fn connection_name(raw: &str) -> Result<String, Invalid> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Invalid::new(
            "name",
            "The connection name must be 1 to 100 characters.",
        ));
    }
    Ok(name.to_owned())
}

/// A BigQuery location such as `US`, `EU` or `europe-west2`.
pub fn location(raw: &str) -> Result<String, Invalid> {
    let loc = raw.trim();
    let ok = !loc.is_empty()
        && loc.len() <= 64
        && loc.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !loc.starts_with('-')
        && !loc.ends_with('-');
    if !ok {
        return Err(Invalid::new(
            "location",
            format!(
                "'{raw}' is not a BigQuery location; use a name such as 'US', 'EU' or 'europe-west2'."
            ),
        ));
    }
    Ok(loc.to_owned())
}

/// Longest SQL accepted, in characters.
pub const MAX_SQL_CHARS: usize = 100_000;

/// A query's text: not blank, at most [`MAX_SQL_CHARS`].
pub fn sql(raw: &str) -> Result<String, Invalid> {
    let sql = raw.trim();
    if sql.is_empty() {
        return Err(Invalid::new(
            "sql",
            "The SQL must not be empty; write a SELECT that returns one number.",
        ));
    }
    if sql.chars().count() > MAX_SQL_CHARS {
        return Err(Invalid::new(
            "sql",
            format!("The SQL must be at most {MAX_SQL_CHARS} characters."),
        ));
    }
    Ok(sql.trim_end_matches(';').trim_end().to_owned())
}

/// Shortest and longest sync interval, in seconds.
pub const SYNC_INTERVAL_RANGE: (i64, i64) = (10, 31 * 24 * 3600);

/// A sync interval in seconds.
pub fn sync_interval(seconds: i64) -> Result<i64, Invalid> {
    let (min, max) = SYNC_INTERVAL_RANGE;
    if !(min..=max).contains(&seconds) {
        return Err(Invalid::new(
            "syncIntervalSeconds",
            format!("syncIntervalSeconds must be between {min} and {max} (31 days)."),
        ));
    }
    Ok(seconds)
}

/// A per-job cap on bytes billed: at least 10 MB, BigQuery's minimum charge.
pub fn maximum_bytes_billed(bytes: i64) -> Result<i64, Invalid> {
    if bytes < 10_485_760 {
        return Err(Invalid::new(
            "maximumBytesBilled",
            "maximumBytesBilled must be at least 10485760 (10 MB), the least BigQuery bills per query.",
        ));
    }
    Ok(bytes)
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
    fn project_ids_follow_gcp_rules() {
        for ok in [
            "acme-analytics",
            "abcdef",
            "a12345",
            "example.com:acme-prod",
            &format!("a{}", "b".repeat(29)),
        ] {
            assert!(ProjectId::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "short",
            "1acme-analytics",
            "Acme-Analytics",
            "acme_analytics",
            "acme-analytics-",
            &format!("a{}", "b".repeat(30)),
            ":acme-prod",
            "Example.com:acme-prod",
            "",
        ] {
            let err = ProjectId::parse(bad).unwrap_err();
            assert_eq!(err.field, "projectId", "{bad}");
        }
    }

    #[test]
    fn locations_are_region_names() {
        assert_eq!(location(" europe-west2 ").unwrap(), "europe-west2");
        assert!(location("US").is_ok());
        assert!(location("eu west").is_err());
        assert!(location("").is_err());
    }

    #[test]
    fn sql_is_trimmed_of_a_final_semicolon_and_must_not_be_blank() {
        assert_eq!(sql(" SELECT 1; ").unwrap(), "SELECT 1");
        assert_eq!(sql("  ").unwrap_err().field, "sql");
    }

    #[test]
    fn sync_intervals_are_bounded() {
        assert!(sync_interval(3600).is_ok());
        assert!(sync_interval(5).is_err());
        assert!(sync_interval(40 * 24 * 3600).is_err());
    }
}
