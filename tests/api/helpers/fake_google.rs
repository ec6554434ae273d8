//! A fake Google on one port of 127.0.0.1, faithful to the REST formats:
//!
//! - BigQuery v2: `jobs.query` (`POST /bigquery/v2/projects/{p}/queries`),
//!   `jobs.insert` (`POST …/jobs`), `jobs.getQueryResults`
//!   (`GET …/queries/{job}`), `jobs.get` (`GET …/jobs/{job}`) and
//!   `jobs.cancel` (`POST …/jobs/{job}/cancel`);
//! - the GCE metadata server (`/computeMetadata/v1/…`, for
//!   `GCE_METADATA_HOST` or `mds::Builder::with_endpoint`);
//! - the IAM Credentials API (`POST /v1/projects/-/serviceAccounts/{email}:generateAccessToken`);
//! - an OAuth 2 token endpoint (`POST /token`, the JWT-bearer grant), which
//!   the key files name as `token_uri`.
//!
//! Every BigQuery and IAM request's bearer token is verified: an RS256 JWT
//! that a service account signed itself with a key from
//! [`FakeGoogle::service_account_key`] (header `kid` = `private_key_id`,
//! `iss` = `sub` = `client_email`, `scope` or `aud`, `exp` in the future),
//! or an opaque token the fake handed out itself (metadata server,
//! `generateAccessToken`, `/token`). IAM is data: [`FakeGoogle::grant`],
//! [`FakeGoogle::grant_service_usage`], [`FakeGoogle::allow_impersonation`].
//!
//! What a query returns: `SELECT <number>` (optionally `AS alias` or a bare
//! alias, optionally a trailing `;`) returns that number: INTEGER when the
//! literal has no `.`/exponent, else FLOAT. Any other SQL returns the value
//! of the most recent [`FakeGoogle::set_value`] whose key occurs in the SQL
//! text or equals the job's project; an INTEGER when the value is whole,
//! else a FLOAT. The one column is named by the literal's alias, else `f0_`.
//! With no value a real run answers 400 `invalidQuery`, while a dry run
//! still succeeds (typed FLOAT), as dry runs do not evaluate.
//!
//! What a dry run lists as `referencedTables` (comments and string literals
//! ignored, duplicates dropped, in order of appearance): every
//! backtick-quoted name with a dot (`` `p.d.t` `` → p/d/t, `` `d.t` `` →
//! the job's project) wherever it appears, and every unquoted dotted name
//! (`d.t` → job's project, `p.d.t`; hyphens allowed) that stands where a
//! table goes: right after `FROM` or `JOIN`, or after a comma in a `FROM`
//! list. `EXTRACT(… FROM x.y)` does not count. A default dataset is not
//! supported: a bare name is a CTE, never a table.
//!
//! Job modes ([`FakeGoogle::slow_jobs`], [`FakeGoogle::without_job`],
//! [`FakeGoogle::fast_jobs`]) apply to jobs created after the call.

#![allow(dead_code)]

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{Arc, Mutex, MutexGuard, OnceLock},
};

use axum::{
    Router,
    extract::{Request, State as AxState},
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

/// The account the metadata server's tokens are for until told otherwise.
pub const DEFAULT_METADATA_ACCOUNT: &str = "okr-pulse@vendor-project.iam.gserviceaccount.com";
/// The `cloud-platform` OAuth scope.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
const IAM_SCOPE: &str = "https://www.googleapis.com/auth/iam";
/// Bytes every job reports as processed.
pub const BYTES_PROCESSED: u64 = 1024;
const INVALID_CREDENTIALS: &str = "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.";
const GET_ACCESS_TOKEN_DENIED: &str =
    "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).";

/// How a slow job's completion reply looks (see [`FakeGoogle::slow_jobs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    /// The completing `getQueryResults` carries the rows and `totalRows`,
    /// whatever its `maxResults`.
    RowsInline,
    /// It carries `totalRows` "1" and a `pageToken` but no rows; only a
    /// `getQueryResults` with that `pageToken` returns them.
    PageTokenOnly,
    /// It carries `totalRows` "1", no rows and no `pageToken`; a later
    /// `getQueryResults` without `pageToken` and with `maxResults` absent or
    /// above 0 returns the rows.
    NoRowsNoToken,
    /// `totalRows` "1", but no request ever returns the rows.
    LostRows,
}

/// One request the fake answered.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query: String,
    /// Who the bearer token proved the caller to be (None without a valid one).
    pub principal: Option<String>,
    pub user_agent: Option<String>,
    /// The `x-goog-user-project` header.
    pub user_project: Option<String>,
    /// The request carried a bearer token that verified (even if the fake
    /// then answered 401 because of [`FakeGoogle::unauthorized_once`]).
    pub authorization_ok: bool,
    /// The bearer token as sent, to tell a fresh token from a reused one.
    pub token: Option<String>,
    /// JSON bodies as JSON, form bodies as an object, none as Null.
    pub body: Value,
    /// The HTTP status the fake answered.
    pub status: u16,
}

/// A fake Google on 127.0.0.1, stopped when dropped.
pub struct FakeGoogle {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    addr: SocketAddr,
    state: Arc<Mutex<FakeState>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeGoogle {
    /// Starts the fake on a free port of 127.0.0.1 (on the current tokio runtime).
    pub async fn start() -> FakeGoogle {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake Google");
        let addr = listener.local_addr().expect("the fake's address");
        let url = format!("http://{addr}");
        let state = Arc::new(Mutex::new(FakeState {
            url: url.clone(),
            metadata_account: DEFAULT_METADATA_ACCOUNT.to_owned(),
            token_lifetime: 3600,
            ..FakeState::default()
        }));
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&state));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        FakeGoogle {
            url,
            addr,
            state,
            shutdown: Some(tx),
        }
    }

    /// `127.0.0.1:PORT`, as `GCE_METADATA_HOST` wants it.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A new service-account key for `email` (a fresh `private_key_id`),
    /// registered so that JWTs it signs verify. Each call adds a key; all stay valid.
    pub fn service_account_key(&self, email: &str) -> Value {
        let kid = random_hex(20);
        self.lock().key_ids.insert(kid.clone(), email.to_owned());
        self.key_json(email, &kid, &registered_key().pem)
    }

    /// A key file for `email` whose private key the fake does not have for
    /// it: it reuses the `private_key_id` of one of `email`'s registered
    /// keys (else a fresh one), so its JWTs fail on the signature → 401.
    pub fn wrong_service_account_key(&self, email: &str) -> Value {
        let kid = {
            let state = self.lock();
            let mut kids: Vec<&String> = state
                .key_ids
                .iter()
                .filter(|(_, owner)| owner.as_str() == email)
                .map(|(kid, _)| kid)
                .collect();
            kids.sort();
            kids.first().map(|k| (*k).clone())
        };
        let kid = kid.unwrap_or_else(|| random_hex(20));
        self.key_json(email, &kid, &unregistered_key().pem)
    }

    fn key_json(&self, email: &str, kid: &str, pem: &str) -> Value {
        json!({
            "type": "service_account",
            "project_id": project_of(email),
            "private_key_id": kid,
            "private_key": pem,
            "client_email": email,
            "client_id": client_id(email),
            "auth_uri": format!("{}/o/oauth2/auth", self.url),
            "token_uri": format!("{}/token", self.url),
            "auth_provider_x509_cert_url": format!("{}/oauth2/v1/certs", self.url),
            "client_x509_cert_url": format!("{}/robot/v1/metadata/x509/{}", self.url, email.replace('@', "%40")),
            "universe_domain": "googleapis.com",
        })
    }

    /// An `impersonated_service_account` credentials file: `source`
    /// (a key from [`Self::service_account_key`]) impersonates `target`
    /// through this fake's `generateAccessToken`.
    pub fn impersonated_key(&self, source: &Value, target: &str) -> Value {
        json!({
            "type": "impersonated_service_account",
            "service_account_impersonation_url": format!(
                "{}/v1/projects/-/serviceAccounts/{target}:generateAccessToken",
                self.url
            ),
            "delegates": [],
            "source_credentials": source,
        })
    }

    /// Writes `key` as pretty JSON into `dir` and returns the file's path.
    pub fn write_key_file(&self, dir: &Path, key: &Value) -> PathBuf {
        let email = key["client_email"]
            .as_str()
            .or_else(|| {
                key["service_account_impersonation_url"]
                    .as_str()
                    .and_then(|u| u.rsplit('/').next())
                    .and_then(|t| t.split(':').next())
            })
            .unwrap_or("key");
        let local = email.split('@').next().unwrap_or("key");
        let id = key["private_key_id"].as_str().unwrap_or("impersonated");
        let path = dir.join(format!("{local}-{}.json", &id[..id.len().min(8)]));
        std::fs::write(&path, serde_json::to_string_pretty(key).expect("JSON"))
            .expect("write the key file");
        path
    }

    /// Lets `principal` run (and read) jobs in `project`.
    pub fn grant(&self, principal: &str, project: &str) {
        self.lock()
            .grants
            .insert((principal.to_owned(), project.to_owned()));
    }

    /// Lets `principal` name `project` in `x-goog-user-project`.
    pub fn grant_service_usage(&self, principal: &str, project: &str) {
        self.lock()
            .service_usage
            .insert((principal.to_owned(), project.to_owned()));
    }

    /// Lets `caller` mint tokens for `target` (Service Account Token Creator).
    pub fn allow_impersonation(&self, caller: &str, target: &str) {
        self.lock()
            .impersonation
            .insert((caller.to_owned(), target.to_owned()));
    }

    /// The account the metadata server's future tokens and `email` are for.
    pub fn set_metadata_account(&self, email: &str) {
        self.lock().metadata_account = email.to_owned();
    }

    /// How long tokens the fake issues itself (metadata server, `/token`)
    /// live; 3600 s by default. google-cloud-auth refreshes 240 s before
    /// expiry, or every 10 s once a token has less than that left.
    pub fn set_token_lifetime(&self, seconds: u64) {
        self.lock().token_lifetime = seconds;
    }

    /// Queries whose SQL contains `key` (or that run in project `key`)
    /// return `value`; the most recent matching call wins.
    pub fn set_value(&self, key: &str, value: f64) {
        let mut state = self.lock();
        state.values.retain(|(k, _)| k != key);
        state.values.push((key.to_owned(), value));
    }

    /// From now on `jobs.query` answers `jobComplete: false` (with a
    /// `jobReference`), the next `polls` `getQueryResults` of each job too,
    /// and the one after that completes as `shape` says.
    pub fn slow_jobs(&self, polls: u32, shape: Completion) {
        self.lock().mode = JobMode::Slow { polls, shape };
    }

    /// From now on `jobs.query` completes at once with rows, a `queryId`
    /// and no `jobReference` (what `JOB_CREATION_OPTIONAL` may do).
    pub fn without_job(&self) {
        self.lock().mode = JobMode::WithoutJob;
    }

    /// Back to the default: `jobs.query` completes at once with rows, a
    /// `jobReference` and a `queryId`.
    pub fn fast_jobs(&self) {
        self.lock().mode = JobMode::Immediate;
    }

    /// The next BigQuery request answers 401 whatever its token (calls add up).
    pub fn unauthorized_once(&self) {
        self.lock().unauthorized_pending += 1;
    }

    /// How many 401s [`Self::unauthorized_once`] has caused so far.
    pub fn forced_unauthorized(&self) -> u32 {
        self.lock().unauthorized_served
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.lock().requests.clone()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.lock().requests.clear();
    }

    /// The distinct principals of BigQuery requests on `project`, first seen first.
    pub fn principals_for(&self, project: &str) -> Vec<String> {
        let prefix = format!("/bigquery/v2/projects/{project}/");
        let mut seen = Vec::new();
        for r in self.lock().requests.iter() {
            if let Some(p) = &r.principal
                && r.path.starts_with(&prefix)
                && !seen.contains(p)
            {
                seen.push(p.clone());
            }
        }
        seen
    }

    /// The BigQuery requests on `project` (any method), in order.
    pub fn bigquery_requests(&self, project: &str) -> Vec<Recorded> {
        let prefix = format!("/bigquery/v2/projects/{project}/");
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path.starts_with(&prefix))
            .cloned()
            .collect()
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------- keys

