//! Every setting: a flag, an environment variable, a default and a reason,
//! grouped by what it configures. Value parsers refuse values that cannot
//! work (a zero timeout, an interval out of range) when the server starts.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::warehouse::SyncInterval;

/// okr-pulse: OKRs whose progress updates itself from BigQuery.
#[derive(Debug, Clone, Parser)]
#[command(name = "okr-pulse", version, about)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub http: HttpConfig,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
    #[command(flatten)]
    pub bigquery: BigQueryConfig,
    #[command(flatten)]
    pub sync: SyncConfig,
    #[command(flatten)]
    pub ws: WsConfig,
    #[command(flatten)]
    pub tree: TreeConfig,

    /// What to do; with none, serve.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The process: where it listens, where it keeps files, how it logs and stops.
#[derive(Debug, Clone, Args)]
pub struct ServerConfig {
    /// Address the HTTP server listens on.
    #[arg(
        long = "listen-addr",
        env = "LISTEN_ADDR",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen_addr: SocketAddr,

    /// Folder for the SQLite database and the generated JWT secret.
    #[arg(
        long = "data-dir",
        env = "DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Log format.
    #[arg(long = "log-format", env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,

    /// How long shutdown waits, in all, for requests, WebSockets and running syncs.
    #[arg(long = "shutdown-timeout", env = "SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = positive_duration, global = true)]
    pub shutdown_timeout: Duration,

    /// Token `/metrics` requires (`Authorization: Bearer <token>`); none
    /// leaves it open, as for a scraper inside the cluster.
    #[arg(
        long = "metrics-token",
        env = "METRICS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub metrics_token: Option<String>,

    /// Organization whose admin token is printed at start.
    #[arg(
        long = "default-org",
        env = "DEFAULT_ORG",
        default_value = "default",
        global = true
    )]
    pub default_org: String,
}

/// Limits at the HTTP and GraphQL edge: what one request may cost.
#[derive(Debug, Clone, Args)]
pub struct HttpConfig {
    /// Largest request body, counted on the wire (413 beyond).
    #[arg(long = "http-max-body-bytes", env = "HTTP_MAX_BODY_BYTES", default_value_t = 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..), global = true)]
    pub max_body_bytes: u64,

    /// How long one request may take, body included (408 after).
    #[arg(long = "http-request-timeout", env = "HTTP_REQUEST_TIMEOUT", default_value = "30s", value_parser = positive_duration, global = true)]
    pub request_timeout: Duration,

    /// How long a client may take to send a request's headers (the connection is closed after).
    #[arg(long = "http-header-timeout", env = "HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = positive_duration, global = true)]
    pub header_timeout: Duration,

    /// Origins allowed to call the API from a browser (comma-separated, e.g. `https://okr.example.com`); none by default.
    /// `*` and `null` are refused at start: a wildcard would grant every
    /// site, and `null` is what sandboxed pages and local files send.
    #[arg(
        long = "cors-allowed-origins",
        env = "CORS_ALLOWED_ORIGINS",
        value_delimiter = ',',
        value_parser = cors_origin,
        global = true
    )]
    pub cors_allowed_origins: Vec<String>,

    /// Longest query text, in bytes; longer ones are refused before parsing.
    #[arg(long = "graphql-max-query-bytes", env = "GRAPHQL_MAX_QUERY_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1024..), global = true)]
    pub max_query_bytes: u32,

    /// Deepest selection a query may have.
    #[arg(long = "graphql-max-depth", env = "GRAPHQL_MAX_DEPTH", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_depth: u32,

    /// Most fields a query may select, counted after expanding fragments.
    #[arg(long = "graphql-max-fields", env = "GRAPHQL_MAX_FIELDS", default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub max_fields: u64,

    /// Most aliases a query may use.
    #[arg(long = "graphql-max-aliases", env = "GRAPHQL_MAX_ALIASES", default_value_t = 100, value_parser = clap::value_parser!(u64).range(0..), global = true)]
    pub max_aliases: u64,

    /// Highest complexity a query may have: every field counts 1, and a
    /// list multiplies what it selects by its size.
    #[arg(long = "graphql-max-complexity", env = "GRAPHQL_MAX_COMPLEXITY", default_value_t = 5_000_000, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub max_complexity: u64,

    /// Most bytes of output one request (a whole batch) may produce while it
    /// runs; past it the request stops with `QUERY_TOO_COMPLEX` (`response`).
    #[arg(long = "graphql-max-response-bytes", env = "GRAPHQL_MAX_RESPONSE_BYTES", default_value_t = 32 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1024..), global = true)]
    pub max_response_bytes: u64,

    /// Most fields one request (a whole batch) may resolve while it runs;
    /// past it the request stops with `QUERY_TOO_COMPLEX` (`response`).
    #[arg(long = "graphql-max-resolved-objects", env = "GRAPHQL_MAX_RESOLVED_OBJECTS", default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..), global = true)]
    pub max_resolved_objects: u64,
}

