//! `spawn_app()`: the server in this process on port 0 with a fresh database.

use clap::Parser;
use okr_pulse::{
    auth::{Claims, TokenKeys},
    config::{Config, LogFormat},
    startup::Application,
    store::db::StatementCounter,
};

use super::{Emulator, postgres::PostgresDatabase};

/// The secret every test server signs with.
pub const SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// Whether this run uses PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("OKR_PULSE_TEST_DATABASE").as_deref() == Ok("postgres")
}

/// A running server and what tests need to talk to it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub keys: TokenKeys,
    pub statements: StatementCounter,
    pub db: sea_orm::DatabaseConnection,
    pub config: Config,
    /// The server's event bus: tests wait on its subscriber count.
    pub events: okr_pulse::events::EventBus,
    shutdown: tokio_util::sync::CancellationToken,
    _postgres: Option<PostgresDatabase>,
    _dir: tempfile::TempDir,
}

/// Starts the server on port 0 with a fresh database. BigQuery points at a
/// closed port on loopback, so no test ever reaches Google.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server with a BigQuery emulator of its own.
pub async fn spawn_app_with_emulator() -> (TestApp, Emulator) {
    let emulator = Emulator::start().await;
    let url = emulator.url.clone();
    let app = spawn_app_with(move |config| config.bigquery.emulator_host = Some(url)).await;
    (app, emulator)
}

/// Starts the server after `adjust` has changed its configuration.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        okr_pulse::telemetry::init(LogFormat::Text);
    }
    let dir = tempfile::tempdir().expect("temporary data folder");
    let (postgres, database_url) = if on_postgres() {
        let (db, url) = PostgresDatabase::create().await;
        (Some(db), url)
    } else {
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
        (None, url)
    };
    let mut config = Config::try_parse_from(["okr-pulse"]).expect("default configuration");
    config.server.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = dir.path().to_path_buf();
    config.database.url = Some(database_url.clone());
    config.database.max_connections = 5;
    config.auth.jwt_secret = Some(SECRET.to_owned());
    config.bigquery.emulator_host = Some("127.0.0.1:9".to_owned());
    config.bigquery.google_application_credentials = None;
    config.bigquery.gce_metadata_host = "127.0.0.1:9".to_owned();
    // Never the developer's own gcloud credentials.
    config.bigquery.cloudsdk_config = Some(dir.path().join("no-gcloud"));
    config.bigquery.job_timeout = std::time::Duration::from_secs(20);
    config.bigquery.retry_initial_delay = std::time::Duration::from_millis(50);
    config.bigquery.retry_budget = std::time::Duration::from_secs(3);
    config.bigquery.retry_max_attempts = 4;
    // Tests that are not about the scheduler or rate limits drive syncs themselves.
    config.sync.scheduler_enabled = false;
    config.sync.refresh_min_interval = std::time::Duration::ZERO;
    config.ws.init_timeout = std::time::Duration::from_secs(2);
    adjust(&mut config);
    let app = Application::build(&config)
        .await
        .expect("build the application");
    let port = app.port();
    let statements = app.statements();
    let keys = app.keys();
    let db = app.db();
    let events = app.events();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(app.run_until_stopped(async move { stop.cancelled().await }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        keys,
        statements,
        db,
        events,
        config,
        shutdown,
        _postgres: postgres,
        _dir: dir,
    }
}

/// A caller: organization, subject and role.
#[derive(Clone, Debug)]
pub struct Caller {
    pub org: String,
    pub sub: String,
    pub role: &'static str,
}

impl Caller {
    /// An admin of `org`.
    pub fn admin(org: &str) -> Caller {
        Caller {
            org: org.to_owned(),
            sub: format!("admin-{org}"),
            role: "admin",
        }
    }

    /// A member of `org` called `sub`.
    pub fn member(org: &str, sub: &str) -> Caller {
        Caller {
            org: org.to_owned(),
            sub: sub.to_owned(),
            role: "member",
        }
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would.
    pub fn stop(&self) {
        self.shutdown.cancel();
    }

    /// A token for this caller.
    pub fn token(&self, caller: &Caller) -> String {
        self.keys
            .mint(&Claims {
                sub: caller.sub.clone(),
                email: format!("{}@{}.example", caller.sub, caller.org),
                name: caller.sub.clone(),
                org: caller.org.clone(),
                role: caller.role.to_owned(),
                exp: jsonwebtoken::get_current_timestamp() + 3600,
                nbf: None,
            })
            .expect("mint a test token")
    }

    /// Waits until the server has at least `n` live subscriptions: a
    /// subscription counts once its resolver runs, so events published
    /// after this reach it.
    pub async fn wait_for_subscribers(&self, n: usize) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
        while self.events.subscriber_count() < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} subscriptions live after 20 s, expected {n}",
                self.events.subscriber_count()
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
}