struct KeyPair {
    /// PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----").
    pem: String,
    n: Vec<u8>,
    e: Vec<u8>,
}

fn generate_key() -> KeyPair {
    use rsa::pkcs8::EncodePrivateKey;
    use rsa::traits::PublicKeyParts;
    let private =
        rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).expect("generate a test RSA key");
    let pem = private
        .to_pkcs8_pem(rsa::pkcs8::LineEnding::LF)
        .expect("PKCS#8 PEM")
        .as_str()
        .to_owned();
    KeyPair {
        pem,
        n: private.n().to_bytes_be(),
        e: private.e().to_bytes_be(),
    }
}

/// The key behind every registered `private_key_id` (one per test process).
fn registered_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(generate_key)
}

/// A key the fake never registers: JWTs it signs never verify.
fn unregistered_key() -> &'static KeyPair {
    static KEY: OnceLock<KeyPair> = OnceLock::new();
    KEY.get_or_init(generate_key)
}

// ---------------------------------------------------------------- state

#[derive(Default)]
struct FakeState {
    url: String,
    /// Registered `private_key_id` → `client_email` (all with [`registered_key`]).
    key_ids: HashMap<String, String>,
    tokens: HashMap<String, Issued>,
    grants: HashSet<(String, String)>,
    service_usage: HashSet<(String, String)>,
    impersonation: HashSet<(String, String)>,
    metadata_account: String,
    token_lifetime: u64,
    values: Vec<(String, f64)>,
    mode: JobMode,
    unauthorized_pending: u32,
    unauthorized_served: u32,
    jobs: HashMap<(String, String), FakeJob>,
    requests: Vec<Recorded>,
}

#[derive(Clone, Copy, Debug, Default)]
enum JobMode {
    #[default]
    Immediate,
    WithoutJob,
    Slow {
        polls: u32,
        shape: Completion,
    },
}

struct Issued {
    principal: String,
    scopes: Vec<String>,
    expires: DateTime<Utc>,
}

/// Who a bearer token proved the caller to be.
struct Caller {
    principal: String,
    scopes: Vec<String>,
    audience: Option<String>,
}

impl Caller {
    /// Whether the token is good for `service` (`bigquery.googleapis.com`, …).
    fn may_call(&self, service: &str, scope: &str) -> bool {
        if let Some(aud) = &self.audience {
            return aud.trim_end_matches('/') == format!("https://{service}");
        }
        self.scopes
            .iter()
            .any(|s| s == CLOUD_PLATFORM_SCOPE || s == scope)
    }
}

struct FakeJob {
    project: String,
    id: String,
    location: String,
    principal: String,
    statement_type: String,
    column: Option<Column>,
    configuration: Value,
    created_ms: i64,
    remaining_polls: u32,
    /// None: completed at once.
    shape: Option<Completion>,
    completion_sent: bool,
    page_token: String,
    cancelled: bool,
}

impl FakeJob {
    fn reference(&self) -> Value {
        json!({ "projectId": self.project, "jobId": self.id, "location": self.location })
    }

    fn rows(&self) -> Vec<Value> {
        self.column
            .iter()
            .map(|c| json!({ "f": [{ "v": c.value }] }))
            .collect()
    }

    fn total_rows(&self) -> String {
        self.rows().len().to_string()
    }

    fn done(&self) -> bool {
        self.cancelled || self.remaining_polls == 0
    }

    fn resource(&self) -> Value {
        let mut statistics = json!({
            "creationTime": self.created_ms.to_string(),
            "startTime": (self.created_ms + 1).to_string(),
            "totalBytesProcessed": BYTES_PROCESSED.to_string(),
            "query": {
                "totalBytesProcessed": BYTES_PROCESSED.to_string(),
                "totalBytesBilled": BYTES_PROCESSED.to_string(),
                "cacheHit": false,
                "statementType": self.statement_type,
            },
        });
        if let Some(schema) = schema_json(self.column.as_ref()) {
            statistics["query"]["schema"] = schema;
        }
        let mut status = json!({ "state": if self.done() { "DONE" } else { "RUNNING" } });
        if self.done() {
            statistics["endTime"] = json!((self.created_ms + 2).to_string());
        }
        if self.cancelled {
            let error = json!({
                "reason": "stopped",
                "message": "Job execution was cancelled: User requested cancellation",
            });
            status["errorResult"] = error.clone();
            status["errors"] = json!([error]);
        }
        json!({
            "kind": "bigquery#job",
            "etag": random_hex(12),
            "id": format!("{}:{}.{}", self.project, self.location, self.id),
            "selfLink": format!(
                "https://bigquery.googleapis.com/bigquery/v2/projects/{}/jobs/{}?location={}",
                self.project, self.id, self.location
            ),
            "user_email": self.principal,
            "principal_subject": format!("serviceAccount:{}", self.principal),
            "jobReference": self.reference(),
            "configuration": self.configuration,
            "status": status,
            "statistics": statistics,
        })
    }
}

/// The one column a query returns.
#[derive(Clone, Debug, PartialEq)]
struct Column {
    name: String,
    kind: &'static str,
    /// As BigQuery renders it in `rows[].f[].v`.
    value: String,
}

fn schema_json(column: Option<&Column>) -> Option<Value> {
    column.map(|c| json!({ "fields": [{ "name": c.name, "type": c.kind, "mode": "NULLABLE" }] }))
}

// ---------------------------------------------------------------- HTTP

/// What one request looks like to the routes.
struct Incoming {
    method: Method,
    path: String,
    params: Vec<(String, String)>,
    headers: HeaderMap,
    body: Value,
}

impl Incoming {
    fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

/// What a route decided.
struct Answer {
    principal: Option<String>,
    authorization_ok: bool,
    response: Response,
}

impl Answer {
    fn anonymous(response: Response) -> Answer {
        Answer {
            principal: None,
            authorization_ok: false,
            response,
        }
    }
}

async fn handle(AxState(state): AxState<Arc<Mutex<FakeState>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let is_form = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let body = if bytes.is_empty() {
        Value::Null
    } else if is_form {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
        Value::Object(
            pairs
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect(),
        )
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    let query = parts.uri.query().unwrap_or("").to_owned();
    let incoming = Incoming {
        method: parts.method.clone(),
        path: parts.uri.path().to_owned(),
        params: serde_urlencoded::from_str(&query).unwrap_or_default(),
        headers: parts.headers.clone(),
        body: body.clone(),
    };
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    let answer = route(&mut state, &incoming);
    state.requests.push(Recorded {
        method: parts.method.to_string(),
        path: incoming.path.clone(),
        query,
        principal: answer.principal,
        user_agent: incoming.header("user-agent"),
        user_project: incoming.header("x-goog-user-project"),
        authorization_ok: answer.authorization_ok,
        token: incoming
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer ").map(str::to_owned)),
        body,
        status: answer.response.status().as_u16(),
    });
    answer.response
}

fn route(state: &mut FakeState, req: &Incoming) -> Answer {
    let path = req.path.clone();
    if let Some(rest) = path.strip_prefix("/bigquery/v2/projects/") {
        let segments: Vec<String> = rest.split('/').map(percent_decode).collect();
        return bigquery(state, req, &segments);
    }
    if let Some(rest) = path.strip_prefix("/computeMetadata/v1/") {
        return Answer::anonymous(metadata(state, req, rest));
    }
    if path == "/computeMetadata/v1" || path == "/" {
        return Answer::anonymous(metadata(state, req, ""));
    }
    if let Some(rest) = path.strip_prefix("/v1/projects/")
        && let Some((_, account)) = rest.split_once("/serviceAccounts/")
    {
        return iam(state, req, &percent_decode(account));
    }
    if path == "/token" && req.method == Method::POST {
        return Answer::anonymous(oauth_token(state, req));
    }
    Answer::anonymous(google_error(
        StatusCode::NOT_FOUND,
        &format!("The fake Google has no {} {}", req.method, path),
        vec![],
    ))
}

// ---------------------------------------------------------------- authentication

#[derive(serde::Deserialize)]
struct JwtClaims {
    iss: String,
    sub: Option<String>,
    scope: Option<String>,
    aud: Option<Value>,
    iat: Option<i64>,
}

/// Verifies an RS256 JWT signed with a registered key; returns the
/// account that signed it and its claims.
fn verify_jwt(state: &FakeState, token: &str) -> Option<(String, JwtClaims)> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    if header.alg != jsonwebtoken::Algorithm::RS256 {
        return None;
    }
    let email = state.key_ids.get(header.kid.as_deref()?)?;
    let key = registered_key();
    let decoding = jsonwebtoken::DecodingKey::from_rsa_raw_components(&key.n, &key.e);
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_aud = false;
    validation.leeway = 0;
    validation.set_required_spec_claims(&["exp", "iss"]);
    let data = jsonwebtoken::decode::<JwtClaims>(token, &decoding, &validation).ok()?;
    let claims = data.claims;
    if &claims.iss != email {
        return None;
    }
    // Assertions dated in the future are refused, with a little skew allowed.
    if claims
        .iat
        .is_some_and(|iat| iat > Utc::now().timestamp() + 30)
    {
        return None;
    }
    Some((email.clone(), claims))
}

/// The caller a request's `Authorization: Bearer …` proves, if any.
fn authenticate(state: &FakeState, headers: &HeaderMap) -> Option<Caller> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    if token.matches('.').count() == 2 && !token.starts_with("ya29.") {
        let (email, claims) = verify_jwt(state, token)?;
        // A self-signed JWT used as an access token: iss == sub, and a
        // scope or an audience.
        if claims.sub.as_deref() != Some(email.as_str()) {
            return None;
        }
        let scopes: Vec<String> = claims
            .scope
            .as_deref()
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        let audience = claims
            .aud
            .as_ref()
            .and_then(Value::as_str)
            .map(str::to_owned);
        if scopes.is_empty() && audience.is_none() {
            return None;
        }
        return Some(Caller {
            principal: email,
            scopes,
            audience,
        });
    }
    let issued = state.tokens.get(token)?;
    (issued.expires > Utc::now()).then(|| Caller {
        principal: issued.principal.clone(),
        scopes: issued.scopes.clone(),
        audience: None,
    })
}