/// The database.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// Database URL: `sqlite://…` or `postgres://…`. Defaults to a SQLite file in the data folder.
    #[arg(long = "database-url", env = "DATABASE_URL", global = true)]
    pub url: Option<String>,

    /// Most database connections in the pool (PostgreSQL); on SQLite, most
    /// read-only connections beside its one writer.
    #[arg(id = "database_max_connections", long = "database-max-connections", env = "DATABASE_MAX_CONNECTIONS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections: u32,
}

/// Bearer tokens.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// HS256 secret for bearer tokens. Without it, one is generated once into the data folder.
    #[arg(
        long = "auth-jwt-secret",
        env = "AUTH_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<String>,

    /// How long a caller resolved from a token is reused without asking the
    /// database again; an organization change made on another replica is
    /// seen after at most this long (`0s` turns the cache off).
    #[arg(long = "auth-cache-ttl", env = "AUTH_CACHE_TTL", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub cache_ttl: std::time::Duration,

    /// Furthest ahead a token's `exp` may be; tokens that expire later are
    /// refused (`UNAUTHENTICATED`), since only rotating the secret takes them back.
    #[arg(long = "auth-max-token-lifetime", env = "AUTH_MAX_TOKEN_LIFETIME", default_value = "31days", value_parser = positive_duration, global = true)]
    pub max_token_lifetime: std::time::Duration,
}

/// How the server reaches BigQuery.
#[derive(Debug, Clone, Args)]
pub struct BigQueryConfig {
    /// BigQuery emulator (`host:port` or URL). When set, every BigQuery
    /// client talks to it with anonymous credentials; otherwise real
    /// BigQuery with the credentials below. Loopback only unless
    /// `--insecure-emulator`.
    #[arg(
        long = "bigquery-emulator-host",
        env = "BIGQUERY_EMULATOR_HOST",
        global = true
    )]
    pub emulator_host: Option<String>,

    /// Accept a BIGQUERY_EMULATOR_HOST that is not on loopback. The emulator
    /// runs any SQL it is given with its host's rights: only for one trusted user.
    #[arg(long = "insecure-emulator", env = "INSECURE_EMULATOR", global = true)]
    pub insecure_emulator: bool,

    /// Another BigQuery REST endpoint (Private Service Connect, a regional
    /// endpoint, a test double) that keeps the real credentials. `http://`
    /// only on loopback; not together with BIGQUERY_EMULATOR_HOST.
    #[arg(long = "bigquery-endpoint", env = "BIGQUERY_ENDPOINT", global = true)]
    pub endpoint: Option<String>,

    /// The IAM Credentials API, used to act as each organization's service account.
    #[arg(
        long = "google-iam-credentials-endpoint",
        env = "GOOGLE_IAM_CREDENTIALS_ENDPOINT",
        default_value = "https://iamcredentials.googleapis.com",
        global = true
    )]
    pub iam_credentials_endpoint: String,

    /// Each organization's own service account, as a template
    /// (`okr-{org}@vendor-project.iam.gserviceaccount.com`; `{org}` is the
    /// org's slug with `_` turned into `-`), which the server impersonates.
    /// Without it only one organization may hold connections.
    #[arg(
        long = "bigquery-org-service-account",
        env = "BIGQUERY_ORG_SERVICE_ACCOUNT",
        global = true
    )]
    pub org_service_account: Option<String>,

    /// Default cap on bytes billed per BigQuery job (connections may set their own).
    #[arg(long = "bigquery-max-bytes-billed", env = "BIGQUERY_MAX_BYTES_BILLED", default_value_t = 10 * 1024 * 1024 * 1024, value_parser = clap::value_parser!(i64).range(10_485_760..), global = true)]
    pub max_bytes_billed: i64,

    /// How long one BigQuery job may run (humantime: `60s`, `5m`).
    #[arg(long = "bigquery-job-timeout", env = "BIGQUERY_JOB_TIMEOUT", default_value = "60s", value_parser = positive_duration, global = true)]
    pub job_timeout: Duration,

    /// Longest time one run spends retrying transient BigQuery failures.
    #[arg(long = "bigquery-retry-budget", env = "BIGQUERY_RETRY_BUDGET", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub retry_budget: Duration,

    /// Wait before the first retry of a transient BigQuery failure; each
    /// further retry waits about twice as long (with jitter), up to 8s.
    #[arg(long = "bigquery-retry-initial-delay", env = "BIGQUERY_RETRY_INITIAL_DELAY", default_value = "500ms", value_parser = positive_duration, global = true)]
    pub retry_initial_delay: Duration,

    /// Most attempts of one BigQuery call, the first included.
    #[arg(long = "bigquery-retry-max-attempts", env = "BIGQUERY_RETRY_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub retry_max_attempts: u32,

    /// Google credentials file: a service-account key, gcloud user
    /// credentials, an external account (Workload Identity Federation) or
    /// an impersonated service account. Without it: gcloud's
    /// application-default file, else the metadata server.
    #[arg(
        long = "google-application-credentials",
        env = "GOOGLE_APPLICATION_CREDENTIALS",
        global = true
    )]
    pub google_application_credentials: Option<PathBuf>,

    /// gcloud's configuration folder, where `gcloud auth application-default
    /// login` writes its credentials; default `~/.config/gcloud`.
    #[arg(long = "cloudsdk-config", env = "CLOUDSDK_CONFIG", global = true)]
    pub cloudsdk_config: Option<PathBuf>,

    /// Metadata server that gives tokens and names the service account on Google Cloud.
    #[arg(
        long = "gce-metadata-host",
        env = "GCE_METADATA_HOST",
        default_value = "metadata.google.internal",
        global = true
    )]
    pub gce_metadata_host: String,
}

