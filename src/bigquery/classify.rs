//! Which failures are worth retrying, and how long to wait between tries.

use std::time::Duration;

use google_cloud_bigquery_v2::model::ErrorProto;
use google_cloud_gax::error::rpc::StatusDetails;

use super::WarehouseError;

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

/// Runs `attempt` until it succeeds, fails permanently, or the policy's
/// attempts or time run out. Waits
/// between attempts follow [`backoff_delay`] on the tokio clock.
pub async fn retry<T, F, Fut>(policy: &BackoffPolicy, mut attempt: F) -> Result<T, WarehouseError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, WarehouseError>>,
{
    let started = tokio::time::Instant::now();
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(mut err) => {
                let delay = backoff_delay(policy, tries, rand::random::<f64>());
                let out_of_time = started.elapsed() + delay > policy.max_elapsed;
                if !err.is_transient() || tries >= policy.max_attempts || out_of_time {
                    if let WarehouseError::Service { attempts, .. } = &mut err {
                        *attempts = tries;
                    }
                    return Err(err);
                }
                tracing::warn!(
                    attempt = tries,
                    delay_ms = delay.as_millis() as u64,
                    reason = err.reason().unwrap_or(""),
                    "transient BigQuery failure, retrying"
                );
                tokio::time::sleep(delay).await;
            }
        }
    }
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

/// HTTP statuses that are worth retrying.
pub fn is_transient_status(status: u16) -> bool {
    status == 429 || status == 408 || (500..600).contains(&status)
}

/// Our error for a failed request: BigQuery's own reason when its answer
/// names one (`errors[0].reason`, or Google's `ErrorInfo` reason such as
/// `USER_PROJECT_DENIED`), else one from the HTTP status.
pub fn classify_rpc(err: &google_cloud_gax::error::Error) -> WarehouseError {
    if err.is_authentication() {
        return WarehouseError::credentials(format!(
            "The server's Google credentials gave no token: {err}. Check GOOGLE_APPLICATION_CREDENTIALS or the account attached to the server."
        ));
    }
    if err.is_timeout() {
        return service("timeout", err.to_string(), true);
    }
    let status = err.http_status_code();
    let payload: serde_json::Value = err
        .http_payload()
        .and_then(|body| serde_json::from_slice(body).ok())
        .unwrap_or_default();
    let info_reason = err
        .status()
        .and_then(|s| {
            s.details.iter().find_map(|d| match d {
                StatusDetails::ErrorInfo(info) if !info.reason.is_empty() => {
                    Some(info.reason.clone())
                }
                _ => None,
            })
        })
        .or_else(|| {
            payload["error"]["details"]
                .as_array()
                .into_iter()
                .flatten()
                .find_map(|d| d["reason"].as_str().map(str::to_owned))
        });
    let bigquery_reason = payload["error"]["errors"][0]["reason"]
        .as_str()
        .map(str::to_owned);
    let message = payload["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .or_else(|| err.status().map(|s| s.message.clone()))
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| err.to_string());
    let message: String = message.chars().take(1_000).collect();
    match (info_reason.or(bigquery_reason), status) {
        (_, Some(401)) => WarehouseError::credentials(format!(
            "Google refused the server's credentials ({message}). Check that the key file is current and its account is enabled (bigQuerySetup shows the account)."
        )),
        (Some(reason), _) => {
            let transient = is_transient_reason(&reason) || status.is_some_and(is_transient_status);
            service(&reason, message, transient)
        }
        (None, Some(status)) => {
            let reason = match status {
                429 => "rateLimitExceeded",
                403 => "accessDenied",
                404 => "notFound",
                400 => "invalidQuery",
                s if s >= 500 => "backendError",
                _ => "httpError",
            };
            service(reason, message, is_transient_status(status))
        }
        // No HTTP answer at all: refused, reset, or cut short.
        (None, None) => service("unavailable", message, true),
    }
}

/// Our error for the errors a finished job reports.
pub fn classify_job_errors(errors: &[ErrorProto]) -> WarehouseError {
    let first = errors.first();
    let reason = first
        .map(|e| e.reason.clone())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "backendError".to_owned());
    let message = first
        .map(|e| e.message.clone())
        .unwrap_or_else(|| "the job failed".to_owned());
    let transient = is_transient_reason(&reason);
    service(&reason, message, transient)
}