fn issue_token(
    state: &mut FakeState,
    principal: &str,
    scopes: Vec<String>,
    seconds: i64,
) -> (String, DateTime<Utc>) {
    let token = format!("ya29.fake-{}", random_hex(24));
    let expires = Utc::now() + Duration::seconds(seconds);
    state.tokens.insert(
        token.clone(),
        Issued {
            principal: principal.to_owned(),
            scopes,
            expires,
        },
    );
    (token, expires)
}

// ---------------------------------------------------------------- error bodies

fn status_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ALREADY_EXISTS",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    }
}

fn json_response(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

/// The error body of Google APIs (google.rpc.Status under `error`).
fn google_error(status: StatusCode, message: &str, details: Vec<Value>) -> Response {
    let mut error = json!({
        "code": status.as_u16(),
        "message": message,
        "status": status_name(status),
    });
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    json_response(status, json!({ "error": error }))
}

/// BigQuery's error body: Google's plus the `errors` array with a `reason`.
fn bigquery_error(
    status: StatusCode,
    reason: &str,
    message: &str,
    details: Vec<Value>,
) -> Response {
    let mut error = json!({
        "code": status.as_u16(),
        "message": message,
        "errors": [{ "message": message, "domain": "global", "reason": reason }],
        "status": status_name(status),
    });
    if !details.is_empty() {
        error["details"] = Value::Array(details);
    }
    json_response(status, json!({ "error": error }))
}

fn with_www_authenticate(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static(
            "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"",
        ),
    );
    response
}

fn bigquery_unauthenticated() -> Response {
    with_www_authenticate(bigquery_error(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        INVALID_CREDENTIALS,
        vec![],
    ))
}

fn user_project_denied_parts(project: &str, service: &str) -> (String, Vec<Value>) {
    let console =
        format!("https://console.developers.google.com/iam-admin/iam/project?project={project}");
    let message = format!(
        "Caller does not have required permission to use project {project}. Grant the caller the roles/serviceusage.serviceUsageConsumer role, or a custom role with the serviceusage.services.use permission, by visiting {console} and then retry. Propagation of the new permission may take a few minutes."
    );
    let details = vec![
        json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "USER_PROJECT_DENIED",
            "domain": "googleapis.com",
            "metadata": { "service": service, "consumer": format!("projects/{project}") },
        }),
        json!({
            "@type": "type.googleapis.com/google.rpc.Help",
            "links": [{ "description": "Google developer console IAM admin", "url": console }],
        }),
    ];
    (message, details)
}

fn scope_insufficient_details(service: &str) -> Vec<Value> {
    vec![json!({
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
        "domain": "googleapis.com",
        "metadata": { "service": service },
    })]
}

// ---------------------------------------------------------------- BigQuery

fn bigquery(state: &mut FakeState, req: &Incoming, segments: &[String]) -> Answer {
    let caller = authenticate(state, &req.headers);
    let principal = caller.as_ref().map(|c| c.principal.clone());
    let authorization_ok = caller.is_some();
    let answer = |response| Answer {
        principal: principal.clone(),
        authorization_ok,
        response,
    };
    if state.unauthorized_pending > 0 {
        state.unauthorized_pending -= 1;
        state.unauthorized_served += 1;
        return answer(bigquery_unauthenticated());
    }
    let Some(caller) = caller else {
        return answer(bigquery_unauthenticated());
    };
    if !caller.may_call("bigquery.googleapis.com", BIGQUERY_SCOPE) {
        return answer(bigquery_error(
            StatusCode::FORBIDDEN,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
            scope_insufficient_details("bigquery.googleapis.com"),
        ));
    }
    if let Some(user_project) = req.header("x-goog-user-project")
        && !state
            .service_usage
            .contains(&(caller.principal.clone(), user_project.clone()))
    {
        let (message, details) =
            user_project_denied_parts(&user_project, "bigquery.googleapis.com");
        return answer(bigquery_error(
            StatusCode::FORBIDDEN,
            "forbidden",
            &message,
            details,
        ));
    }
    let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
    let project = segs.first().copied().unwrap_or_default();
    let permission = if req.method == Method::GET {
        "bigquery.jobs.get"
    } else {
        "bigquery.jobs.create"
    };
    if !state
        .grants
        .contains(&(caller.principal.clone(), project.to_owned()))
    {
        return answer(bigquery_error(
            StatusCode::FORBIDDEN,
            "accessDenied",
            &format!(
                "Access Denied: Project {project}: User does not have {permission} permission in project {project}."
            ),
            vec![],
        ));
    }
    let response = match (req.method.as_str(), segs.as_slice()) {
        ("POST", [project, "queries"]) => jobs_query(state, &caller, project, &req.body),
        ("POST", [project, "jobs"]) => jobs_insert(state, &caller, project, &req.body),
        ("GET", [project, "queries", job]) => get_query_results(state, req, project, job),
        ("GET", [project, "jobs", job]) => get_job(state, req, project, job),
        ("POST", [project, "jobs", job, "cancel"]) => cancel_job(state, req, project, job),
        _ => bigquery_error(
            StatusCode::NOT_FOUND,
            "notFound",
            &format!(
                "Not found: the fake BigQuery has no {} {}",
                req.method, req.path
            ),
            vec![],
        ),
    };
    answer(response)
}

fn invalid_query(message: &str) -> Response {
    bigquery_error(StatusCode::BAD_REQUEST, "invalidQuery", message, vec![])
}

/// The job's location: the one asked for, else US.
fn location_of(value: &Value) -> String {
    value
        .as_str()
        .filter(|l| !l.is_empty())
        .unwrap_or("US")
        .to_owned()
}

fn jobs_query(state: &mut FakeState, caller: &Caller, project: &str, body: &Value) -> Response {
    let Some(sql) = body["query"].as_str().filter(|s| !s.trim().is_empty()) else {
        return bigquery_error(
            StatusCode::BAD_REQUEST,
            "required",
            "Required parameter is missing: query",
            vec![],
        );
    };
    let location = location_of(&body["location"]);
    let plan = plan(sql, project, &state.values);
    if body["dryRun"].as_bool() == Some(true) {
        let mut response = json!({
            "kind": "bigquery#queryResponse",
            "jobReference": { "projectId": project, "location": location },
            "totalBytesProcessed": BYTES_PROCESSED.to_string(),
            "jobComplete": true,
            "cacheHit": false,
            "location": location,
        });
        if let Some(schema) = schema_json(plan.dry_run_column().as_ref()) {
            response["schema"] = schema;
        }
        return json_response(StatusCode::OK, response);
    }
    let column = match plan.run_column() {
        Ok(c) => c,
        Err(message) => return invalid_query(&message),
    };
    let now_ms = Utc::now().timestamp_millis();
    let query_id = format!("fakequery_{}", random_hex(12));
    let no_rows_asked = body["maxResults"].as_u64() == Some(0);
    let mode = state.mode;
    if let JobMode::WithoutJob = mode {
        let job = FakeJob {
            project: project.to_owned(),
            id: String::new(),
            location: location.clone(),
            principal: caller.principal.clone(),
            statement_type: plan.statement_type.clone(),
            column,
            configuration: Value::Null,
            created_ms: now_ms,
            remaining_polls: 0,
            shape: None,
            completion_sent: true,
            page_token: String::new(),
            cancelled: false,
        };
        let mut response = complete_query_response(&job, !no_rows_asked);
        response["queryId"] = json!(query_id);
        return json_response(StatusCode::OK, response);
    }
    let (remaining_polls, shape) = match mode {
        JobMode::Slow { polls, shape } => (polls, Some(shape)),
        _ => (0, None),
    };
    let job = FakeJob {
        project: project.to_owned(),
        id: format!("job_{}", random_hex(16)),
        location: location.clone(),
        principal: caller.principal.clone(),
        statement_type: plan.statement_type.clone(),
        column,
        configuration: json!({
            "jobType": "QUERY",
            "query": {
                "query": sql,
                "useLegacySql": body["useLegacySql"].as_bool().unwrap_or(true),
            },
            "labels": body["labels"].clone(),
        }),
        created_ms: now_ms,
        remaining_polls,
        shape,
        completion_sent: shape.is_none(),
        page_token: format!("fakepage_{}", random_hex(12)),
        cancelled: false,
    };
    let response = if shape.is_some() {
        json!({
            "kind": "bigquery#queryResponse",
            "jobReference": job.reference(),
            "jobComplete": false,
            "queryId": query_id,
            "location": location,
        })
    } else {
        let mut r = complete_query_response(&job, !no_rows_asked);
        r["jobReference"] = job.reference();
        r["queryId"] = json!(query_id);
        r
    };
    state
        .jobs
        .insert((job.project.clone(), job.id.clone()), job);
    json_response(StatusCode::OK, response)
}

/// A completed jobs.query reply (without jobReference and queryId).
fn complete_query_response(job: &FakeJob, with_rows: bool) -> Value {
    let mut response = json!({
        "kind": "bigquery#queryResponse",
        "totalRows": job.total_rows(),
        "totalBytesProcessed": BYTES_PROCESSED.to_string(),
        "totalBytesBilled": BYTES_PROCESSED.to_string(),
        "jobComplete": true,
        "cacheHit": false,
        "location": job.location,
        "creationTime": job.created_ms.to_string(),
        "startTime": (job.created_ms + 1).to_string(),
        "endTime": (job.created_ms + 2).to_string(),
    });
    if let Some(schema) = schema_json(job.column.as_ref()) {
        response["schema"] = schema;
    }
    let rows = job.rows();
    if with_rows && !rows.is_empty() {
        response["rows"] = Value::Array(rows);
    }
    if job.column.is_none() && is_dml(&job.statement_type) {
        response["numDmlAffectedRows"] = json!("0");
    }
    response
}

fn is_dml(statement_type: &str) -> bool {
    matches!(statement_type, "INSERT" | "UPDATE" | "DELETE" | "MERGE")
}

