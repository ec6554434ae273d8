//! `spawn_app()` and the GraphQL client the tests share.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Days, NaiveDate, Utc};
use clap::Parser;
use okr_pulse::{
    auth::{Claims, TokenKeys},
    config::{Config, LogFormat},
    startup::Application,
    store::db::StatementCounter,
};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

/// The secret every test server signs with.
pub const SECRET: &str = "test-secret-0123456789abcdef";

/// Base URL of the PostgreSQL server used when the suite runs on PostgreSQL.
fn postgres_base() -> String {
    std::env::var("OKR_PULSE_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".to_owned())
}

/// Whether this run uses PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var("OKR_PULSE_TEST_DATABASE").as_deref() == Ok("postgres")
}

/// A throw-away PostgreSQL database, dropped when the test ends.
struct PostgresDatabase {
    name: String,
}

impl PostgresDatabase {
    async fn create() -> (PostgresDatabase, String) {
        let name = format!("okr_test_{}", uuid::Uuid::now_v7().simple());
        let admin = Database::connect(format!("{}/postgres", postgres_base()))
            .await
            .expect("connect to PostgreSQL to create a test database");
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .expect("create the test database");
        let url = format!("{}/{name}", postgres_base());
        (PostgresDatabase { name }, url)
    }
}

impl Drop for PostgresDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        // The test's runtime is shutting down; drop on a runtime of our own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for dropping the test database");
            rt.block_on(async move {
                if let Ok(admin) = Database::connect(format!("{}/postgres", postgres_base())).await
                {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// A running server and what tests need to talk to it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub keys: TokenKeys,
    pub statements: StatementCounter,
    pub db: sea_orm::DatabaseConnection,
    pub config: Config,
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
    let app = spawn_app_with(move |config| config.bigquery_emulator_host = Some(url)).await;
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
    config.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.data_dir = dir.path().to_path_buf();
    config.database_url = Some(database_url.clone());
    config.database_max_connections = 5;
    config.auth_jwt_secret = Some(SECRET.to_owned());
    config.bigquery_emulator_host = Some("127.0.0.1:9".to_owned());
    config.google_application_credentials = None;
    config.gce_metadata_host = "127.0.0.1:9".to_owned();
    config.bigquery_job_timeout = std::time::Duration::from_secs(20).into();
    config.bigquery_retry_initial_delay = std::time::Duration::from_millis(50).into();
    config.bigquery_retry_budget = std::time::Duration::from_secs(3).into();
    config.bigquery_retry_max_attempts = 4;
    // Tests that are not about the scheduler or rate limits drive syncs themselves.
    config.scheduler_enabled = false;
    config.refresh_min_interval = std::time::Duration::ZERO.into();
    config.ws_init_timeout = std::time::Duration::from_secs(2).into();
    adjust(&mut config);
    let app = Application::build(&config)
        .await
        .expect("build the application");
    let port = app.port();
    let statements = app.statements();
    let keys = app.keys();
    let db = app.db();
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone();
    tokio::spawn(app.run_until_stopped(async move { stop.cancelled().await }));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        keys,
        statements,
        db,
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
            })
            .expect("mint a test token")
    }

    /// Posts a GraphQL request with an optional raw Authorization header.
    pub async fn raw(&self, authorization: Option<&str>, query: &str, variables: Value) -> Value {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(auth) = authorization {
            request = request.header("Authorization", auth);
        }
        let response = request.send().await.expect("send the GraphQL request");
        response.json().await.expect("a JSON GraphQL response")
    }

    /// Runs a GraphQL request as `caller` and returns the whole response.
    pub async fn gql(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let auth = format!("Bearer {}", self.token(caller));
        self.raw(Some(&auth), query, variables).await
    }

    /// Runs a request that must succeed and returns its `data`.
    pub async fn data(&self, caller: &Caller, query: &str, variables: Value) -> Value {
        let response = self.gql(caller, query, variables).await;
        assert!(
            response.get("errors").is_none(),
            "unexpected errors: {response:#}"
        );
        response["data"].clone()
    }

    /// Runs a request that must fail and returns its first error.
    pub async fn error(&self, caller: &Caller, query: &str, variables: Value) -> GqlError {
        let response = self.gql(caller, query, variables).await;
        GqlError::first(&response)
    }

    /// Creates an objective over the given days and returns its id.
    pub async fn objective(&self, caller: &Caller, input: Value) -> String {
        let data = self
            .data(
                caller,
                "mutation($input: CreateObjectiveInput!) { createObjective(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createObjective"]["id"].as_str().unwrap().to_owned()
    }

    /// Creates a key result and returns its id.
    pub async fn key_result(&self, caller: &Caller, input: Value) -> String {
        let data = self
            .data(
                caller,
                "mutation($input: CreateKeyResultInput!) { createKeyResult(input: $input) { id } }",
                json!({ "input": input }),
            )
            .await;
        data["createKeyResult"]["id"].as_str().unwrap().to_owned()
    }

    /// Checks in a value on a key result.
    pub async fn check_in(&self, caller: &Caller, key_result_id: &str, value: f64) -> Value {
        let data = self
            .data(
                caller,
                "mutation($input: CheckInInput!) { checkIn(input: $input) { value progress expectedProgress status source } }",
                json!({ "input": { "keyResultId": key_result_id, "value": value } }),
            )
            .await;
        data["checkIn"].clone()
    }

    /// Rows in a table, to prove that a refused change saved nothing.
    pub async fn count_rows(&self, table: &str) -> i64 {
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .expect("count rows")
            .expect("one row");
        row.try_get::<i64>("", "n").expect("a count")
    }
}