fn service(reason: &str, message: String, transient: bool) -> WarehouseError {
    WarehouseError::Service {
        reason: reason.to_owned(),
        message,
        transient,
        attempts: 1,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn transient(reason: &str) -> WarehouseError {
        WarehouseError::Service {
            reason: reason.into(),
            message: "m".into(),
            transient: true,
            attempts: 1,
        }
    }

    /// Runs `retry` over scripted outcomes, recording when each attempt began.
    async fn scripted(
        policy: BackoffPolicy,
        outcomes: Vec<Result<u32, WarehouseError>>,
    ) -> (Result<u32, WarehouseError>, Vec<Duration>) {
        let start = tokio::time::Instant::now();
        let times = Arc::new(Mutex::new(Vec::new()));
        let outcomes = Arc::new(Mutex::new(outcomes.into_iter()));
        let result = retry(&policy, || {
            times.lock().unwrap().push(start.elapsed());
            let next = outcomes.lock().unwrap().next();
            async move { next.unwrap_or(Ok(0)) }
        })
        .await;
        let times = times.lock().unwrap().clone();
        (result, times)
    }

    fn seconds_policy() -> BackoffPolicy {
        BackoffPolicy {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            max_attempts: 6,
            max_elapsed: Duration::from_secs(60),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_wait_longer_each_time_on_the_tokio_clock() {
        let failures = (0..4)
            .map(|_| Err(transient("unavailable")))
            .collect::<Vec<_>>();
        let mut outcomes = failures;
        outcomes.push(Ok(7));
        let (result, times) = scripted(seconds_policy(), outcomes).await;
        assert_eq!(result.unwrap(), 7);
        assert_eq!(times.len(), 5);
        for (i, pair) in times.windows(2).enumerate() {
            let gap = pair[1] - pair[0];
            let step = Duration::from_secs(1 << i).min(Duration::from_secs(8));
            assert!(
                gap >= step / 2 && gap <= step,
                "wait {i}: {gap:?} outside [{:?}, {step:?}]",
                step / 2
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retries_stop_at_the_attempt_limit_and_report_the_attempts() {
        let outcomes = (0..10).map(|_| Err(transient("timeout"))).collect();
        let (result, times) = scripted(seconds_policy(), outcomes).await;
        assert_eq!(times.len(), 6);
        match result.unwrap_err() {
            WarehouseError::Service { attempts, .. } => assert_eq!(attempts, 6),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_starts_after_the_time_budget() {
        let policy = BackoffPolicy {
            max_elapsed: Duration::from_secs(5),
            max_attempts: 100,
            ..seconds_policy()
        };
        let outcomes = (0..100).map(|_| Err(transient("unavailable"))).collect();
        let (_, times) = scripted(policy, outcomes).await;
        assert!(
            *times.last().unwrap() <= Duration::from_secs(5),
            "{times:?}"
        );
        assert!(times.len() >= 3, "{times:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_and_credential_problems_are_not_retried() {
        let permanent = WarehouseError::Service {
            reason: "invalidQuery".into(),
            message: "m".into(),
            transient: false,
            attempts: 1,
        };
        let (_, times) = scripted(seconds_policy(), vec![Err(permanent)]).await;
        assert_eq!(times.len(), 1);
        let (result, times) = scripted(
            seconds_policy(),
            vec![Err(WarehouseError::credentials("no key"))],
        )
        .await;
        assert_eq!(times.len(), 1);
        assert_eq!(result.unwrap_err().reason(), Some("credentials"));
    }

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

    fn http_error(status: u16, body: serde_json::Value) -> google_cloud_gax::error::Error {
        google_cloud_gax::error::Error::http(
            status,
            http::HeaderMap::new(),
            bytes::Bytes::from(body.to_string()),
        )
    }

    #[test]
    fn a_user_project_denial_keeps_googles_reason_and_names_the_permission() {
        let err = classify_rpc(&http_error(
            403,
            serde_json::json!({ "error": { "code": 403, "status": "PERMISSION_DENIED",
                "message": "Caller does not have required permission to use project billing-project.",
                "errors": [{ "reason": "forbidden", "message": "m" }],
                "details": [{ "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "USER_PROJECT_DENIED", "domain": "googleapis.com" }] } }),
        ));
        assert_eq!(err.reason(), Some("USER_PROJECT_DENIED"));
        assert!(!err.is_transient());
        assert!(
            err.message().contains("serviceusage.services.use"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_401_is_a_permanent_credentials_error_and_a_bigquery_reason_is_kept() {
        let err = classify_rpc(&http_error(
            401,
            serde_json::json!({ "error": { "code": 401, "message": "Request had invalid authentication credentials.",
                "errors": [{ "reason": "unauthorized" }], "status": "UNAUTHENTICATED" } }),
        ));
        assert_eq!(err.reason(), Some("credentials"));
        assert!(!err.is_transient());
        let err = classify_rpc(&http_error(
            403,
            serde_json::json!({ "error": { "code": 403, "message": "Access Denied: Project p",
                "errors": [{ "reason": "accessDenied" }] } }),
        ));
        assert_eq!(err.reason(), Some("accessDenied"));
        let err = classify_rpc(&http_error(503, serde_json::json!({})));
        assert!(err.is_transient());
    }

    #[test]
    fn a_failed_job_keeps_bigquerys_reason_and_message() {
        let err = classify_job_errors(&[ErrorProto::new()
            .set_reason("notFound")
            .set_message("Not found: Table p.d.t")]);
        assert_eq!(err.reason(), Some("notFound"));
        assert!(!err.is_transient());
        let err = classify_job_errors(&[ErrorProto::new().set_reason("backendError")]);
        assert!(err.is_transient());
    }
}
