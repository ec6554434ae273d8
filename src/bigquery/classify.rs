//! Which failures are worth retrying, and how long to wait between tries.

use std::time::Duration;

/// Exponential backoff with jitter, bounded in attempts and in total time.
#[derive(Debug, Clone, Copy)]
pub struct BackoffPolicy {
    /// Wait before the first retry (before jitter).
    pub initial_delay: Duration,
    /// Longest single wait.
    pub max_delay: Duration,
    /// Most attempts, the first included.
    pub max_attempts: u32,
    /// No retry starts after this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        BackoffPolicy {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            max_attempts: 5,
            max_elapsed: Duration::from_secs(30),
        }
    }
}

/// The wait before retry number `retry` (1 for the first retry), given a
/// random number in `[0, 1)`: half the exponential step plus a random half,
/// so that many syncs failing together do not retry together.
pub fn backoff_delay(policy: &BackoffPolicy, retry: u32, random: f64) -> Duration {
    let exponent = retry.saturating_sub(1).min(20);
    let step = policy
        .initial_delay
        .saturating_mul(1u32 << exponent)
        .min(policy.max_delay);
    let half = step / 2;
    half + half.mul_f64(random.clamp(0.0, 1.0))
}

/// BigQuery reasons that are worth retrying.
pub fn is_transient_reason(reason: &str) -> bool {
    matches!(
        reason,
        "backendError"
            | "rateLimitExceeded"
            | "internalError"
            | "jobBackendError"
            | "jobInternalError"
            | "timeout"
            | "unavailable"
    )
}

/// Reasons Google's client library retries by itself before it reports them.
pub fn is_retried_by_client(reason: &str) -> bool {
    matches!(
        reason,
        "backendError"
            | "jobBackendError"
            | "rateLimitExceeded"
            | "jobRateLimitExceeded"
            | "internalError"
            | "jobInternalError"
    )
}

/// HTTP statuses that are worth retrying.
pub fn is_transient_status(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> BackoffPolicy {
        BackoffPolicy {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_attempts: 10,
            max_elapsed: Duration::from_secs(10),
        }
    }

    #[test]
    fn backoff_doubles_with_each_retry_up_to_the_maximum() {
        let p = policy();
        assert_eq!(backoff_delay(&p, 1, 1.0), Duration::from_millis(100));
        assert_eq!(backoff_delay(&p, 2, 1.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(&p, 3, 1.0), Duration::from_millis(400));
        assert_eq!(backoff_delay(&p, 5, 1.0), Duration::from_millis(1000));
        assert_eq!(backoff_delay(&p, 50, 1.0), Duration::from_millis(1000));
    }

    #[test]
    fn jitter_spreads_each_wait_over_its_upper_half() {
        let p = policy();
        assert_eq!(backoff_delay(&p, 3, 0.0), Duration::from_millis(200));
        assert_eq!(backoff_delay(&p, 3, 0.5), Duration::from_millis(300));
    }

    #[test]
    fn server_errors_rate_limits_and_backend_errors_are_transient() {
        for status in [429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [400, 401, 403, 404] {
            assert!(!is_transient_status(status), "{status}");
        }
        assert!(is_transient_reason("backendError"));
        assert!(is_transient_reason("rateLimitExceeded"));
        for reason in [
            "invalidQuery",
            "notFound",
            "accessDenied",
            "billingTierLimitExceeded",
            "bytesBilledLimitExceeded",
        ] {
            assert!(!is_transient_reason(reason), "{reason}");
        }
    }
}