/// The parts of a GraphQL error tests look at.
#[derive(Debug)]
pub struct GqlError {
    pub code: String,
    pub message: String,
    pub field: Option<String>,
}

impl GqlError {
    /// The first error of a response, which must have one.
    pub fn first(response: &Value) -> GqlError {
        let err = &response["errors"][0];
        assert!(!err.is_null(), "expected an error, got {response:#}");
        GqlError {
            code: err["extensions"]["code"].as_str().unwrap_or("").to_owned(),
            message: err["message"].as_str().unwrap_or("").to_owned(),
            field: err["extensions"]["field"].as_str().map(str::to_owned),
        }
    }
}

/// A period of 100 days around today: expected progress is about 50 %.
pub fn period_half_elapsed() -> (NaiveDate, NaiveDate) {
    let today = Utc::now().date_naive();
    (
        today.checked_sub_days(Days::new(50)).unwrap(),
        today.checked_add_days(Days::new(49)).unwrap(),
    )
}

/// Input for an objective over [`period_half_elapsed`].
pub fn objective_input(title: &str) -> Value {
    let (start, end) = period_half_elapsed();
    json!({ "title": title, "periodStart": start.to_string(), "periodEnd": end.to_string() })
}

/// A unique organization slug per call, so tests never share tenants by accident.
pub fn unique_org(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("{prefix}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

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

    /// Runs set-up SQL (DDL and DML) directly against the emulator.
    pub async fn execute(&self, sql: &str) {
        let response: Value = self
            .client
            .post(format!(
                "{}/bigquery/v2/projects/{PROJECT}/queries",
                self.url
            ))
            .json(&json!({ "query": sql, "useLegacySql": false }))
            .send()
            .await
            .expect("run set-up SQL")
            .json()
            .await
            .expect("a JSON answer");
        assert!(
            response.get("error").is_none() && response.get("errors").is_none(),
            "set-up SQL failed: {response:#}"
        );
    }
}

/// A GraphQL-over-WebSocket client, speaking either protocol by hand as the
/// reference clients do.
pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    legacy: bool,
    /// Messages read while waiting for another subscription's.
    pending: std::collections::VecDeque<Value>,
}

/// How a WebSocket ended, as the client saw it.
#[derive(Debug, PartialEq)]
pub enum WsEnd {
    Closed(u16, String),
    Dropped,
}