fn jobs_insert(state: &mut FakeState, caller: &Caller, project: &str, body: &Value) -> Response {
    let configuration = &body["configuration"];
    let Some(sql) = configuration["query"]["query"]
        .as_str()
        .filter(|s| !s.trim().is_empty())
    else {
        return bigquery_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            "The fake BigQuery only runs query jobs: configuration.query.query is missing",
            vec![],
        );
    };
    let reference = &body["jobReference"];
    let location = location_of(&reference["location"]);
    let plan = plan(sql, project, &state.values);
    let now_ms = Utc::now().timestamp_millis();
    if configuration["dryRun"].as_bool() == Some(true) {
        let column = plan.dry_run_column();
        let tables: Vec<Value> = plan
            .tables
            .iter()
            .map(|(p, d, t)| json!({ "projectId": p, "datasetId": d, "tableId": t }))
            .collect();
        let mut query_statistics = json!({
            "totalBytesProcessed": BYTES_PROCESSED.to_string(),
            "totalBytesProcessedAccuracy": "PRECISE",
            "totalBytesBilled": "0",
            "cacheHit": false,
            "statementType": plan.statement_type,
            "referencedTables": tables,
        });
        if let Some(schema) = schema_json(column.as_ref()) {
            query_statistics["schema"] = schema;
        }
        // A dry run creates no job: its reference has no jobId.
        let job = json!({
            "kind": "bigquery#job",
            "etag": random_hex(12),
            "jobReference": { "projectId": project, "location": location },
            "configuration": configuration,
            "status": { "state": "DONE" },
            "statistics": {
                "creationTime": now_ms.to_string(),
                "totalBytesProcessed": BYTES_PROCESSED.to_string(),
                "query": query_statistics,
            },
            "user_email": caller.principal,
            "principal_subject": format!("serviceAccount:{}", caller.principal),
        });
        return json_response(StatusCode::OK, job);
    }
    let column = match plan.run_column() {
        Ok(c) => c,
        Err(message) => return invalid_query(&message),
    };
    let id = reference["jobId"]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .unwrap_or_else(|| format!("job_{}", random_hex(16)));
    if state.jobs.contains_key(&(project.to_owned(), id.clone())) {
        return bigquery_error(
            StatusCode::CONFLICT,
            "duplicate",
            &format!("Already Exists: Job {project}:{location}.{id}"),
            vec![],
        );
    }
    let (remaining_polls, shape) = match state.mode {
        JobMode::Slow { polls, shape } => (polls, Some(shape)),
        _ => (0, None),
    };
    let job = FakeJob {
        project: project.to_owned(),
        id,
        location,
        principal: caller.principal.clone(),
        statement_type: plan.statement_type.clone(),
        column,
        configuration: configuration.clone(),
        created_ms: now_ms,
        remaining_polls,
        shape,
        completion_sent: shape.is_none(),
        page_token: format!("fakepage_{}", random_hex(12)),
        cancelled: false,
    };
    let resource = job.resource();
    state
        .jobs
        .insert((job.project.clone(), job.id.clone()), job);
    json_response(StatusCode::OK, resource)
}

fn job_not_found(project: &str, location: Option<&str>, job: &str) -> Response {
    let name = match location {
        Some(l) => format!("{project}:{l}.{job}"),
        None => format!("{project}:{job}"),
    };
    bigquery_error(
        StatusCode::NOT_FOUND,
        "notFound",
        &format!("Not found: Job {name}"),
        vec![],
    )
}

/// Finds a job as BigQuery does: the location must match when given; without
/// one only jobs in the US and EU multi-regions are found.
fn find_job<'a>(
    state: &'a mut FakeState,
    req: &Incoming,
    project: &str,
    job: &str,
) -> Result<&'a mut FakeJob, Box<Response>> {
    let location = req.param("location");
    match state.jobs.get_mut(&(project.to_owned(), job.to_owned())) {
        Some(found)
            if location.map_or_else(
                || {
                    ["US", "EU"]
                        .iter()
                        .any(|m| found.location.eq_ignore_ascii_case(m))
                },
                |l| l.eq_ignore_ascii_case(&found.location),
            ) =>
        {
            Ok(found)
        }
        _ => Err(Box::new(job_not_found(project, location, job))),
    }
}

fn get_query_results(
    state: &mut FakeState,
    req: &Incoming,
    project: &str,
    job_id: &str,
) -> Response {
    let job = match find_job(state, req, project, job_id) {
        Ok(job) => job,
        Err(response) => return *response,
    };
    let etag = random_hex(12);
    if job.cancelled {
        return bigquery_error(
            StatusCode::BAD_REQUEST,
            "stopped",
            "Job execution was cancelled: User requested cancellation",
            vec![],
        );
    }
    if job.remaining_polls > 0 {
        job.remaining_polls -= 1;
        return json_response(
            StatusCode::OK,
            json!({
                "kind": "bigquery#getQueryResultsResponse",
                "etag": etag,
                "jobReference": job.reference(),
                "jobComplete": false,
            }),
        );
    }
    let first = !job.completion_sent;
    job.completion_sent = true;
    let max_results: Option<u64> = req.param("maxResults").and_then(|v| v.parse().ok());
    let start_index: usize = req
        .param("startIndex")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let page_token = req.param("pageToken");
    let all = job.rows();
    let slice = || -> Vec<Value> {
        all.iter()
            .skip(start_index)
            .take(max_results.map_or(usize::MAX, |m| m as usize))
            .cloned()
            .collect()
    };
    let invalid_token = || {
        bigquery_error(
            StatusCode::BAD_REQUEST,
            "invalid",
            &format!("Invalid page token: {}", page_token.unwrap_or_default()),
            vec![],
        )
    };
    let (rows, next_token): (Vec<Value>, Option<String>) = match job.shape {
        Some(Completion::RowsInline) if first => (all.clone(), None),
        Some(Completion::PageTokenOnly) => match page_token {
            Some(t) if t == job.page_token => (slice(), None),
            Some(_) => return invalid_token(),
            None => (vec![], Some(job.page_token.clone())),
        },
        Some(Completion::NoRowsNoToken) if first => (vec![], None),
        Some(Completion::LostRows) => match page_token {
            Some(_) => return invalid_token(),
            None => (vec![], None),
        },
        _ => match page_token {
            Some(_) => return invalid_token(),
            None if max_results == Some(0) => (vec![], None),
            None => (slice(), None),
        },
    };
    let mut response = json!({
        "kind": "bigquery#getQueryResultsResponse",
        "etag": etag,
        "jobReference": job.reference(),
        "totalRows": job.total_rows(),
        "totalBytesProcessed": BYTES_PROCESSED.to_string(),
        "jobComplete": true,
        "cacheHit": false,
    });
    if let Some(schema) = schema_json(job.column.as_ref()) {
        response["schema"] = schema;
    }
    if !rows.is_empty() {
        response["rows"] = Value::Array(rows);
    }
    if let Some(token) = next_token {
        response["pageToken"] = json!(token);
    }
    if job.column.is_none() && is_dml(&job.statement_type) {
        response["numDmlAffectedRows"] = json!("0");
    }
    json_response(StatusCode::OK, response)
}

fn get_job(state: &mut FakeState, req: &Incoming, project: &str, job_id: &str) -> Response {
    match find_job(state, req, project, job_id) {
        Ok(job) => json_response(StatusCode::OK, job.resource()),
        Err(response) => *response,
    }
}

fn cancel_job(state: &mut FakeState, req: &Incoming, project: &str, job_id: &str) -> Response {
    match find_job(state, req, project, job_id) {
        Ok(job) => {
            if !job.done() {
                job.cancelled = true;
                job.remaining_polls = 0;
            }
            json_response(
                StatusCode::OK,
                json!({ "kind": "bigquery#jobCancelResponse", "job": job.resource() }),
            )
        }
        Err(response) => *response,
    }
}

// ---------------------------------------------------------------- SQL

/// What the fake makes of a query's SQL.
#[derive(Debug, PartialEq)]
struct Plan {
    statement_type: String,
    /// (project, dataset, table)
    tables: Vec<(String, String, String)>,
    /// The value, if the SQL is a literal SELECT or a set value matches.
    column: Option<Column>,
}

impl Plan {
    /// The column a dry run reports: FLOAT `f0_` for a SELECT with no value.
    fn dry_run_column(&self) -> Option<Column> {
        match (&self.column, self.statement_type.as_str()) {
            (Some(c), _) => Some(c.clone()),
            (None, "SELECT") => Some(Column {
                name: "f0_".to_owned(),
                kind: "FLOAT",
                value: String::new(),
            }),
            _ => None,
        }
    }

    /// The column a real run returns; a SELECT without a value is an error.
    fn run_column(&self) -> Result<Option<Column>, String> {
        match (&self.column, self.statement_type.as_str()) {
            (Some(c), _) => Ok(Some(c.clone())),
            (None, "SELECT") => Err(
                "The fake BigQuery has no value for this query: make it `SELECT <number>` or call FakeGoogle::set_value".to_owned(),
            ),
            _ => Ok(None),
        }
    }
}

fn plan(sql: &str, project: &str, values: &[(String, f64)]) -> Plan {
    let clean = strip_comments_and_strings(sql);
    let statement_type = statement_type(&clean);
    let column = if statement_type == "SELECT" {
        literal_select(&clean).or_else(|| {
            values
                .iter()
                .rev()
                .find(|(key, _)| sql.contains(key.as_str()) || key == project)
                .map(|(_, v)| value_column(*v))
        })
    } else {
        None
    };
    Plan {
        statement_type,
        tables: referenced_tables(&clean, project),
        column,
    }
}

/// A set value as BigQuery would render it.
fn value_column(value: f64) -> Column {
    let whole = value.is_finite() && value.fract() == 0.0 && value.abs() < 9.0e15;
    if whole {
        Column {
            name: "f0_".to_owned(),
            kind: "INTEGER",
            value: format!("{}", value as i64),
        }
    } else {
        Column {
            name: "f0_".to_owned(),
            kind: "FLOAT",
            value: render_float(value),
        }
    }
}

fn render_float(value: f64) -> String {
    if value.is_nan() {
        "NaN".to_owned()
    } else if value.is_infinite() {
        if value > 0.0 { "Infinity" } else { "-Infinity" }.to_owned()
    } else {
        format!("{value}")
    }
}

/// `SELECT <number> [[AS] alias]`.
fn literal_select(clean: &str) -> Option<Column> {
    let text = clean.trim().trim_end_matches(';').trim();
    let words: Vec<&str> = text.split_whitespace().collect();
    let (number, alias) = match words.as_slice() {
        [select, number] if select.eq_ignore_ascii_case("select") => (*number, None),
        [select, number, alias] if select.eq_ignore_ascii_case("select") => (*number, Some(*alias)),
        [select, number, as_, alias]
            if select.eq_ignore_ascii_case("select") && as_.eq_ignore_ascii_case("as") =>
        {
            (*number, Some(*alias))
        }
        _ => return None,
    };
    let digits = number.strip_prefix(['-', '+']).unwrap_or(number);
    if !digits.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        || !digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '+' | '-'))
    {
        return None;
    }
    let parsed: f64 = number.parse().ok()?;
    let name = match alias {
        Some(a) => {
            let a = a.trim_matches('`');
            if a.is_empty() || !a.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return None;
            }
            a.to_owned()
        }
        None => "f0_".to_owned(),
    };
    let float = digits.contains(['.', 'e', 'E']);
    Some(if float {
        Column {
            name,
            kind: "FLOAT",
            value: render_float(parsed),
        }
    } else {
        Column {
            name,
            kind: "INTEGER",
            value: number.trim_start_matches('+').to_owned(),
        }
    })
}

