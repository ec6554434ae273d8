//! When a data source runs next.

use chrono::{DateTime, Duration, Utc};

/// Share of the interval the next run may move either way.
const JITTER_SHARE: f64 = 0.1;

/// Most the next run may move either way, in seconds.
const MAX_JITTER_SECONDS: f64 = 300.0;

/// The next run after one at `now`: one interval later, moved by up to 10 %
/// of it (at most five minutes) either way, by `random` in `[0, 1)`. A
/// thousand data sources linked at 9:00 thus spread out instead of all
/// hitting BigQuery at 10:00, and drift further apart with every run.
pub fn next_sync_at(now: DateTime<Utc>, interval_seconds: i64, random: f64) -> DateTime<Utc> {
    let interval = interval_seconds.max(1) as f64;
    let spread = (interval * JITTER_SHARE).min(MAX_JITTER_SECONDS);
    let offset = spread * (2.0 * random.clamp(0.0, 1.0) - 1.0);
    let millis = ((interval + offset) * 1000.0).round() as i64;
    now + Duration::milliseconds(millis.max(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T09:00:00Z")
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn the_next_run_is_one_interval_later_give_or_take_a_tenth() {
        let half_hour = 1800;
        assert_eq!(
            next_sync_at(at(), half_hour, 0.5),
            at() + Duration::minutes(30)
        );
        assert_eq!(
            next_sync_at(at(), half_hour, 0.0),
            at() + Duration::seconds(1620)
        );
        assert_eq!(
            next_sync_at(at(), half_hour, 1.0),
            at() + Duration::seconds(1980)
        );
        assert_eq!(next_sync_at(at(), 10, 0.0), at() + Duration::seconds(9));
    }

    #[test]
    fn jitter_never_exceeds_five_minutes() {
        let day = 24 * 3600;
        assert_eq!(
            next_sync_at(at(), day, 0.0),
            at() + Duration::seconds(day - 300)
        );
        assert_eq!(
            next_sync_at(at(), day, 1.0),
            at() + Duration::seconds(day + 300)
        );
    }

    #[test]
    fn a_thousand_links_made_at_once_spread_over_the_jitter_window() {
        let times: Vec<_> = (0..1000)
            .map(|i| next_sync_at(at(), 3600, i as f64 / 1000.0))
            .collect();
        let earliest = times.iter().min().unwrap();
        let latest = times.iter().max().unwrap();
        assert!(*latest - *earliest >= Duration::seconds(590));
        // No single second receives more than a few of them.
        let mut per_second = std::collections::HashMap::new();
        for t in &times {
            *per_second.entry(t.timestamp()).or_insert(0) += 1;
        }
        assert!(per_second.values().all(|&n| n <= 3));
    }
}
