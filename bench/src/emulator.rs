//! The BigQuery REST emulator (bqemulator) in a child process on a free
//! port, and a latency-injecting HTTP proxy in front of it, so that the
//! server's BigQuery calls take as long as real ones.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

use crate::server::die_with_parent;

/// The project the emulator serves and the connection points at.
pub const PROJECT: &str = "okr-bench-project";

/// Where the emulator is: `--emulator`, else `OKR_PULSE_BQEMULATOR`, else
/// the cached install of scripts/bq-emulator.sh.
pub fn find_emulator(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => match std::env::var_os("OKR_PULSE_BQEMULATOR") {
            Some(path) => PathBuf::from(path),
            None => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/root"))
                .join(".cache/okr-pulse/bqemulator-1.4.0-duckdb-1.5.5/bin/bqemulator"),
        },
    };
    if !path.is_file() {
        bail!(
            "no BigQuery emulator at {}; install it with scripts/bq-emulator.sh, or pass --emulator PATH",
            path.display()
        );
    }
    Ok(path)
}

/// A running emulator, killed when dropped.
pub struct Emulator {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    _child: tokio::process::Child,
    http: reqwest::Client,
}

impl Emulator {
    /// Starts the emulator with an in-memory store and waits until it listens.
    pub async fn start(binary: &Path) -> anyhow::Result<Emulator> {
        let mut command = tokio::process::Command::new(binary);
        command
            .args([
                "start",
                "--project",
                PROJECT,
                "--rest-port",
                "0",
                "--grpc-port",
                "0",
                "--ephemeral",
                "--log-format",
                "console",
                "--log-level",
                "info",
            ])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let streams: [Box<dyn tokio::io::AsyncRead + Unpin + Send>; 2] = [
            Box::new(child.stdout.take().context("the emulator's stdout")?),
            Box::new(child.stderr.take().context("the emulator's stderr")?),
        ];
        for stream in streams {
            let tx = tx.clone();
            // Keep draining, so the emulator never blocks on a full pipe.
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let port = tokio::time::timeout(Duration::from_secs(90), async {
            let mut seen = Vec::new();
            while let Some(line) = rx.recv().await {
                if let Some(rest) = line.split("Uvicorn running on http://127.0.0.1:").nth(1) {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    return digits.parse::<u16>().context("the emulator's port");
                }
                seen.push(line);
            }
            bail!("the emulator exited before listening:\n{}", seen.join("\n"))
        })
        .await
        .context("the emulator did not listen within 90 s")??;
        // Forget the rest of its output.
        tokio::spawn(async move { while rx.recv().await.is_some() {} });
        Ok(Emulator {
            url: format!("http://127.0.0.1:{port}"),
            _child: child,
            http: reqwest::Client::new(),
        })
    }

    /// Creates a dataset in the project.
    pub async fn create_dataset(&self, dataset: &str) -> anyhow::Result<()> {
        let response = self
            .http
            .post(format!(
                "{}/bigquery/v2/projects/{PROJECT}/datasets",
                self.url
            ))
            .json(&json!({ "datasetReference": { "projectId": PROJECT, "datasetId": dataset } }))
            .send()
            .await
            .context("creating a dataset on the emulator")?;
        if !response.status().is_success() {
            bail!(
                "the emulator refused the dataset {dataset}: {}",
                response.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// Runs set-up SQL (DDL and DML) on the emulator.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<()> {
        let response: Value = self
            .http
            .post(format!(
                "{}/bigquery/v2/projects/{PROJECT}/queries",
                self.url
            ))
            .json(&json!({ "query": sql, "useLegacySql": false }))
            .send()
            .await
            .with_context(|| format!("running `{sql}` on the emulator"))?
            .json()
            .await
            .context("the emulator's answer is not JSON")?;
        if response.get("error").is_some() || response.get("errors").is_some() {
            bail!("the emulator refused `{sql}`: {response}");
        }
        Ok(())
    }
}

/// An HTTP/1.1 reverse proxy to the emulator that, while switched on,
/// waits `latency` before forwarding each request. Stops when dropped.
pub struct LatencyProxy {
    /// `127.0.0.1:<port>`.
    pub address: String,
    delaying: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    accept: tokio::task::JoinHandle<()>,
}

impl LatencyProxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`http://127.0.0.1:<port>`), not delaying until switched on.
    pub async fn start(upstream: &str, latency: Duration) -> anyhow::Result<LatencyProxy> {
        use hyper_util::{client::legacy::Client, rt::TokioExecutor};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the latency proxy")?;
        let address = listener.local_addr()?.to_string();
        let delaying = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(AtomicU64::new(0));
        // Both legs without Nagle's algorithm: a response written in two
        // pieces would otherwise wait for a delayed ACK now and then, and
        // the proxy would add 240 ms where it should add 200.
        let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<_, hyper::body::Incoming> =
            Client::builder(TokioExecutor::new()).build(connector);
        let forward = Forward {
            upstream: upstream.trim_end_matches('/').to_owned(),
            latency,
            delaying: delaying.clone(),
            requests: requests.clone(),
            client,
        };
        let accept = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let forward = forward.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let forward = forward.clone();
                        async move { forward.call(request).await }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(LatencyProxy {
            address,
            delaying,
            requests,
            accept,
        })
    }

    /// Switches the delay on or off for requests arriving from now on.
    pub fn delay(&self, on: bool) {
        self.delaying.store(on, Ordering::Release);
    }

    /// Requests forwarded so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Acquire)
    }
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// What each proxied request needs.
#[derive(Clone)]
struct Forward {
    upstream: String,
    latency: Duration,
    delaying: Arc<AtomicBool>,
    requests: Arc<AtomicU64>,
    client: hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        hyper::body::Incoming,
    >,
}

impl Forward {
    /// Waits the latency when switched on, then forwards the request as is
    /// (method, path, headers, body) and streams the answer back.
    async fn call(
        &self,
        mut request: hyper::Request<hyper::body::Incoming>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        self.requests.fetch_add(1, Ordering::AcqRel);
        if self.delaying.load(Ordering::Acquire) {
            tokio::time::sleep(self.latency).await;
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        if let Ok(uri) = format!("{}{path}", self.upstream).parse() {
            *request.uri_mut() = uri;
        }
        self.client.request(request).await
    }
}