/// The scheduler and refreshes.
#[derive(Debug, Clone, Args)]
pub struct SyncConfig {
    /// Sync interval of a data source linked without its own (humantime: `1h`, `10s`; 10s to 31 days).
    #[arg(long = "sync-interval", env = "SYNC_INTERVAL", default_value = "1h", value_parser = sync_interval, global = true)]
    pub interval: SyncInterval,

    /// Most BigQuery jobs at once from this replica's scheduler.
    #[arg(long = "sync-concurrency", env = "SYNC_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub concurrency: u32,

    /// Most BigQuery jobs at once per connection from this replica's scheduler.
    #[arg(long = "sync-concurrency-per-connection", env = "SYNC_CONCURRENCY_PER_CONNECTION", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub concurrency_per_connection: u32,

    /// How often the scheduler looks for due data sources.
    #[arg(long = "sync-tick", env = "SYNC_TICK", default_value = "1s", value_parser = positive_duration, global = true)]
    pub tick: Duration,

    /// How long a claimed sync keeps other replicas away; a replica that dies
    /// mid-sync leaves work that another picks up once this runs out.
    #[arg(long = "sync-lease", env = "SYNC_LEASE", default_value = "5m", value_parser = positive_duration, global = true)]
    pub lease: Duration,

    /// Least time between two refreshes of one data source (`RATE_LIMITED` otherwise; `0s` for none).
    #[arg(long = "refresh-min-interval", env = "REFRESH_MIN_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub refresh_min_interval: Duration,

    /// Whether this replica runs the scheduler (all replicas may).
    #[arg(long = "scheduler-enabled", env = "SCHEDULER_ENABLED", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub scheduler_enabled: bool,
}

/// How large an organization's OKR tree may grow: the bounds the query
/// cost check multiplies lists by.
#[derive(Debug, Clone, Args)]
pub struct TreeConfig {
    /// Most key results one objective holds (`BAD_USER_INPUT` beyond).
    #[arg(long = "max-key-results-per-objective", env = "MAX_KEY_RESULTS_PER_OBJECTIVE", default_value_t = 25, value_parser = clap::value_parser!(u64).range(1..=1000), global = true)]
    pub max_key_results_per_objective: u64,

    /// Most child objectives one objective holds (`BAD_USER_INPUT` beyond).
    #[arg(long = "max-children-per-objective", env = "MAX_CHILDREN_PER_OBJECTIVE", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=5000), global = true)]
    pub max_children_per_objective: u64,

    /// Most levels of alignment, a root being level 1 (`BAD_USER_INPUT` beyond).
    #[arg(long = "max-tree-depth", env = "MAX_TREE_DEPTH", default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=100), global = true)]
    pub max_tree_depth: u64,
}

/// WebSocket subscriptions.
#[derive(Debug, Clone, Args)]
pub struct WsConfig {
    /// Most open WebSocket connections on this replica.
    #[arg(id = "ws_max_connections", long = "ws-max-connections", env = "WS_MAX_CONNECTIONS", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections: u32,

    /// Most subscriptions on one WebSocket connection.
    #[arg(long = "ws-max-subscriptions", env = "WS_MAX_SUBSCRIPTIONS", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_subscriptions: u32,

    /// How long a WebSocket client has to send `connection_init` (4408 after).
    #[arg(long = "ws-init-timeout", env = "WS_INIT_TIMEOUT", default_value = "5s", value_parser = positive_duration, global = true)]
    pub init_timeout: Duration,

