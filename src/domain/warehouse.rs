//! Input rules of connections and data sources: GCP project ids, BigQuery
//! locations, SQL text, sync intervals and byte caps.

use super::validate::Invalid;

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
}

text_newtype!(ProjectId);

/// A connection name: trimmed, 1–100 characters.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionName(String);
text_newtype!(ConnectionName);

impl ConnectionName {
    /// Parses a connection name, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<ConnectionName, Invalid> {
        let name = raw.trim();
        super::validate::plain_text("name", name, false)?;
        if name.is_empty() || name.chars().count() > 100 {
            return Err(Invalid::new(
                "name",
                "The connection name must be 1 to 100 characters.",
            ));
        }
        Ok(ConnectionName(name.to_owned()))
    }
}

/// A BigQuery location such as `US`, `EU` or `europe-west2`.
#[derive(Debug, Clone, PartialEq)]
pub struct Location(String);
text_newtype!(Location);

impl Location {
    /// Parses a location, trimming surrounding white space.
    pub fn parse(raw: &str) -> Result<Location, Invalid> {
        location(raw).map(Location)
    }
}

/// Checks a BigQuery location and returns it trimmed.
fn location(raw: &str) -> Result<String, Invalid> {
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

/// A query's text: trimmed, not blank, at most [`MAX_SQL_CHARS`], without a
/// final semicolon.
#[derive(Debug, Clone, PartialEq)]
pub struct Sql(String);
text_newtype!(Sql);

impl Sql {
    /// Parses a query's text.
    pub fn parse(raw: &str) -> Result<Sql, Invalid> {
        sql(raw).map(Sql)
    }
}

/// Checks a query's text and returns it trimmed.
fn sql(raw: &str) -> Result<String, Invalid> {
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
    super::validate::plain_text("sql", sql, true)?;
    // One final `;` is dropped; more are kept for the SQL guard to refuse
    // (`SELECT 1;;` ends an empty statement).
    let once = sql.strip_suffix(';').map_or(sql, str::trim_end);
    Ok(if once.ends_with(';') { sql } else { once }.to_owned())
}

/// Shortest and longest sync interval, in seconds.
pub const SYNC_INTERVAL_RANGE: (i64, i64) = (10, 31 * 24 * 3600);

/// A sync interval within [`SYNC_INTERVAL_RANGE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncInterval(i64);

impl SyncInterval {
    /// Parses an interval in seconds.
    pub fn parse(seconds: i64) -> Result<SyncInterval, Invalid> {
        sync_interval(seconds).map(SyncInterval)
    }

    /// The interval in seconds.
    pub fn seconds(self) -> i64 {
        self.0
    }
}

/// Checks an interval in seconds.
fn sync_interval(seconds: i64) -> Result<i64, Invalid> {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BytesCap(i64);

impl BytesCap {
    /// Parses a cap in bytes.
    pub fn parse(bytes: i64) -> Result<BytesCap, Invalid> {
        maximum_bytes_billed(bytes).map(BytesCap)
    }

    /// The cap in bytes.
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Checks a cap in bytes.
fn maximum_bytes_billed(bytes: i64) -> Result<i64, Invalid> {
    if bytes < 10_485_760 {
        return Err(Invalid::new(
            "maximumBytesBilled",
            "maximumBytesBilled must be at least 10485760 (10 MB), the least BigQuery bills per query.",
        ));
    }
    Ok(bytes)
}

/// The org's service account from the configured template: `{org}` is the
/// slug with `_` turned into `-`, and the account id (before `@`) must be
/// 6–30 characters of `[a-z0-9-]` starting with a letter.
pub fn org_service_account(template: &str, slug: &str) -> Result<String, String> {
    let email = template.replace("{org}", &slug.replace('_', "-"));
    let id = email.split('@').next().unwrap_or_default();
    let valid = (6..=30).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if valid {
        Ok(email)
    } else {
        Err(format!(
            "This organization's slug '{slug}' does not make a valid service-account id from BIGQUERY_ORG_SERVICE_ACCOUNT ('{id}': 6–30 lowercase letters, digits or hyphens, starting with a letter), so it cannot hold BigQuery connections. Ask the operator to rename the organization or change the template."
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn an_org_account_comes_from_the_template_with_underscores_turned_into_hyphens() {
        assert_eq!(
            org_service_account("okr-{org}@vendor.iam.gserviceaccount.com", "acme_eu").unwrap(),
            "okr-acme-eu@vendor.iam.gserviceaccount.com"
        );
    }

    #[test]
    fn a_slug_that_makes_no_valid_account_id_is_refused_with_a_reason() {
        for slug in [
            "a",
            "Acme",
            "a-very-long-organization-slug-indeed",
            "9lives",
        ] {
            let template = if slug == "9lives" {
                "{org}@v.iam.gserviceaccount.com"
            } else {
                "okr-{org}@v.iam.gserviceaccount.com"
            };
            let err = org_service_account(template, slug).unwrap_err();
            assert!(err.contains("cannot hold BigQuery connections"), "{err}");
        }
    }

    #[test]
    fn one_final_semicolon_is_dropped_and_more_are_kept_for_the_guard() {
        assert_eq!(sql(" SELECT 1 ; ").unwrap(), "SELECT 1");
        assert_eq!(sql("SELECT 1;;").unwrap(), "SELECT 1;;");
        assert!(crate::domain::sql_guard::check(&sql("SELECT 1;;").unwrap()).is_err());
        assert!(crate::domain::sql_guard::check(&sql("SELECT 1; ;").unwrap()).is_err());
    }
}
