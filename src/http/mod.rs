//! The HTTP surface: `/graphql` (POST and GET queries, mutations over POST,
//! GraphiQL for browsers, a WebSocket upgrade for subscriptions), the
//! dashboard, `/healthz` and `/readyz`, with the edge limits every request
//! passes: a whole-request timeout (408), CORS for configured origins, and
//! in [`graphql`] the body limit, no uploads and the query cost check.

mod graphql;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use async_graphql::http::WebSocketProtocols;
use axum::{
    Extension, Router,
    extract::{
        ConnectInfo, RawQuery, State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection,
    },
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use sea_orm::DatabaseConnection;
use tower_http::{
    cors::{AllowOrigin, CorsLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    auth::Authenticator,
    graphql::{AppSchema, admit::Admission},
    metrics::Metrics,
    store, web,
    ws::{self, WsContext},
};

pub use graphql::error_response;

/// Limits of one HTTP request.
#[derive(Debug, Clone)]
pub struct EdgeLimits {
    /// Largest body, counted on the wire.
    pub max_body_bytes: usize,
    /// Whole-request timeout.
    pub request_timeout: Duration,
    /// Origins allowed to call from a browser.
    pub cors_allowed_origins: Vec<String>,
    /// What one request may produce while it runs.
    pub budget: crate::graphql::budget::BudgetLimits,
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    /// Reads of queries and readiness checks.
    pub reads: DatabaseConnection,
    /// Writes.
    pub db: DatabaseConnection,
    pub auth: Authenticator,
    /// What WebSocket connections share.
    pub ws: WsContext,
    pub limits: Arc<EdgeLimits>,
    /// What `/metrics` reports.
    pub metrics: Metrics,
    /// Parses and measures every request before it runs.
    pub admission: Arc<Admission>,
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    let limits = state.limits.clone();
    let mut router = Router::new()
        .route("/graphql", get(graphql_get).post(graphql::post))
        .route("/", get(web::dashboard))
        .route("/assets/{*path}", get(web::asset))
        .route("/favicon.svg", get(web::favicon))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            limits.request_timeout,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    if let Some(cors) = cors(&limits.cors_allowed_origins) {
        router = router.layer(cors);
    }
    router
}

/// The CORS grant for the configured origins; none when there are none.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .map(|o| o.trim().trim_end_matches('/'))
        .filter(|o| !o.is_empty())
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::POST, Method::GET, Method::OPTIONS])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
            .max_age(Duration::from_secs(600)),
    )
}

/// `GET /graphql`: a WebSocket upgrade for subscriptions, a query in the
/// URL, or GraphiQL for a browser.
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let protocol = headers
        .get(header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        });
    if let (Ok(upgrade), Some(protocol)) = (upgrade, protocol) {
        let Ok(permit) = state.ws.connections.clone().try_acquire_owned() else {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Too many WebSocket connections; try again later.",
            )
                .into_response();
        };
        let ws = state.ws;
        let Some(pending) = ws.pending.enter(
            peer.map(|Extension(ConnectInfo(address))| address.ip()),
            ws.settings.max_pending_per_address,
        ) else {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many unauthenticated WebSockets from this address; send connection_init on the open ones first.",
            )
                .into_response();
        };
        let tracked = ws.shutdown.clone();
        let authorization = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let limit = ws.settings.max_message_bytes;
        // Announce exactly the protocol this connection will speak.
        return upgrade
            .protocols([protocol.sec_websocket_protocol()])
            .max_message_size(limit)
            .max_frame_size(limit)
            // Client messages are small; the buffer grows for a large one
            // (up to the limit above) and idle sockets stay light.
            .read_buffer_size(1024)
            .write_buffer_size(4 * 1024)
            .on_upgrade(move |socket| {
                tracked.track(ws::serve(
                    socket,
                    protocol,
                    ws,
                    authorization,
                    pending,
                    permit,
                ))
            });
    }
    let asks_for_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    match raw {
        Some(query) if !query.is_empty() => graphql::get(state, headers, &query).await,
        _ if asks_for_html => web::graphiql(),
        _ => error_response(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            "GET /graphql needs a `query` parameter (URL-encoded); or POST a JSON body.",
        ),
    }
}

/// `GET /metrics`: counters in the Prometheus text format; with
/// `METRICS_TOKEN` set, only for `Authorization: Bearer <METRICS_TOKEN>`.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !state.metrics.allows(authorization) {
        return graphql::error_response(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Send 'Authorization: Bearer <METRICS_TOKEN>' to read the metrics.",
        );
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

/// Longest `/readyz` waits for the database before answering 503.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match tokio::time::timeout(READY_TIMEOUT, store::db::ready(&state.db)).await {
        Ok(Ok(())) => (StatusCode::OK, "ready".to_owned()),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable".to_owned(),
            )
        }
        Err(_) => {
            tracing::warn!("not ready: the database did not answer within 2 s");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable".to_owned(),
            )
        }
    }
}