/// The SQL without comments, with every string literal emptied (`''`);
/// backtick-quoted names are kept as they are.
fn strip_comments_and_strings(sql: &str) -> String {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = String::with_capacity(sql.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if (c == '-' && next == Some('-')) || c == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
            out.push(' ');
        } else if c == '\'' || c == '"' {
            let triple = next == Some(c) && chars.get(i + 2) == Some(&c);
            i += if triple { 3 } else { 1 };
            while i < chars.len() {
                if chars[i] == '\\' {
                    i += 2;
                    continue;
                }
                if chars[i] == c
                    && (!triple || (chars.get(i + 1) == Some(&c) && chars.get(i + 2) == Some(&c)))
                {
                    i += if triple { 3 } else { 1 };
                    break;
                }
                i += 1;
            }
            out.push_str("''");
        } else if c == '`' {
            out.push(c);
            i += 1;
            while i < chars.len() && chars[i] != '`' {
                out.push(chars[i]);
                i += 1;
            }
            if i < chars.len() {
                out.push('`');
                i += 1;
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The statement type a dry run reports, from the first keywords; more than
/// one statement is a SCRIPT.
fn statement_type(clean: &str) -> String {
    let statements = clean.split(';').filter(|s| !s.trim().is_empty()).count();
    if statements > 1 {
        return "SCRIPT".to_owned();
    }
    let words: Vec<String> = clean
        .split(|c: char| c.is_whitespace() || c == '(')
        .filter(|w| !w.is_empty())
        .take(6)
        .map(str::to_ascii_uppercase)
        .collect();
    if clean.trim_start().starts_with('(') {
        return "SELECT".to_owned();
    }
    let Some(first) = words.first() else {
        return String::new();
    };
    match first.as_str() {
        "SELECT" | "WITH" => "SELECT".to_owned(),
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" => first.clone(),
        "TRUNCATE" => "TRUNCATE_TABLE".to_owned(),
        "DECLARE" | "SET" | "BEGIN" | "IF" | "LOOP" | "WHILE" | "CALL" => "SCRIPT".to_owned(),
        "EXPORT" => "EXPORT_DATA".to_owned(),
        "CREATE" | "DROP" | "ALTER" => {
            let skip = [
                "OR",
                "REPLACE",
                "TEMP",
                "TEMPORARY",
                "MATERIALIZED",
                "EXTERNAL",
                "SNAPSHOT",
                "TABLE_FUNCTION",
            ];
            let object = words[1..]
                .iter()
                .find(|w| !skip.contains(&w.as_str()))
                .cloned()
                .unwrap_or_default();
            let object = if words.iter().any(|w| w == "MATERIALIZED") && object == "VIEW" {
                "MATERIALIZED_VIEW".to_owned()
            } else {
                object
            };
            format!("{first}_{object}")
        }
        other => other.to_owned(),
    }
}

/// One piece of the (cleaned) SQL, for [`referenced_tables`].
#[derive(Debug, PartialEq)]
enum Tok {
    /// Identifiers joined by dots; `quoted` when any part was in backticks.
    Path {
        text: String,
        quoted: bool,
    },
    Punct(char),
}

fn tokenize(clean: &str) -> Vec<Tok> {
    let chars: Vec<char> = clean.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '*';
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' || (is_word(c) && c != '-' && c != '*') {
            let mut text = String::new();
            let mut quoted = false;
            loop {
                if chars.get(i) == Some(&'`') {
                    quoted = true;
                    i += 1;
                    while i < chars.len() && chars[i] != '`' {
                        text.push(chars[i]);
                        i += 1;
                    }
                    i += 1;
                } else {
                    while i < chars.len() && is_word(chars[i]) {
                        text.push(chars[i]);
                        i += 1;
                    }
                }
                let continues = chars.get(i) == Some(&'.')
                    && chars
                        .get(i + 1)
                        .is_some_and(|&n| n == '`' || (is_word(n) && n != '-'));
                if !continues {
                    break;
                }
                text.push('.');
                i += 1;
            }
            tokens.push(Tok::Path { text, quoted });
        } else {
            tokens.push(Tok::Punct(c));
            i += 1;
        }
    }
    tokens
}

/// The tables a query reads (see the module's documentation for the rule).
fn referenced_tables(clean: &str, project: &str) -> Vec<(String, String, String)> {
    const CLAUSE_ENDS: [&str; 15] = [
        "WHERE",
        "GROUP",
        "ORDER",
        "HAVING",
        "LIMIT",
        "QUALIFY",
        "WINDOW",
        "UNION",
        "INTERSECT",
        "EXCEPT",
        "SELECT",
        "ON",
        "USING",
        "PIVOT",
        "UNPIVOT",
    ];
    const FUNCTIONS_WITH_FROM: [&str; 4] = ["EXTRACT", "TRIM", "SUBSTRING", "OVERLAY"];
    struct Frame {
        in_from: bool,
        opener: String,
    }
    let mut tables: Vec<(String, String, String)> = Vec::new();
    let mut add = |path: &str| {
        let parts: Vec<&str> = path.split('.').collect();
        let table = match parts.as_slice() {
            [d, t] => (project.to_owned(), (*d).to_owned(), (*t).to_owned()),
            [p, d, t] => ((*p).to_owned(), (*d).to_owned(), (*t).to_owned()),
            _ => return,
        };
        if parts.iter().any(|p| p.is_empty()) || tables.contains(&table) {
            return;
        }
        tables.push(table);
    };
    let mut stack = vec![Frame {
        in_from: false,
        opener: String::new(),
    }];
    let mut expect_table = false;
    let mut previous_word = String::new();
    for tok in tokenize(clean) {
        match tok {
            Tok::Path { text, quoted } => {
                let upper = text.to_ascii_uppercase();
                let frame = stack.last_mut().expect("a frame");
                if quoted && text.contains('.') {
                    add(&text);
                    expect_table = false;
                } else if !quoted && upper == "FROM" {
                    if !FUNCTIONS_WITH_FROM.contains(&frame.opener.as_str()) {
                        frame.in_from = true;
                        expect_table = true;
                    }
                } else if !quoted && upper == "JOIN" {
                    frame.in_from = true;
                    expect_table = true;
                } else if !quoted && CLAUSE_ENDS.contains(&upper.as_str()) {
                    frame.in_from = false;
                    expect_table = false;
                } else {
                    if expect_table && text.contains('.') {
                        add(&text);
                    }
                    expect_table = false;
                }
                previous_word = upper;
            }
            Tok::Punct('(') => {
                stack.push(Frame {
                    in_from: false,
                    opener: std::mem::take(&mut previous_word),
                });
                expect_table = false;
            }
            Tok::Punct(')') => {
                if stack.len() > 1 {
                    stack.pop();
                }
                expect_table = false;
                previous_word.clear();
            }
            Tok::Punct(',') => {
                expect_table = stack.last().is_some_and(|f| f.in_from);
                previous_word.clear();
            }
            Tok::Punct(_) => {
                expect_table = false;
                previous_word.clear();
            }
        }
    }
    tables
}

// ---------------------------------------------------------------- metadata server

fn text_response(status: StatusCode, text: &str) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/text"),
            (header::HeaderName::from_static("metadata-flavor"), "Google"),
        ],
        text.to_owned(),
    )
        .into_response()
}

