//! The server under test: the real `okr-pulse` binary in a child process
//! with a clean environment, a free port on loopback, a fresh data folder
//! and (on PostgreSQL) a throw-away database; its tokens, its `/metrics`
//! counters and its resident memory.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context as _, bail};
use sqlx::Connection as _;

/// The HS256 secret every benchmarked server signs its tokens with.
pub const SECRET: &str = "okr-bench-secret-0123456789abcdef-0123456789";

/// Counter of every SQL statement the server ran.
pub const SQL_STATEMENTS: &str = "okr_pulse_sql_statements_total";
/// Counter of INSERT, UPDATE and DELETE statements.
pub const SQL_WRITES: &str = "okr_pulse_sql_writes_total";
/// Gauge of open WebSocket connections.
pub const WEBSOCKET_CONNECTIONS: &str = "okr_pulse_websocket_connections";
/// Gauge of live subscriptions.
pub const SUBSCRIPTIONS: &str = "okr_pulse_subscriptions";
/// Counter of finished sync runs.
pub const SYNC_RUNS: &str = "okr_pulse_sync_runs_total";

/// Which database the server runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DatabaseKind {
    Sqlite,
    Postgres,
}

/// The `okr-pulse` binary: `--server` when given, else the one next to this
/// executable (where `cargo build --release --workspace` puts both).
pub fn find_binary(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(path) = explicit {
        if path.is_file() {
            return Ok(path.to_path_buf());
        }
        bail!(
            "--server {} is not a file; build the server with `cargo build --release --workspace`",
            path.display()
        );
    }
    let beside = std::env::current_exe()
        .context("finding okr-bench's own path")?
        .with_file_name("okr-pulse");
    if beside.is_file() {
        return Ok(beside);
    }
    bail!(
        "no okr-pulse binary at {}; run `cargo build --release --workspace` (which builds both), or pass --server PATH",
        beside.display()
    )
}

/// Starts servers: the binary, the database kind and where PostgreSQL is.
pub struct Launcher {
    binary: PathBuf,
    database: DatabaseKind,
    postgres_url: String,
}

impl Launcher {
    pub fn new(binary: PathBuf, database: DatabaseKind, postgres_url: String) -> Self {
        Launcher {
            binary,
            database,
            postgres_url: postgres_url.trim_end_matches('/').to_owned(),
        }
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn database(&self) -> DatabaseKind {
        self.database
    }

    /// The database as the report names it.
    pub fn database_label(&self) -> String {
        match self.database {
            DatabaseKind::Sqlite => "SQLite (a file in a fresh data folder)".to_owned(),
            DatabaseKind::Postgres => format!(
                "PostgreSQL at {} (a fresh database per server)",
                without_password(&self.postgres_url)
            ),
        }
    }

    /// A fresh data folder and, on PostgreSQL, a fresh empty database.
    pub async fn fresh_home(&self) -> anyhow::Result<DataHome> {
        let dir = tempfile::Builder::new()
            .prefix("okr-bench-")
            .tempdir()
            .context("creating a temporary data folder")?;
        let postgres = match self.database {
            DatabaseKind::Sqlite => None,
            DatabaseKind::Postgres => Some(PostgresDatabase::create(&self.postgres_url).await?),
        };
        Ok(DataHome { dir, postgres })
    }

    /// Starts a server on a fresh home with `env` on top of the defaults
    /// and waits until it answers `/healthz`.
    pub async fn start(&self, env: &[(&str, String)]) -> anyhow::Result<Server> {
        let home = self.fresh_home().await?;
        let mut server = Server::spawn(self, home, env)?;
        server
            .wait_for(
                "/healthz",
                Duration::from_millis(20),
                Duration::from_secs(60),
            )
            .await?;
        Ok(server)
    }
}

/// The user name and password of a URL replaced, for printing.
fn without_password(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Where one server keeps its data. Kept across a restart for warm starts.
pub struct DataHome {
    dir: tempfile::TempDir,
    postgres: Option<PostgresDatabase>,
}

impl DataHome {
    /// The URL the benchmark itself opens the server's database with.
    pub fn database_url(&self) -> String {
        match &self.postgres {
            Some(db) => db.url(),
            // The server's default database when DATABASE_URL is not set.
            None => format!(
                "sqlite://{}",
                self.dir.path().join("okr-pulse.db").display()
            ),
        }
    }

    /// Drops the PostgreSQL database (the folder goes when dropped).
    pub async fn remove(self) -> anyhow::Result<()> {
        if let Some(db) = self.postgres {
            db.drop_now().await?;
        }
        Ok(())
    }
}

/// A running `okr-pulse` child process, killed if dropped while running.
pub struct Server {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// `127.0.0.1:<port>`.
    pub address: String,
    env: BTreeMap<String, String>,
    binary: PathBuf,
    home: DataHome,
    http: reqwest::Client,
}

impl Server {
    /// Starts the binary on `home` without waiting for it to listen: the
    /// environment is cleared except PATH, then the benchmark defaults
    /// (no scheduler, BigQuery and the metadata server on a closed port,
    /// warnings only), then `env`.
    pub fn spawn(
        launcher: &Launcher,
        home: DataHome,
        env: &[(&str, String)],
    ) -> anyhow::Result<Server> {
        let port = free_port()?;
        let address = format!("127.0.0.1:{port}");
        let mut vars = BTreeMap::new();
        vars.insert("PATH".to_owned(), std::env::var("PATH").unwrap_or_default());
        vars.insert("LISTEN_ADDR".to_owned(), address.clone());
        vars.insert("DATA_DIR".to_owned(), home.dir.path().display().to_string());
        vars.insert("AUTH_JWT_SECRET".to_owned(), SECRET.to_owned());
        vars.insert("SCHEDULER_ENABLED".to_owned(), "false".to_owned());
        vars.insert("REFRESH_MIN_INTERVAL".to_owned(), "0s".to_owned());
        vars.insert("RUST_LOG".to_owned(), "warn".to_owned());
        vars.insert("GCE_METADATA_HOST".to_owned(), "127.0.0.1:9".to_owned());
        vars.insert(
            "BIGQUERY_EMULATOR_HOST".to_owned(),
            "127.0.0.1:9".to_owned(),
        );
        if let Some(db) = &home.postgres {
            vars.insert("DATABASE_URL".to_owned(), db.url());
        }
        for (key, value) in env {
            vars.insert((*key).to_owned(), value.clone());
        }
        let mut command = tokio::process::Command::new(&launcher.binary);
        command
            .env_clear()
            .envs(&vars)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        die_with_parent(&mut command);
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", launcher.binary.display()))?;
        Ok(Server {
            child,
            base: format!("http://{address}"),
            address,
            env: vars,
            binary: launcher.binary.clone(),
            home,
            http: reqwest::Client::new(),
        })
    }

    /// Polls `path` every `interval` until it answers 200, and returns how
    /// long that took from now; fails if the process exits or `timeout`
    /// passes first.
    pub async fn wait_for(
        &mut self,
        path: &str,
        interval: Duration,
        timeout: Duration,
    ) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let url = format!("{}{path}", self.base);
        loop {
            if let Ok(response) = self.http.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(started.elapsed());
            }
            if let Some(status) = self.child.try_wait().context("watching okr-pulse")? {
                bail!("okr-pulse exited before {path} answered 200: {status}");
            }
            if started.elapsed() > timeout {
                bail!("okr-pulse did not answer {path} with 200 within {timeout:?}");
            }
            tokio::time::sleep(interval).await;
        }
    }

