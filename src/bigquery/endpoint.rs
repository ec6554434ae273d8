//! Which BigQuery endpoint the server talks to, checked at start: plain
//! `http://` only on loopback, an emulator only on loopback unless the
//! operator says otherwise, and never an emulator and an endpoint at once.

use std::net::IpAddr;

use super::GOOGLE_ENDPOINT;

/// Where requests go, and whether it is an emulator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub url: String,
    pub emulator: bool,
}

/// The endpoint from the settings, or why the server must not start.
pub fn choose(
    emulator_host: Option<&str>,
    endpoint: Option<&str>,
    insecure_emulator: bool,
) -> Result<Endpoint, String> {
    match (emulator_host, endpoint) {
        (Some(_), Some(_)) => Err(
            "BIGQUERY_EMULATOR_HOST and BIGQUERY_ENDPOINT are both set: the emulator uses no credentials, an endpoint keeps the real ones. Set only one."
                .to_owned(),
        ),
        (Some(host), None) => {
            let url = with_scheme(host);
            if !insecure_emulator && !is_loopback_url(&url) {
                return Err(format!(
                    "BIGQUERY_EMULATOR_HOST={host} is not on loopback. The emulator runs any SQL with its host's rights, so it is for one trusted user on one machine; pass --insecure-emulator (INSECURE_EMULATOR=true) to accept it anyway."
                ));
            }
            Ok(Endpoint {
                url,
                emulator: true,
            })
        }
        (None, Some(url)) => Ok(Endpoint {
            url: checked_url(url, "BIGQUERY_ENDPOINT")?,
            emulator: false,
        }),
        (None, None) => Ok(Endpoint {
            url: GOOGLE_ENDPOINT.to_owned(),
            emulator: false,
        }),
    }
}

/// A URL that credentials may be sent to: `https://`, or `http://` on loopback.
pub fn checked_url(url: &str, setting: &str) -> Result<String, String> {
    let url = url.trim_end_matches('/');
    if url.starts_with("https://") && url.len() > "https://".len() {
        return Ok(url.to_owned());
    }
    if url.starts_with("http://") {
        if is_loopback_url(url) {
            return Ok(url.to_owned());
        }
        return Err(format!(
            "{setting}={url} is plain http:// on a host that is not loopback, where tokens would cross the network in clear text. Use https://."
        ));
    }
    Err(format!(
        "{setting}={url} is not an http(s) URL (https://host[:port])."
    ))
}

/// `host:port` or a full URL, as `BIGQUERY_EMULATOR_HOST` allows either.
fn with_scheme(host: &str) -> String {
    let host = host.trim_end_matches('/');
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_owned()
    } else {
        format!("http://{host}")
    }
}

/// Whether the URL's host is `localhost` or a loopback address.
fn is_loopback_url(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
    let host = if let Some(inner) = authority.strip_prefix('[') {
        inner.split(']').next().unwrap_or_default()
    } else {
        authority.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_emulator_host_may_be_given_with_or_without_a_scheme() {
        assert_eq!(
            choose(Some("127.0.0.1:9050"), None, false).unwrap().url,
            "http://127.0.0.1:9050"
        );
        assert_eq!(
            choose(Some("http://[::1]:9050/"), None, false).unwrap().url,
            "http://[::1]:9050"
        );
    }

    #[test]
    fn an_emulator_off_loopback_needs_the_insecure_flag() {
        let err = choose(Some("10.1.2.3:9050"), None, false).unwrap_err();
        assert!(err.contains("--insecure-emulator"), "{err}");
        assert!(choose(Some("127.0.0.1.evil.example:9050"), None, false).is_err());
        assert!(
            choose(Some("emulator.internal:9050"), None, true)
                .unwrap()
                .emulator
        );
    }

    #[test]
    fn an_endpoint_keeps_credentials_and_plain_http_is_for_loopback_only() {
        let chosen = choose(
            None,
            Some("https://bigquery.europe-west2.rep.googleapis.com/"),
            false,
        )
        .unwrap();
        assert!(!chosen.emulator);
        assert_eq!(
            chosen.url,
            "https://bigquery.europe-west2.rep.googleapis.com"
        );
        assert!(choose(None, Some("http://127.0.0.1:8443"), false).is_ok());
        assert!(choose(None, Some("http://localhost:8443"), false).is_ok());
        let err = choose(None, Some("http://bq.internal.example"), false).unwrap_err();
        assert!(err.contains("https://"), "{err}");
        assert!(choose(None, Some("ftp://x"), false).is_err());
    }

    #[test]
    fn an_emulator_and_an_endpoint_together_are_refused() {
        let err = choose(Some("127.0.0.1:9050"), Some("https://x.example"), false).unwrap_err();
        assert!(err.contains("Set only one"), "{err}");
    }

    #[test]
    fn without_settings_requests_go_to_google() {
        assert_eq!(choose(None, None, false).unwrap().url, GOOGLE_ENDPOINT);
    }
}