fn metadata(state: &mut FakeState, req: &Incoming, rest: &str) -> Response {
    let flavor = req.header("metadata-flavor");
    if flavor.as_deref() != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            "Missing required header \"Metadata-Flavor\": \"Google\"",
        )
            .into_response();
    }
    if req.method != Method::GET {
        return text_response(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    }
    let account = state.metadata_account.clone();
    let rest = rest.trim_end_matches('/');
    if rest.is_empty() {
        return text_response(StatusCode::OK, "instance/\nproject/\nuniverse/\n");
    }
    if rest == "instance/service-accounts" {
        return text_response(StatusCode::OK, &format!("default/\n{account}/\n"));
    }
    if let Some(tail) = rest.strip_prefix("instance/service-accounts/") {
        let (who, what) = tail.split_once('/').unwrap_or((tail, ""));
        let who = percent_decode(who);
        if who != "default" && who != account {
            return text_response(StatusCode::NOT_FOUND, "Not Found");
        }
        return match what {
            "" => text_response(StatusCode::OK, "aliases\nemail\nidentity\nscopes\ntoken\n"),
            "email" => text_response(StatusCode::OK, &account),
            "aliases" => text_response(StatusCode::OK, "default"),
            "scopes" => text_response(StatusCode::OK, &format!("{CLOUD_PLATFORM_SCOPE}\n")),
            "token" => {
                let scopes: Vec<String> = req
                    .param("scopes")
                    .map(|s| {
                        s.split(',')
                            .map(str::trim)
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_else(|| vec![CLOUD_PLATFORM_SCOPE.to_owned()]);
                let lifetime = state.token_lifetime as i64;
                let (token, _) = issue_token(state, &account, scopes, lifetime);
                let mut response = json_response(
                    StatusCode::OK,
                    json!({
                        "access_token": token,
                        "expires_in": lifetime.saturating_sub(1).max(0),
                        "token_type": "Bearer",
                    }),
                );
                response.headers_mut().insert(
                    header::HeaderName::from_static("metadata-flavor"),
                    header::HeaderValue::from_static("Google"),
                );
                response
            }
            _ => text_response(StatusCode::NOT_FOUND, "Not Found"),
        };
    }
    match rest {
        "universe/universe-domain" => text_response(StatusCode::OK, "googleapis.com"),
        "project/project-id" => text_response(StatusCode::OK, &project_of(&account)),
        "project/numeric-project-id" => text_response(StatusCode::OK, &client_id(&account)[..12]),
        _ => text_response(StatusCode::NOT_FOUND, "Not Found"),
    }
}

// ---------------------------------------------------------------- IAM Credentials

fn iam(state: &mut FakeState, req: &Incoming, account: &str) -> Answer {
    let caller = authenticate(state, &req.headers);
    let principal = caller.as_ref().map(|c| c.principal.clone());
    let authorization_ok = caller.is_some();
    let answer = |response| Answer {
        principal: principal.clone(),
        authorization_ok,
        response,
    };
    let Some(caller) = caller else {
        let details = if req.headers.contains_key(header::AUTHORIZATION) {
            vec![]
        } else {
            vec![json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "CREDENTIALS_MISSING",
                "domain": "googleapis.com",
                "metadata": { "service": "iamcredentials.googleapis.com" },
            })]
        };
        return answer(with_www_authenticate(google_error(
            StatusCode::UNAUTHORIZED,
            INVALID_CREDENTIALS,
            details,
        )));
    };
    if !caller.may_call("iamcredentials.googleapis.com", IAM_SCOPE) {
        return answer(google_error(
            StatusCode::FORBIDDEN,
            "Request had insufficient authentication scopes.",
            scope_insufficient_details("iamcredentials.googleapis.com"),
        ));
    }
    if let Some(user_project) = req.header("x-goog-user-project")
        && !state
            .service_usage
            .contains(&(caller.principal.clone(), user_project.clone()))
    {
        let (message, details) =
            user_project_denied_parts(&user_project, "iamcredentials.googleapis.com");
        return answer(google_error(StatusCode::FORBIDDEN, &message, details));
    }
    if account.ends_with("/allowedLocations") && req.method == Method::GET {
        return answer(json_response(
            StatusCode::OK,
            json!({ "locations": [], "encodedLocations": "0x0" }),
        ));
    }
    let Some(target) = account.strip_suffix(":generateAccessToken") else {
        return answer(google_error(
            StatusCode::NOT_FOUND,
            &format!(
                "The fake IAM Credentials API has no {} {}",
                req.method, req.path
            ),
            vec![],
        ));
    };
    if req.method != Method::POST {
        return answer(google_error(
            StatusCode::NOT_FOUND,
            &format!(
                "The fake IAM Credentials API has no {} {}",
                req.method, req.path
            ),
            vec![],
        ));
    }
    // caller → delegates… → target, each link a Token Creator grant.
    let mut chain = vec![caller.principal.clone()];
    for delegate in req.body["delegates"].as_array().into_iter().flatten() {
        let name = delegate.as_str().unwrap_or_default();
        chain.push(name.rsplit('/').next().unwrap_or(name).to_owned());
    }
    chain.push(target.to_owned());
    let allowed = chain.windows(2).all(|pair| {
        state
            .impersonation
            .contains(&(pair[0].clone(), pair[1].clone()))
    });
    if !allowed {
        return answer(google_error(
            StatusCode::FORBIDDEN,
            GET_ACCESS_TOKEN_DENIED,
            vec![json!({
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "IAM_PERMISSION_DENIED",
                "domain": "iam.googleapis.com",
                "metadata": { "permission": "iam.serviceAccounts.getAccessToken" },
            })],
        ));
    }
    let scopes: Vec<String> = req.body["scope"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    if scopes.is_empty() {
        return answer(google_error(
            StatusCode::BAD_REQUEST,
            "Scope required.",
            vec![],
        ));
    }
    let lifetime = match req.body["lifetime"].as_str() {
        None => Some(3600),
        Some(text) => text
            .strip_suffix('s')
            .and_then(|n| n.parse::<f64>().ok())
            .map(|n| n.ceil() as i64),
    };
    let Some(lifetime) = lifetime.filter(|l| (1..=43200).contains(l)) else {
        return answer(google_error(
            StatusCode::BAD_REQUEST,
            "The lifetime must be between 1s and 43200s.",
            vec![],
        ));
    };
    let (token, expires) = issue_token(state, target, scopes, lifetime);
    answer(json_response(
        StatusCode::OK,
        json!({
            "accessToken": token,
            "expireTime": expires.to_rfc3339_opts(SecondsFormat::Secs, true),
        }),
    ))
}

// ---------------------------------------------------------------- OAuth 2 token endpoint

fn oauth_error(error: &str, description: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        json!({ "error": error, "error_description": description }),
    )
}

/// The JWT-bearer grant: a service account's signed assertion (aud = this
/// endpoint) for an access token.
fn oauth_token(state: &mut FakeState, req: &Incoming) -> Response {
    if req.body["grant_type"].as_str() != Some("urn:ietf:params:oauth:grant-type:jwt-bearer") {
        return oauth_error("unsupported_grant_type", "Invalid grant_type.");
    }
    let Some(assertion) = req.body["assertion"].as_str() else {
        return oauth_error("invalid_request", "Missing required parameter: assertion");
    };
    let Some((email, claims)) = verify_jwt(state, assertion) else {
        return oauth_error("invalid_grant", "Invalid JWT Signature.");
    };
    let token_uri = format!("{}/token", state.url);
    if claims.aud.as_ref().and_then(Value::as_str) != Some(token_uri.as_str()) {
        return oauth_error(
            "invalid_grant",
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. Check your iat and exp values in the JWT claim.",
        );
    }
    let scopes: Vec<String> = claims
        .scope
        .as_deref()
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    if scopes.is_empty() {
        return oauth_error(
            "invalid_scope",
            "Invalid OAuth scope or ID token audience provided.",
        );
    }
    let lifetime = state.token_lifetime as i64;
    let (token, _) = issue_token(state, &email, scopes, lifetime);
    json_response(
        StatusCode::OK,
        json!({ "access_token": token, "expires_in": lifetime.saturating_sub(1).max(0), "token_type": "Bearer" }),
    )
}

// ---------------------------------------------------------------- small things

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// `x@P.iam.gserviceaccount.com` → P.
fn project_of(email: &str) -> String {
    email
        .split_once('@')
        .and_then(|(_, domain)| domain.strip_suffix(".iam.gserviceaccount.com"))
        .unwrap_or("fake-project")
        .to_owned()
}