    /// A bearer token signed with the server's secret, minted by the
    /// binary's own `token` subcommand so its claims always match.
    pub async fn token(&self, org: &str, email: &str, role: &str) -> anyhow::Result<String> {
        let output = tokio::process::Command::new(&self.binary)
            .env_clear()
            .envs(&self.env)
            .args([
                "token", "--org", org, "--email", email, "--role", role, "--ttl", "2d",
            ])
            .stdin(Stdio::null())
            .output()
            .await
            .context("running `okr-pulse token`")?;
        if !output.status.success() {
            bail!(
                "`okr-pulse token` failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let token = String::from_utf8(output.stdout)
            .context("`okr-pulse token` printed something that is not text")?
            .trim()
            .to_owned();
        if token.split('.').count() != 3 {
            bail!("`okr-pulse token` printed no JWT: {token:?}");
        }
        Ok(token)
    }

    /// The server's counters from `GET /metrics`, or `None` when the server
    /// has no such endpoint (any answer but 200).
    pub async fn metrics(&self) -> anyhow::Result<Option<Metrics>> {
        let response = self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await
            .context("GET /metrics")?;
        if !response.status().is_success() {
            return Ok(None);
        }
        let text = response.text().await.context("reading /metrics")?;
        Ok(Some(Metrics::parse(&text)))
    }

    /// One counter, `None` when the server exposes no metrics or not this one.
    pub async fn metric(&self, name: &str) -> anyhow::Result<Option<f64>> {
        Ok(self.metrics().await?.and_then(|m| m.get(name)))
    }

    /// The server's resident memory (VmRSS) in bytes.
    pub fn rss_bytes(&self) -> anyhow::Result<u64> {
        let pid = self.child.id().context("okr-pulse is no longer running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .with_context(|| format!("reading /proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
            .context("no VmRSS line in /proc/<pid>/status")
    }

    /// The URL the benchmark opens the server's database with.
    pub fn database_url(&self) -> String {
        self.home.database_url()
    }

    /// Stops the server as an orchestrator would (SIGTERM, then waiting for
    /// it to drain and exit; killed after 40 s) and hands back its data.
    pub async fn stop(mut self) -> anyhow::Result<DataHome> {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill only sends a signal to our own child process.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGTERM);
            }
        }
        match tokio::time::timeout(Duration::from_secs(40), self.child.wait()).await {
            Ok(status) => {
                status.context("waiting for okr-pulse to exit")?;
            }
            Err(_) => {
                eprintln!("okr-pulse did not exit within 40 s of SIGTERM; killing it");
                let _ = self.child.kill().await;
            }
        }
        Ok(self.home)
    }

