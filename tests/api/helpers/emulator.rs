//! A real BigQuery REST emulator (bqemulator) on a free port.

use serde_json::{Value, json};

/// Where the test suite finds the BigQuery emulator: `OKR_PULSE_BQEMULATOR`
/// (set by scripts/test.sh), else the cached install of scripts/bq-emulator.sh.
fn emulator_binary() -> std::path::PathBuf {
    if let Some(path) = std::env::var_os("OKR_PULSE_BQEMULATOR") {
        return path.into();
    }
    let cache = std::env::var_os("OKR_PULSE_CACHE")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(|c| std::path::PathBuf::from(c).join("okr-pulse"))
        })
        .or_else(|| {
            std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/okr-pulse"))
        })
        .expect("a cache folder");
    let path = cache.join("bqemulator-1.4.0-duckdb-1.5.5/bin/bqemulator");
    assert!(
        path.exists(),
        "the BigQuery emulator is not installed; run scripts/bq-emulator.sh (scripts/test.sh does it for you)"
    );
    path
}

/// The project every emulator test queries.
pub const PROJECT: &str = "okr-test-project";

/// A real BigQuery REST emulator on a free port, stopped when dropped.
pub struct Emulator {
    pub url: String,
    child: Option<tokio::process::Child>,
    client: reqwest::Client,
}

impl Emulator {
    /// Starts an emulator and waits until it listens.
    pub async fn start() -> Emulator {
        use tokio::io::{AsyncBufReadExt, BufReader};
        let mut child = tokio::process::Command::new(emulator_binary())
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
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start bqemulator");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            // Keep draining so the emulator never blocks on a full pipe.
            tokio::spawn(async move {
                let mut lines = BufReader::new(stream).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let _ = tx.send(line);
                }
            });
        }
        let port = tokio::time::timeout(std::time::Duration::from_secs(90), async {
            while let Some(line) = rx.recv().await {
                if let Some(rest) = line.split("Uvicorn running on http://127.0.0.1:").nth(1) {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    return digits.parse::<u16>().expect("a port");
                }
            }
            panic!("bqemulator exited before listening");
        })
        .await
        .expect("bqemulator listens within 90 s");
        let emulator = Emulator {
            url: format!("http://127.0.0.1:{port}"),
            child: Some(child),
            client: reqwest::Client::new(),
        };
        emulator.create_dataset("sales").await;
        emulator
    }

    /// Stops the emulator, as if BigQuery became unreachable.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill().await;
        }
    }

    /// Creates a dataset.
    pub async fn create_dataset(&self, dataset: &str) {
        let response = self
            .client
            .post(format!(
                "{}/bigquery/v2/projects/{PROJECT}/datasets",
                self.url
            ))
            .json(&json!({ "datasetReference": { "projectId": PROJECT, "datasetId": dataset } }))
            .send()
            .await
            .expect("create a dataset");
        assert!(
            response.status().is_success(),
            "{:?}",
            response.text().await
        );
    }

    /// Runs SQL directly against the emulator and returns its answer.
    pub async fn query(&self, sql: &str) -> Value {
        self.client
            .post(format!(
                "{}/bigquery/v2/projects/{PROJECT}/queries",
                self.url
            ))
            .json(&json!({ "query": sql, "useLegacySql": false }))
            .send()
            .await
            .expect("run SQL")
            .json()
            .await
            .expect("a JSON answer")
    }

    /// Runs set-up SQL (DDL and DML) directly against the emulator.
    pub async fn execute(&self, sql: &str) {
        let response = self.query(sql).await;
        assert!(
            response.get("error").is_none() && response.get("errors").is_none(),
            "set-up SQL failed: {response:#}"
        );
    }
}