/// A stable 21-digit client id for an account.
fn client_id(email: &str) -> String {
    let hash = email.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("1{hash:020}")
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod checks {
    use super::*;
    use google_cloud_auth::credentials::{
        CacheableResource, Credentials, impersonated, mds, service_account,
    };

    const SA: &str = "runner@client-project.iam.gserviceaccount.com";
    const TARGET: &str = "reader@data-project.iam.gserviceaccount.com";
    const PROJECT: &str = "analytics-project";
    const ALT: &str = "%24alt=json%3Benum-encoding%3Dint";

    async fn headers(creds: &Credentials) -> anyhow::Result<HeaderMap> {
        match creds.headers(axum::http::Extensions::new()).await? {
            CacheableResource::New { data, .. } => Ok(data),
            CacheableResource::NotModified => anyhow::bail!("no headers"),
        }
    }

    async fn send(request: reqwest::RequestBuilder) -> anyhow::Result<(u16, Value)> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let text = response.text().await?;
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    async fn query(
        fake: &FakeGoogle,
        headers: &HeaderMap,
        project: &str,
        sql: &str,
    ) -> anyhow::Result<(u16, Value)> {
        send(
            reqwest::Client::new()
                .post(format!(
                    "{}/bigquery/v2/projects/{project}/queries?{ALT}",
                    fake.url
                ))
                .headers(headers.clone())
                .json(&json!({ "query": sql, "useLegacySql": false, "requestId": "r1" })),
        )
        .await
    }

    /// jobs.getQueryResults as the v2 client sends it (empty `pageToken` included).
    async fn results(
        fake: &FakeGoogle,
        headers: &HeaderMap,
        job: &Value,
        extra: &str,
    ) -> anyhow::Result<(u16, Value)> {
        let extra = if extra.contains("pageToken") {
            extra.to_owned()
        } else {
            format!("{extra}&pageToken=")
        };
        send(
            reqwest::Client::new()
                .get(format!(
                    "{}/bigquery/v2/projects/{}/queries/{}?location={}{extra}&{ALT}",
                    fake.url,
                    job["projectId"].as_str().unwrap(),
                    job["jobId"].as_str().unwrap(),
                    job["location"].as_str().unwrap(),
                ))
                .headers(headers.clone()),
        )
        .await
    }

    fn forty_two() -> Value {
        json!([{ "f": [{ "v": "42" }] }])
    }

    async fn signed_in(fake: &FakeGoogle, email: &str) -> anyhow::Result<HeaderMap> {
        headers(&service_account::Builder::new(fake.service_account_key(email)).build()?).await
    }

    #[tokio::test]
    async fn fake_google_accepts_a_self_signed_jwt_and_refuses_a_wrong_key() -> anyhow::Result<()> {
        let fake = FakeGoogle::start().await;
        let key = fake.service_account_key(SA);
        fake.grant(SA, PROJECT);
        let signed = headers(&service_account::Builder::new(key.clone()).build()?).await?;

        // The token is the JWT google-cloud-auth signs itself.
        let token = signed[header::AUTHORIZATION]
            .to_str()?
            .strip_prefix("Bearer ")
            .expect("a bearer token");
        let jwt_header = jsonwebtoken::decode_header(token)?;
        assert_eq!(jwt_header.kid.as_deref(), key["private_key_id"].as_str());
        assert_eq!(jwt_header.alg, jsonwebtoken::Algorithm::RS256);
        let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(token)?.claims;
        assert_eq!(claims["iss"], SA);
        assert_eq!(claims["sub"], SA);
        assert_eq!(claims["scope"], CLOUD_PLATFORM_SCOPE);
        assert_eq!(claims["aud"], Value::Null);
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 3620, "{claims}");

        let (status, body) = query(&fake, &signed, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["rows"], forty_two());
        assert_eq!(body["totalRows"], "1");
        assert_eq!(body["totalBytesProcessed"], "1024");
        assert_eq!(body["jobComplete"], true);
        assert_eq!(body["schema"]["fields"][0]["name"], "f0_");
        assert_eq!(body["schema"]["fields"][0]["type"], "INTEGER");
        assert_eq!(body["jobReference"]["projectId"], PROJECT);
        assert_eq!(body["jobReference"]["location"], "US");
        assert!(
            body["jobReference"]["jobId"]
                .as_str()
                .is_some_and(|j| !j.is_empty())
        );
        assert!(body["queryId"].is_string());
        assert_eq!(fake.principals_for(PROJECT), vec![SA.to_owned()]);

        // Not granted on the project.
        let (status, body) = query(&fake, &signed, "elsewhere", "SELECT 1").await?;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["errors"][0]["reason"], "accessDenied");
        assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(
            body["error"]["message"],
            "Access Denied: Project elsewhere: User does not have bigquery.jobs.create permission in project elsewhere."
        );

        // Same email and key id, another private key.
        let wrong = service_account::Builder::new(fake.wrong_service_account_key(SA)).build()?;
        let (status, body) = query(&fake, &headers(&wrong).await?, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["code"], 401);
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
        assert_eq!(body["error"]["errors"][0]["reason"], "unauthorized");
        assert_eq!(body["error"]["errors"][0]["domain"], "global");

        // No token, or a token the fake never issued.
        let (status, _) = query(&fake, &HeaderMap::new(), PROJECT, "SELECT 42").await?;
        assert_eq!(status, 401);
        let mut forged = HeaderMap::new();
        forged.insert(header::AUTHORIZATION, "Bearer ya29.forged".parse()?);
        let (status, _) = query(&fake, &forged, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 401);

        let recorded = fake.requests();
        assert_eq!(recorded.len(), 5);
        assert!(recorded[0].authorization_ok);
        assert_eq!(recorded[0].principal.as_deref(), Some(SA));
        assert_eq!(recorded[0].body["query"], "SELECT 42");
        assert!(recorded[0].query.contains("alt"));
        assert!(!recorded[2].authorization_ok);
        assert_eq!(recorded[2].principal, None);
        assert_eq!(recorded[2].status, 401);

        // The key file is shaped like Google's.
        let dir = tempfile::tempdir()?;
        let path = fake.write_key_file(dir.path(), &key);
        let written: Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        assert_eq!(written, key);
        assert_eq!(key["type"], "service_account");
        assert_eq!(key["project_id"], "client-project");
        assert_eq!(key["token_uri"], format!("{}/token", fake.url));
        assert_eq!(key["universe_domain"], "googleapis.com");
        assert_eq!(key["private_key_id"].as_str().unwrap().len(), 40);
        assert!(
            key["private_key"]
                .as_str()
                .unwrap()
                .starts_with("-----BEGIN PRIVATE KEY-----\n")
        );
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_metadata_server_tokens_are_accepted() -> anyhow::Result<()> {
        let fake = FakeGoogle::start().await;
        fake.grant(DEFAULT_METADATA_ACCOUNT, PROJECT);
        let creds = mds::Builder::default()
            .with_endpoint(fake.url.clone())
            .build()?;
        let from_metadata = headers(&creds).await?;
        let (status, body) = query(&fake, &from_metadata, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            fake.principals_for(PROJECT),
            vec![DEFAULT_METADATA_ACCOUNT.to_owned()]
        );
        assert_eq!(
            creds.universe_domain().await.as_deref(),
            Some("googleapis.com")
        );

        let paths: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
        assert!(
            paths.contains(
                &"/computeMetadata/v1/instance/service-accounts/default/token".to_owned()
            ),
            "{paths:?}"
        );
        assert!(
            paths.contains(&"/computeMetadata/v1/universe/universe-domain".to_owned()),
            "{paths:?}"
        );

        // Scopes travel as ?scopes=a,b.
        let scoped = mds::Builder::default()
            .with_endpoint(fake.url.clone())
            .with_scopes([BIGQUERY_SCOPE, IAM_SCOPE])
            .build()?;
        headers(&scoped).await?;
        let last_token = fake
            .requests()
            .into_iter()
            .rfind(|r| r.path.ends_with("/token"))
            .unwrap();
        let params: Vec<(String, String)> = serde_urlencoded::from_str(&last_token.query)?;
        assert_eq!(
            params,
            vec![("scopes".to_owned(), format!("{BIGQUERY_SCOPE},{IAM_SCOPE}"))]
        );

        // The email, and the header the metadata server insists on.
        let email_url = format!(
            "{}/computeMetadata/v1/instance/service-accounts/default/email",
            fake.url
        );
        let client = reqwest::Client::new();
        let email = client
            .get(&email_url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await?;
        assert_eq!(email.status(), 200);
        assert_eq!(email.text().await?, DEFAULT_METADATA_ACCOUNT);
        assert_eq!(client.get(&email_url).send().await?.status(), 403);
        fake.set_metadata_account("other@vendor-project.iam.gserviceaccount.com");
        let email = client
            .get(&email_url)
            .header("Metadata-Flavor", "Google")
            .send()
            .await?
            .text()
            .await?;
        assert_eq!(email, "other@vendor-project.iam.gserviceaccount.com");
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_user_project_needs_service_usage() -> anyhow::Result<()> {
        let fake = FakeGoogle::start().await;
        fake.grant(SA, PROJECT);
        let creds = service_account::Builder::new(fake.service_account_key(SA))
            .with_quota_project_id("billing-project")
            .build()?;
        let billed = headers(&creds).await?;
        assert_eq!(billed["x-goog-user-project"], "billing-project");

        let (status, body) = query(&fake, &billed, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 403, "{body}");
        assert_eq!(body["error"]["status"], "PERMISSION_DENIED");
        assert_eq!(body["error"]["details"][0]["reason"], "USER_PROJECT_DENIED");
        assert_eq!(body["error"]["details"][0]["domain"], "googleapis.com");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("Caller does not have required permission to use project billing-project. Grant the caller the roles/serviceusage.serviceUsageConsumer role")
        );

        fake.grant_service_usage(SA, "billing-project");
        let (status, body) = query(&fake, &billed, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            fake.requests()[1].user_project.as_deref(),
            Some("billing-project")
        );
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_dry_run_lists_the_referenced_tables() -> anyhow::Result<()> {
        let fake = FakeGoogle::start().await;
        fake.grant(SA, PROJECT);
        let signed = signed_in(&fake, SA).await?;
        let sql = "SELECT COUNT(*) FROM `data-project.sales.orders` AS o\n\
                   JOIN crm.customers c ON o.customer = c.id -- FROM not.this\n\
                   WHERE o.status = 'FROM x.y' AND EXTRACT(YEAR FROM o.day) = 2024";
        let (status, job) = send(
            reqwest::Client::new()
                .post(format!("{}/bigquery/v2/projects/{PROJECT}/jobs?{ALT}", fake.url))
                .headers(signed.clone())
                .json(&json!({
                    "jobReference": { "projectId": PROJECT, "jobId": "job_dry", "location": "EU" },
                    "configuration": { "dryRun": true, "query": { "query": sql, "useLegacySql": false } },
                })),
        )
        .await?;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["status"]["state"], "DONE");
        assert_eq!(
            job["jobReference"],
            json!({ "projectId": PROJECT, "location": "EU" })
        );
        assert_eq!(job["statistics"]["totalBytesProcessed"], "1024");
        let stats = &job["statistics"]["query"];
        assert_eq!(stats["statementType"], "SELECT");
        assert_eq!(stats["totalBytesProcessed"], "1024");
        assert_eq!(
            stats["schema"]["fields"],
            json!([{ "name": "f0_", "type": "FLOAT", "mode": "NULLABLE" }])
        );
        assert_eq!(
            stats["referencedTables"],
            json!([
                { "projectId": "data-project", "datasetId": "sales", "tableId": "orders" },
                { "projectId": PROJECT, "datasetId": "crm", "tableId": "customers" },
            ])
        );

        let (status, job) = send(
            reqwest::Client::new()
                .post(format!("{}/bigquery/v2/projects/{PROJECT}/jobs?{ALT}", fake.url))
                .headers(signed.clone())
                .json(&json!({
                    "configuration": { "dryRun": true, "query": { "query": "DELETE FROM ds.t WHERE true" } },
                })),
        )
        .await?;
        assert_eq!(status, 200, "{job}");
        assert_eq!(job["statistics"]["query"]["statementType"], "DELETE");
        assert_eq!(job["statistics"]["query"]["schema"], Value::Null);
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_slow_jobs_complete_after_the_polls() -> anyhow::Result<()> {
        let fake = FakeGoogle::start().await;
        fake.grant(SA, PROJECT);
        let signed = signed_in(&fake, SA).await?;
        for shape in [
            Completion::RowsInline,
            Completion::PageTokenOnly,
            Completion::NoRowsNoToken,
            Completion::LostRows,
        ] {
            fake.slow_jobs(2, shape);
            let (status, started) = query(&fake, &signed, PROJECT, "SELECT 42").await?;
            assert_eq!(status, 200, "{started}");
            assert_eq!(started["jobComplete"], false, "{shape:?}");
            assert_eq!(started["rows"], Value::Null);
            assert!(started["queryId"].is_string());
            let job = started["jobReference"].clone();
            for _ in 0..2 {
                let (status, polled) = results(&fake, &signed, &job, "&maxResults=0").await?;
                assert_eq!(status, 200, "{polled}");
                assert_eq!(polled["jobComplete"], false, "{shape:?}");
            }
            let (_, done) = results(&fake, &signed, &job, "&maxResults=0").await?;
            assert_eq!(done["jobComplete"], true, "{shape:?}");
            assert_eq!(done["totalRows"], "1", "{shape:?}");
            match shape {
                Completion::RowsInline => assert_eq!(done["rows"], forty_two()),
                Completion::PageTokenOnly => {
                    assert_eq!(done["rows"], Value::Null);
                    let token = done["pageToken"].as_str().expect("a page token");
                    let (_, page) =
                        results(&fake, &signed, &job, &format!("&pageToken={token}")).await?;
                    assert_eq!(page["rows"], forty_two());
                    assert_eq!(page["pageToken"], Value::Null);
                    let (_, again) = results(&fake, &signed, &job, "&maxResults=10").await?;
                    assert_eq!(again["rows"], Value::Null);
                }
                Completion::NoRowsNoToken => {
                    assert_eq!(done["rows"], Value::Null);
                    assert_eq!(done["pageToken"], Value::Null);
                    let (_, later) = results(&fake, &signed, &job, "&maxResults=10").await?;
                    assert_eq!(later["rows"], forty_two());
                }
                Completion::LostRows => {
                    assert_eq!(done["rows"], Value::Null);
                    assert_eq!(done["pageToken"], Value::Null);
                    let (_, later) = results(&fake, &signed, &job, "&maxResults=10").await?;
                    assert_eq!(later["rows"], Value::Null);
                    assert_eq!(later["totalRows"], "1");
                }
            }
            let (status, resource) = send(
                reqwest::Client::new()
                    .get(format!(
                        "{}/bigquery/v2/projects/{PROJECT}/jobs/{}?location=US&{ALT}",
                        fake.url,
                        job["jobId"].as_str().unwrap()
                    ))
                    .headers(signed.clone()),
            )
            .await?;
            assert_eq!(status, 200, "{resource}");
            assert_eq!(resource["status"]["state"], "DONE");
        }
        // The wrong location does not find the job.
        fake.fast_jobs();
        let (_, done) = query(&fake, &signed, PROJECT, "SELECT 42").await?;
        let mut job = done["jobReference"].clone();
        job["location"] = json!("asia-northeast1");
        let (status, body) = results(&fake, &signed, &job, "").await?;
        assert_eq!(status, 404, "{body}");
        assert_eq!(body["error"]["errors"][0]["reason"], "notFound");

        fake.without_job();
        let (status, body) = query(&fake, &signed, PROJECT, "SELECT 7.5 AS share").await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["jobReference"], Value::Null);
        assert!(body["queryId"].is_string());
        assert_eq!(body["rows"], json!([{ "f": [{ "v": "7.5" }] }]));
        assert_eq!(
            body["schema"]["fields"],
            json!([{ "name": "share", "type": "FLOAT", "mode": "NULLABLE" }])
        );
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_set_values_and_unknown_queries() -> anyhow::Result<()> {
        let fake = FakeGoogle::start().await;
        fake.grant(SA, PROJECT);
        let signed = signed_in(&fake, SA).await?;
        let sql = "SELECT SUM(amount) FROM sales.orders WHERE day <= @as_of";
        let (status, body) = query(&fake, &signed, PROJECT, sql).await?;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["errors"][0]["reason"], "invalidQuery");
        fake.set_value(PROJECT, 1.0);
        fake.set_value("sales.orders", 12.25);
        let (_, body) = query(&fake, &signed, PROJECT, sql).await?;
        assert_eq!(body["rows"], json!([{ "f": [{ "v": "12.25" }] }]));
        assert_eq!(body["schema"]["fields"][0]["type"], "FLOAT");
        let (_, body) = query(&fake, &signed, PROJECT, "SELECT MAX(x) FROM other.t").await?;
        assert_eq!(body["rows"], json!([{ "f": [{ "v": "1" }] }]));
        assert_eq!(body["schema"]["fields"][0]["type"], "INTEGER");
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_unauthorized_once_answers_401_once() -> anyhow::Result<()> {
        let fake = FakeGoogle::start().await;
        fake.grant(SA, PROJECT);
        let signed = signed_in(&fake, SA).await?;
        fake.unauthorized_once();
        let (status, body) = query(&fake, &signed, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["error"]["status"], "UNAUTHENTICATED");
        let (status, _) = query(&fake, &signed, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 200);
        assert_eq!(fake.forced_unauthorized(), 1);
        let recorded = fake.requests();
        assert!(recorded[0].authorization_ok);
        assert_eq!(recorded[0].status, 401);
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_impersonation_needs_a_token_creator_grant() -> anyhow::Result<()> {
        let fake = FakeGoogle::start().await;
        fake.grant(TARGET, PROJECT);
        let source = fake.service_account_key(SA);
        let signed = headers(&service_account::Builder::new(source.clone()).build()?).await?;
        let url = format!(
            "{}/v1/projects/-/serviceAccounts/{TARGET}:generateAccessToken",
            fake.url
        );
        let request = json!({ "scope": [CLOUD_PLATFORM_SCOPE], "lifetime": "3600s" });
        let (status, body) = send(
            reqwest::Client::new()
                .post(&url)
                .headers(signed.clone())
                .json(&request),
        )
        .await?;
        assert_eq!(status, 403);
        assert_eq!(
            body,
            json!({"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).","status":"PERMISSION_DENIED","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"IAM_PERMISSION_DENIED","domain":"iam.googleapis.com","metadata":{"permission":"iam.serviceAccounts.getAccessToken"}}]}})
        );
        let refused = impersonated::Builder::new(fake.impersonated_key(&source, TARGET)).build()?;
        assert!(headers(&refused).await.is_err());

        fake.allow_impersonation(SA, TARGET);
        let (status, body) = send(
            reqwest::Client::new()
                .post(&url)
                .headers(signed.clone())
                .json(&request),
        )
        .await?;
        assert_eq!(status, 200, "{body}");
        let expires = DateTime::parse_from_rfc3339(body["expireTime"].as_str().unwrap())?;
        assert!(expires > Utc::now() + Duration::seconds(3500));
        let mut minted = HeaderMap::new();
        minted.insert(
            header::AUTHORIZATION,
            format!("Bearer {}", body["accessToken"].as_str().unwrap()).parse()?,
        );
        let (status, body) = query(&fake, &minted, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 200, "{body}");

        let allowed = impersonated::Builder::new(fake.impersonated_key(&source, TARGET)).build()?;
        let (status, body) = query(&fake, &headers(&allowed).await?, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(fake.principals_for(PROJECT), vec![TARGET.to_owned()]);
        // The source account itself may not query the project.
        let (status, _) = query(&fake, &signed, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 403);
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_token_endpoint_takes_a_jwt_bearer_grant() -> anyhow::Result<()> {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let fake = FakeGoogle::start().await;
        fake.grant(SA, PROJECT);
        let key = fake.service_account_key(SA);
        let private = rsa::RsaPrivateKey::from_pkcs8_pem(key["private_key"].as_str().unwrap())?;
        let der = private.to_pkcs1_der()?;
        let mut jwt_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        jwt_header.kid = key["private_key_id"].as_str().map(str::to_owned);
        let now = Utc::now().timestamp();
        let assertion = jsonwebtoken::encode(
            &jwt_header,
            &json!({ "iss": SA, "scope": BIGQUERY_SCOPE, "aud": key["token_uri"], "iat": now, "exp": now + 3600 }),
            &jsonwebtoken::EncodingKey::from_rsa_der(der.as_bytes()),
        )?;
        let (status, body) = send(
            reqwest::Client::new()
                .post(format!("{}/token", fake.url))
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                    ("assertion", assertion.as_str()),
                ]),
        )
        .await?;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["token_type"], "Bearer");
        let mut minted = HeaderMap::new();
        minted.insert(
            header::AUTHORIZATION,
            format!("Bearer {}", body["access_token"].as_str().unwrap()).parse()?,
        );
        let (status, body) = query(&fake, &minted, PROJECT, "SELECT 42").await?;
        assert_eq!(status, 200, "{body}");
        Ok(())
    }

    #[tokio::test]
    async fn fake_google_serves_the_real_bigquery_client() -> anyhow::Result<()> {
        use google_cloud_bigquery::client::BigQuery;
        let fake = FakeGoogle::start().await;
        fake.grant(SA, PROJECT);
        // The client names the job's project as quota project on every
        // request (`Query::with_project_id` → `x-goog-user-project`).
        fake.grant_service_usage(SA, PROJECT);
        let creds = service_account::Builder::new(fake.service_account_key(SA)).build()?;
        let client = BigQuery::builder()
            .with_endpoint(fake.url.clone())
            .with_credentials(creds)
            .with_project_id(PROJECT)
            .with_retry_policy(google_cloud_gax::retry_policy::NeverRetry)
            .build()
            .await?;

        let checked = client
            .query("SELECT x FROM `data-project.sales.orders`")
            .set_use_legacy_sql(false)
            .set_dry_run(true)
            .send()
            .await?;
        assert_eq!(checked.metadata().statement_type, "SELECT");
        let fields = &checked.metadata().schema.as_ref().unwrap().fields;
        assert_eq!(fields[0].r#type, "FLOAT");

        // How the client reads each completion shape (polls = 0: the first
        // getQueryResults completes, so the client never sleeps).
        for (shape, expected) in [
            (None, vec![Some(42.0)]),
            (Some(Completion::RowsInline), vec![Some(42.0)]),
            (Some(Completion::PageTokenOnly), vec![Some(42.0)]),
            (Some(Completion::NoRowsNoToken), vec![]),
            (Some(Completion::LostRows), vec![]),
        ] {
            match shape {
                None => fake.fast_jobs(),
                Some(shape) => fake.slow_jobs(0, shape),
            }
            let complete = client
                .query("SELECT 42")
                .set_use_legacy_sql(false)
                .until_done()
                .await?;
            assert_eq!(complete.metadata().total_rows, Some(1), "{shape:?}");
            let mut rows = complete.read();
            let mut values = Vec::new();
            while let Some(row) = rows.next().await {
                values.push(row?.get::<Option<f64>>(0usize)?);
            }
            assert_eq!(values, expected, "{shape:?}");
        }
        let recorded = fake.bigquery_requests(PROJECT);
        assert!(
            recorded
                .iter()
                .all(|r| r.user_project.as_deref() == Some(PROJECT) && r.status == 200),
            "{recorded:?}"
        );
        let polls = recorded
            .iter()
            .filter(|r| r.method == "GET" && r.path.contains("/queries/"))
            .collect::<Vec<_>>();
        assert!(
            polls.iter().any(|r| r.query.contains("maxResults=0")),
            "{polls:?}"
        );
        Ok(())
    }

    #[test]
    fn fake_google_sql_rules() {
        let tables = |sql: &str| referenced_tables(&strip_comments_and_strings(sql), "job-p");
        let t = |p: &str, d: &str, x: &str| (p.to_owned(), d.to_owned(), x.to_owned());
        assert_eq!(tables("SELECT 1"), vec![]);
        assert_eq!(
            tables("SELECT a.x FROM d1.t1 a, `p2.d2.t2`, my-proj.d3.t3 JOIN d1.t1 USING (k)"),
            vec![
                t("job-p", "d1", "t1"),
                t("p2", "d2", "t2"),
                t("my-proj", "d3", "t3")
            ]
        );
        assert_eq!(
            tables(
                "WITH c AS (SELECT * FROM `d.t`) SELECT c.v FROM c WHERE c.v IN (SELECT v FROM d.u)"
            ),
            vec![t("job-p", "d", "t"), t("job-p", "d", "u")]
        );
        assert_eq!(
            tables("SELECT EXTRACT(DAY FROM t.ts) FROM d.events_* t /* FROM x.y */ # FROM z.w\n"),
            vec![t("job-p", "d", "events_*")]
        );
        assert_eq!(
            tables("SELECT 'FROM a.b' FROM `p`.d.t"),
            vec![t("p", "d", "t")]
        );

        let literal = |sql: &str| literal_select(&strip_comments_and_strings(sql));
        let column = |name: &str, kind: &'static str, value: &str| Column {
            name: name.to_owned(),
            kind,
            value: value.to_owned(),
        };
        assert_eq!(literal("SELECT 42"), Some(column("f0_", "INTEGER", "42")));
        assert_eq!(
            literal("select -3 AS n;"),
            Some(column("n", "INTEGER", "-3"))
        );
        assert_eq!(
            literal("SELECT 2.50 share"),
            Some(column("share", "FLOAT", "2.5"))
        );
        assert_eq!(literal("SELECT 1e3"), Some(column("f0_", "FLOAT", "1000")));
        assert_eq!(literal("SELECT x"), None);
        assert_eq!(literal("SELECT 1 FROM t"), None);

        assert_eq!(statement_type("SELECT 1"), "SELECT");
        assert_eq!(statement_type(" (SELECT 1)"), "SELECT");
        assert_eq!(
            statement_type("WITH a AS (SELECT 1) SELECT * FROM a"),
            "SELECT"
        );
        assert_eq!(statement_type("insert into d.t values (1)"), "INSERT");
        assert_eq!(
            statement_type("CREATE OR REPLACE TABLE d.t AS SELECT 1"),
            "CREATE_TABLE"
        );
        assert_eq!(statement_type("DROP VIEW d.v"), "DROP_VIEW");
        assert_eq!(statement_type("SELECT 1; SELECT 2"), "SCRIPT");
        assert_eq!(statement_type("SELECT 1;"), "SELECT");

        assert_eq!(value_column(50.0), column("f0_", "INTEGER", "50"));
        assert_eq!(value_column(0.5), column("f0_", "FLOAT", "0.5"));
        assert_eq!(value_column(f64::NAN).value, "NaN");
        assert_eq!(percent_decode("a%40b.com"), "a@b.com");
    }
}