    /// Stops the server and removes its database.
    pub async fn finish(self) -> anyhow::Result<()> {
        self.stop().await?.remove().await
    }
}

/// Asks the kernel to kill the child when this process dies, so that an
/// interrupted benchmark never leaves a server behind. (Tokio's runtime
/// threads, which spawn the children, live as long as the process.)
pub fn die_with_parent(command: &mut tokio::process::Command) {
    // SAFETY: prctl is async-signal-safe and touches nothing but the child.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// A port on loopback that nothing listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        std::net::TcpListener::bind("127.0.0.1:0").context("binding a free port on loopback")?;
    Ok(listener.local_addr()?.port())
}

/// Counters and gauges of the Prometheus text format, summed over labels.
#[derive(Debug, Clone, Default)]
pub struct Metrics(HashMap<String, f64>);

impl Metrics {
    /// Parses `name value` and `name{labels} value` lines; `#` lines are comments.
    pub fn parse(text: &str) -> Metrics {
        let mut values = HashMap::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let name_end = line.find(['{', ' ']).unwrap_or(line.len());
            let name = &line[..name_end];
            let rest = match line[name_end..].find('}') {
                Some(close) if line[name_end..].starts_with('{') => &line[name_end + close + 1..],
                _ => &line[name_end..],
            };
            if let Some(value) = rest
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
            {
                *values.entry(name.to_owned()).or_insert(0.0) += value;
            }
        }
        Metrics(values)
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.get(name).copied()
    }
}

/// The difference of one counter between two readings, when both have it.
pub fn delta(before: &Option<Metrics>, after: &Option<Metrics>, name: &str) -> Option<f64> {
    Some(after.as_ref()?.get(name)? - before.as_ref()?.get(name)?)
}

/// A throw-away PostgreSQL database, dropped by [`PostgresDatabase::drop_now`]
/// or, failing that, when the value is dropped.
struct PostgresDatabase {
    server: String,
    name: String,
    dropped: bool,
}

impl PostgresDatabase {
    /// Creates `okr_bench_<random>` through the `postgres` database.
    async fn create(server: &str) -> anyhow::Result<PostgresDatabase> {
        let name = format!("okr_bench_{}", random_suffix());
        let mut admin = admin_connection(server).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .with_context(|| format!("creating the database {name}"))?;
        let _ = admin.close().await;
        Ok(PostgresDatabase {
            server: server.to_owned(),
            name,
            dropped: false,
        })
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    async fn drop_now(mut self) -> anyhow::Result<()> {
        drop_database(&self.server, &self.name).await?;
        self.dropped = true;
        Ok(())
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (server, name) = (self.server.clone(), self.name.clone());
        // Possibly inside the runtime, which cannot block: drop from a
        // thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                let _ = rt.block_on(drop_database(&server, &name));
            }
        })
        .join();
    }
}

async fn admin_connection(server: &str) -> anyhow::Result<sqlx::PgConnection> {
    sqlx::PgConnection::connect(&format!("{server}/postgres"))
        .await
        .with_context(|| {
            format!(
                "connecting to PostgreSQL at {} (is it running?)",
                without_password(server)
            )
        })
}

async fn drop_database(server: &str, name: &str) -> anyhow::Result<()> {
    let mut admin = admin_connection(server).await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await
    .with_context(|| format!("dropping the database {name}"))?;
    let _ = admin.close().await;
    Ok(())
}

/// Sixteen hex digits that differ between runs and processes.
pub fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    // RandomState is seeded randomly per process; mixing in the time and
    // the pid keeps two values of one process apart too.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_are_summed_over_labels_and_comments_are_skipped() {
        let m = Metrics::parse(
            "# HELP x y\n# TYPE okr_pulse_sql_statements_total counter\nokr_pulse_sql_statements_total 12\nokr_pulse_sql_writes_total{kind=\"insert\"} 2\nokr_pulse_sql_writes_total{kind=\"update\"} 3\n",
        );
        assert_eq!(m.get(SQL_STATEMENTS), Some(12.0));
        assert_eq!(m.get(SQL_WRITES), Some(5.0));
        assert_eq!(m.get(SUBSCRIPTIONS), None);
    }

    #[test]
    fn passwords_are_not_printed() {
        assert_eq!(
            without_password("postgres://u:secret@h:5432"),
            "postgres://u:***@h:5432"
        );
        assert_eq!(
            without_password("postgres://postgres@127.0.0.1:5432"),
            "postgres://postgres@127.0.0.1:5432"
        );
    }
}
