//! The HTTP surface: `/graphql` (POST queries and mutations, GET GraphiQL
//! or a WebSocket upgrade for subscriptions), `/healthz` and `/readyz`.

use async_graphql::http::{ALL_WEBSOCKET_PROTOCOLS, GraphiQLSource, WebSocketProtocols};
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::{
    Router,
    extract::{State, WebSocketUpgrade, ws::rejection::WebSocketUpgradeRejection},
    http::{
        HeaderMap, StatusCode,
        header::{AUTHORIZATION, SEC_WEBSOCKET_PROTOCOL},
    },
    response::{Html, IntoResponse, Response},
    routing::get,
};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

use crate::{
    auth::{Principal, TokenKeys},
    error::AppError,
    graphql::{self, AppSchema},
    store,
    ws::{self, ConnectionLimit, WsSettings},
};

/// Largest request body accepted, in bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub schema: AppSchema,
    pub db: DatabaseConnection,
    pub keys: TokenKeys,
    /// WebSocket limits and timings.
    pub ws: WsSettings,
    /// Open WebSocket connections; an upgrade beyond the limit gets 503.
    pub ws_connections: ConnectionLimit,
    /// Cancelled at shutdown: WebSockets close with a proper frame.
    pub shutdown: CancellationToken,
}

/// The router with every route and layer.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(graphql_get).post(graphql_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// Verifies the bearer token and provisions its organization and user.
async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Principal, AppError> {
    let header = headers
        .get(AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or_default());
    let (claims, role) = state.keys.verify_header(header)?;
    store::orgs::provision(&state.db, &claims, role).await
}

async fn graphql_handler(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let auth = authenticate(&state, &headers).await;
    let request = graphql::request_data(request.into_inner(), &state.db, auth);
    state.schema.execute(request).await.into()
}

/// `GET /graphql`: a WebSocket upgrade for subscriptions, else GraphiQL.
async fn graphql_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let protocol = headers
        .get(SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.split(',')
                .find_map(|p| p.trim().parse::<WebSocketProtocols>().ok())
        });
    let (Ok(upgrade), Some(protocol)) = (upgrade, protocol) else {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .title("okr-pulse")
                .finish(),
        )
        .into_response();
    };
    let Ok(permit) = state.ws_connections.clone().try_acquire_owned() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many WebSocket connections; try again later.",
        )
            .into_response();
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| ws::serve(socket, protocol, state, permit))
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match store::db::ready(&state.db).await {
        Ok(()) => (StatusCode::OK, "ready".to_owned()),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "database unavailable".to_owned(),
            )
        }
    }
}