    /// Largest message a WebSocket client may send (closed with 1009 beyond).
    #[arg(long = "ws-max-message-bytes", env = "WS_MAX_MESSAGE_BYTES", default_value_t = 64 * 1024, value_parser = clap::value_parser!(u32).range(1024..), global = true)]
    pub max_message_bytes: u32,

    /// Most WebSocket connections one user holds on this replica (closed
    /// with 1008 after `connection_init` beyond).
    #[arg(long = "ws-max-connections-per-user", env = "WS_MAX_CONNECTIONS_PER_USER", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections_per_user: u32,

    /// Most WebSocket connections one organization holds on this replica
    /// (closed with 1008 after `connection_init` beyond).
    #[arg(long = "ws-max-connections-per-org", env = "WS_MAX_CONNECTIONS_PER_ORG", default_value_t = 2_000, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_connections_per_org: u32,

    /// Largest `variables` of one WebSocket operation, as JSON text (an
    /// `error` with `QUERY_TOO_COMPLEX`, `limitName: variables`, beyond).
    #[arg(long = "ws-max-variables-bytes", env = "WS_MAX_VARIABLES_BYTES", default_value_t = 16 * 1024, value_parser = clap::value_parser!(u32).range(64..), global = true)]
    pub max_variables_bytes: u32,

    /// Most WebSockets one client address (an IPv6 client by its /64) may hold before sending `connection_init` (429 beyond).
    #[arg(long = "ws-max-pending-per-address", env = "WS_MAX_PENDING_PER_ADDRESS", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub max_pending_per_address: u32,

    /// How often the server pings each WebSocket.
    #[arg(long = "ws-keep-alive", env = "WS_KEEP_ALIVE", default_value = "15s", value_parser = positive_duration, global = true)]
    pub keep_alive: Duration,
}

/// One origin a browser may call from: `http(s)://host[:port]`.
fn cors_origin(raw: &str) -> Result<String, String> {
    let origin = raw.trim().trim_end_matches('/');
    if origin == "*" || origin.eq_ignore_ascii_case("null") {
        return Err(format!(
            "'{origin}' is not allowed: list each origin that may call the API from a browser, e.g. https://okr.example.com"
        ));
    }
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['/', '*', ' ', '?', '#', '@']) => {
            Ok(origin.to_owned())
        }
        _ => Err(format!(
            "'{}' is not an origin: write scheme://host[:port], e.g. https://okr.example.com",
            origin.chars().take(100).collect::<String>()
        )),
    }
}

/// A humantime duration greater than zero.
fn positive_duration(raw: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    if duration.is_zero() {
        return Err("must be greater than zero".to_owned());
    }
    Ok(duration)
}

/// A humantime sync interval within the allowed range.
fn sync_interval(raw: &str) -> Result<SyncInterval, String> {
    let duration = humantime::parse_duration(raw).map_err(|e| e.to_string())?;
    let seconds = i64::try_from(duration.as_secs()).map_err(|_| "is too long".to_owned())?;
    SyncInterval::parse(seconds).map_err(|e| e.message)
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
    #[arg(long, default_value = "30d", value_parser = positive_duration)]
    pub ttl: Duration,
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
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.server.data_dir.join("okr-pulse.db").display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("okr-pulse").chain(args.iter().copied()))
    }

    #[test]
    fn the_defaults_parse() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.sync.interval.seconds(), 3600);
        assert_eq!(config.ws.max_connections, 10_000);
    }

    #[test]
    fn zero_durations_and_counts_are_refused_at_start() {
        for args in [
            ["--ws-init-timeout", "0s"],
            ["--sync-tick", "0s"],
            ["--shutdown-timeout", "0s"],
            ["--sync-concurrency", "0"],
            ["--ws-max-connections", "0"],
        ] {
            assert!(parse(&args).is_err(), "{args:?}");
        }
    }

    #[test]
    fn a_wildcard_or_null_cors_origin_is_refused_at_start_with_a_message() {
        for bad in [
            "*",
            "null",
            "https://a.example,*",
            "a.example",
            "https://*.example",
        ] {
            let err = parse(&["--cors-allowed-origins", bad]).unwrap_err();
            assert!(err.to_string().contains("origin"), "{bad}: {err}");
        }
        let config = parse(&[
            "--cors-allowed-origins",
            "https://a.example/, http://127.0.0.1:5173",
        ])
        .unwrap();
        assert_eq!(
            config.http.cors_allowed_origins,
            ["https://a.example", "http://127.0.0.1:5173"]
        );
    }

    #[test]
    fn a_sync_interval_out_of_range_is_refused_at_start() {
        assert!(parse(&["--sync-interval", "5s"]).is_err());
        assert!(parse(&["--sync-interval", "40days"]).is_err());
        assert_eq!(
            parse(&["--sync-interval", "10s"])
                .unwrap()
                .sync
                .interval
                .seconds(),
            10
        );
    }
}