impl WsClient {
    /// Opens `/graphql` with `graphql-transport-ws` (or legacy `graphql-ws`).
    pub async fn connect(address: &str, legacy: bool) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/graphql", address.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        let protocol = if legacy {
            "graphql-ws"
        } else {
            "graphql-transport-ws"
        };
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", protocol.parse().unwrap());
        let (stream, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("open a WebSocket");
        assert_eq!(
            response.headers().get("sec-websocket-protocol").unwrap(),
            protocol
        );
        WsClient {
            stream,
            legacy,
            pending: Default::default(),
        }
    }

    /// Opens, sends `connection_init` with this token and waits for the ack.
    pub async fn connected(address: &str, token: &str, legacy: bool) -> WsClient {
        let mut client = WsClient::connect(address, legacy).await;
        client
            .send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
            .await;
        let ack = client.next_json(std::time::Duration::from_secs(10)).await;
        assert_eq!(ack["type"], "connection_ack", "{ack:#}");
        client
    }

    /// Sends a JSON message.
    pub async fn send(&mut self, message: Value) {
        self.send_text(message.to_string()).await;
    }

    /// Sends raw text.
    pub async fn send_text(&mut self, text: String) {
        use futures::SinkExt;
        self.stream
            .send(tokio_tungstenite::tungstenite::Message::Text(text.into()))
            .await
            .expect("send on the WebSocket");
    }

    /// Starts a subscription.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.legacy { "start" } else { "subscribe" };
        self.send(json!({ "id": id, "type": kind, "payload": { "query": query, "variables": variables } }))
            .await;
    }

    /// The next JSON message other than keep-alives, or `Value::Null` on timeout or close.
    pub async fn next_json(&mut self, within: std::time::Duration) -> Value {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await;
            let Ok(Some(Ok(message))) = next else {
                return Value::Null;
            };
            if let Message::Text(text) = message {
                let value: Value = serde_json::from_str(&text).expect("JSON from the server");
                match value["type"].as_str() {
                    Some("ping") => {
                        self.send(json!({ "type": "pong" })).await;
                    }
                    Some("ka") => {}
                    _ => return value,
                }
            } else if let Message::Close(_) = message {
                return Value::Null;
            }
        }
    }

    /// The data of the next event of subscription `id`, or `Value::Null`.
    /// Events of other subscriptions read meanwhile are kept for later.
    pub async fn next_event(&mut self, id: &str, within: std::time::Duration) -> Value {
        let kind = if self.legacy { "data" } else { "next" };
        if let Some(at) = self
            .pending
            .iter()
            .position(|m| m["id"] == id && m["type"] == kind)
        {
            let message = self.pending.remove(at).unwrap_or_default();
            return message["payload"]["data"].clone();
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next_json(left).await;
            if message.is_null() {
                return Value::Null;
            }
            assert!(
                message["type"] != "error",
                "subscription error: {message:#}"
            );
            if message["id"] == id && message["type"] == kind {
                return message["payload"]["data"].clone();
            }
            self.pending.push_back(message);
        }
    }

    /// Waits for the server to end the connection.
    pub async fn end(&mut self, within: std::time::Duration) -> WsEnd {
        use futures::StreamExt;
        use tokio_tungstenite::tungstenite::Message;
        let deadline = tokio::time::Instant::now() + within;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => panic!("the server did not end the connection within {within:?}"),
                Ok(Some(Ok(Message::Close(Some(frame))))) => {
                    return WsEnd::Closed(frame.code.into(), frame.reason.to_string());
                }
                Ok(Some(Ok(Message::Close(None)))) | Ok(None) | Ok(Some(Err(_))) => {
                    return WsEnd::Dropped;
                }
                Ok(Some(Ok(_))) => continue,
            }
        }
    }
}

impl WsClient {
    /// The underlying stream, for tests that read raw frames.
    pub fn raw(
        &mut self,
    ) -> &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    > {
        &mut self.stream
    }
}
