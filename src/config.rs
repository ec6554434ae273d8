//! Every setting: a flag, an environment variable, a default and a reason.

use std::{net::SocketAddr, path::PathBuf};

use clap::{Parser, Subcommand, ValueEnum};

/// okr-pulse: OKRs whose progress updates itself from BigQuery.
#[derive(Debug, Clone, Parser)]
#[command(name = "okr-pulse", version, about)]
pub struct Config {
    /// Address the HTTP server listens on.
    #[arg(
        long,
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen_addr: SocketAddr,

    /// Folder for the SQLite database and the generated JWT secret.
    #[arg(long, env = "DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,

    /// Database URL: `sqlite://…` or `postgres://…`. Defaults to a SQLite file in the data folder.
    #[arg(long, env = "DATABASE_URL", global = true)]
    pub database_url: Option<String>,

    /// Most database connections in the pool (PostgreSQL; SQLite always uses one writer).
    #[arg(
        long,
        env = "DATABASE_MAX_CONNECTIONS",
        default_value_t = 10,
        global = true
    )]
    pub database_max_connections: u32,

    /// HS256 secret for bearer tokens. Without it, one is generated once into the data folder.
    #[arg(long, env = "AUTH_JWT_SECRET", hide_env_values = true, global = true)]
    pub auth_jwt_secret: Option<String>,

    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// BigQuery emulator (`host:port` or URL). When set, every BigQuery
    /// client talks to it with anonymous credentials; otherwise real
    /// BigQuery with Application Default Credentials.
    #[arg(long, env = "BIGQUERY_EMULATOR_HOST", global = true)]
    pub bigquery_emulator_host: Option<String>,

    /// Default cap on bytes billed per BigQuery job (connections may set their own).
    #[arg(long, env = "BIGQUERY_MAX_BYTES_BILLED", default_value_t = 10 * 1024 * 1024 * 1024, global = true)]
    pub bigquery_max_bytes_billed: i64,

    /// How long one BigQuery job may run (humantime: `60s`, `5m`).
    #[arg(
        long,
        env = "BIGQUERY_JOB_TIMEOUT",
        default_value = "60s",
        global = true
    )]
    pub bigquery_job_timeout: humantime::Duration,

    /// Longest time one run spends retrying transient BigQuery failures.
    #[arg(
        long,
        env = "BIGQUERY_RETRY_BUDGET",
        default_value = "30s",
        global = true
    )]
    pub bigquery_retry_budget: humantime::Duration,

    /// Wait before the first retry of a transient BigQuery failure; each
    /// further retry waits about twice as long (with jitter), up to 8s.
    #[arg(
        long,
        env = "BIGQUERY_RETRY_INITIAL_DELAY",
        default_value = "500ms",
        global = true
    )]
    pub bigquery_retry_initial_delay: humantime::Duration,

    /// Most attempts of one BigQuery call, the first included.
    #[arg(
        long,
        env = "BIGQUERY_RETRY_MAX_ATTEMPTS",
        default_value_t = 5,
        global = true
    )]
    pub bigquery_retry_max_attempts: u32,

    /// Service-account key file of Application Default Credentials; its
    /// `client_email` is shown by `bigQuerySetup`.
    #[arg(long, env = "GOOGLE_APPLICATION_CREDENTIALS", global = true)]
    pub google_application_credentials: Option<PathBuf>,

    /// Metadata server that names the service account on Google Cloud.
    #[arg(
        long,
        env = "GCE_METADATA_HOST",
        default_value = "metadata.google.internal",
        global = true
    )]
    pub gce_metadata_host: String,

    /// Sync interval of a data source linked without its own (humantime: `1h`, `10s`).
    #[arg(long, env = "SYNC_INTERVAL", default_value = "1h", global = true)]
    pub sync_interval: humantime::Duration,

    /// Most BigQuery jobs at once from this replica's scheduler.
    #[arg(long, env = "SYNC_CONCURRENCY", default_value_t = 4, global = true)]
    pub sync_concurrency: usize,

    /// Most BigQuery jobs at once per connection from this replica's scheduler.
    #[arg(
        long,
        env = "SYNC_CONCURRENCY_PER_CONNECTION",
        default_value_t = 2,
        global = true
    )]
    pub sync_concurrency_per_connection: usize,

    /// How often the scheduler looks for due data sources.
    #[arg(long, env = "SYNC_TICK", default_value = "1s", global = true)]
    pub sync_tick: humantime::Duration,

    /// How long a claimed sync keeps other replicas away; a replica that dies
    /// mid-sync leaves work that another picks up once this runs out.
    #[arg(long, env = "SYNC_LEASE", default_value = "5m", global = true)]
    pub sync_lease: humantime::Duration,

    /// Least time between two refreshes of one data source (`RATE_LIMITED` otherwise).
    #[arg(
        long,
        env = "REFRESH_MIN_INTERVAL",
        default_value = "10s",
        global = true
    )]
    pub refresh_min_interval: humantime::Duration,

    /// Whether this replica runs the scheduler (all replicas may).
    #[arg(long, env = "SCHEDULER_ENABLED", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub scheduler_enabled: bool,

    /// Most open WebSocket connections on this replica.
    #[arg(
        long,
        env = "WS_MAX_CONNECTIONS",
        default_value_t = 10_000,
        global = true
    )]
    pub ws_max_connections: usize,

    /// Most subscriptions on one WebSocket connection.
    #[arg(
        long,
        env = "WS_MAX_SUBSCRIPTIONS",
        default_value_t = 100,
        global = true
    )]
    pub ws_max_subscriptions: usize,

    /// How long a WebSocket client has to send `connection_init` (4408 after).
    #[arg(long, env = "WS_INIT_TIMEOUT", default_value = "5s", global = true)]
    pub ws_init_timeout: humantime::Duration,

    /// How often the server pings each WebSocket.
    #[arg(long, env = "WS_KEEP_ALIVE", default_value = "15s", global = true)]
    pub ws_keep_alive: humantime::Duration,

    /// How long shutdown waits for running syncs before exiting.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "30s", global = true)]
    pub shutdown_timeout: humantime::Duration,

    /// Organization whose admin token is printed at start.
    #[arg(long, env = "DEFAULT_ORG", default_value = "default", global = true)]
    pub default_org: String,

    /// What to do; with none, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Print a bearer token signed with the configured secret.
    Token(TokenArgs),
}

/// The claims of a minted token.
#[derive(Debug, Clone, clap::Args)]
pub struct TokenArgs {
    /// Organization slug (the `org` claim).
    #[arg(long)]
    pub org: String,
    /// The user's email.
    #[arg(long)]
    pub email: String,
    /// Display name; defaults to the part of the email before `@`.
    #[arg(long)]
    pub name: Option<String>,
    /// Subject (the user's id at the identity provider); defaults to the email.
    #[arg(long)]
    pub sub: Option<String>,
    /// Role in the organization.
    #[arg(long, value_enum, default_value_t = RoleArg::Member)]
    pub role: RoleArg,
    /// How long the token stays valid (humantime: `30d`, `12h`).
    #[arg(long, default_value = "30d")]
    pub ttl: humantime::Duration,
}

/// Role names as written on the command line and in tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Admin,
    Member,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Config {
    /// The database URL in force: the configured one or the default SQLite file.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("okr-pulse.db").display()
            ),
        }
    }
}
