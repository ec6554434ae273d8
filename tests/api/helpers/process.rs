//! The real `okr-pulse` binary in a process of its own, for replicas, crash
//! and signal tests. The test picks the port and waits for `/healthz`,
//! rather than reading the start-up banner.

use std::{process::Stdio, time::Duration};

use super::SECRET;

/// A server process, killed when dropped.
pub struct ServerProcess {
    pub address: String,
    pub child: tokio::process::Child,
    _dir: tempfile::TempDir,
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port on loopback")
}

impl ServerProcess {
    /// Starts `okr-pulse` with the test secret, BigQuery pointed at a closed
    /// port (unless `env` names a `BIGQUERY_ENDPOINT`), no scheduler, SQLite in a fresh folder unless `env` says
    /// otherwise, and waits until it answers `/healthz`.
    pub async fn start(env: &[(&str, String)]) -> ServerProcess {
        let dir = tempfile::tempdir().expect("a data folder");
        let port = free_port();
        // `OKR_PULSE_BIN` runs another build (the release binary) through the same tests.
        let binary = std::env::var_os("OKR_PULSE_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_okr-pulse").into());
        let mut command = tokio::process::Command::new(binary);
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("AUTH_JWT_SECRET", SECRET)
            .env("LISTEN_ADDR", format!("127.0.0.1:{port}"))
            .env("DATA_DIR", dir.path())
            .env("GCE_METADATA_HOST", "127.0.0.1:9")
            .env("SCHEDULER_ENABLED", "false")
            .env("REFRESH_MIN_INTERVAL", "0s")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if !env.iter().any(|(key, _)| *key == "BIGQUERY_ENDPOINT") {
            command.env("BIGQUERY_EMULATOR_HOST", "127.0.0.1:9");
        }
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start okr-pulse");
        let address = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(format!("{address}/healthz")).send().await
                && response.status().is_success()
            {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("okr-pulse exited before listening: {status}");
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "okr-pulse did not answer /healthz within 60 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        ServerProcess {
            address,
            child,
            _dir: dir,
        }
    }

    /// Kills the process at once, as a crash would.
    pub async fn kill(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }

    /// Sends SIGTERM, as an orchestrator stopping the process would.
    pub fn terminate(&self) {
        let pid = self.child.id().expect("a running process").to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}
