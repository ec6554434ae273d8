//! `spawn_app()` and the GraphQL client the tests share.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{Days, NaiveDate, Utc};
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
    _postgres: Option<PostgresDatabase>,
    _dir: tempfile::TempDir,
}

/// Starts the server on port 0 with a fresh database.
pub async fn spawn_app() -> TestApp {
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
    let config = Config {
        listen_addr: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        database_url: Some(database_url.clone()),
        database_max_connections: 5,
        auth_jwt_secret: Some(SECRET.to_owned()),
        log_format: LogFormat::Text,
        default_org: "default".to_owned(),
        command: None,
    };
    let app = Application::build(&config)
        .await
        .expect("build the application");
    let port = app.port();
    let statements = app.statements();
    let keys = app.keys();
    let db = app.db();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        client: reqwest::Client::new(),
        keys,
        statements,
        db,
        config,
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
